"""Data: sources (embedded, TFDS, image folder) and the deterministic batch stream."""
from jaxgan.data.pipeline import Batches, EpochSampler
from jaxgan.data.sources import ImageData, load, load_embedded, load_folder, load_tfds
