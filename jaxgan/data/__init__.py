"""Data: sources (embedded, TFDS, image folder, prepared directory), the deterministic
batch stream, in memory or streamed from disk (choose.py picks)."""
from jaxgan.data.choose import (count, image_config, latent_manifest, make_batches, open_data,
                                 open_for_eval)
from jaxgan.data.pipeline import Batches, EpochSampler
from jaxgan.data.sources import ImageData, load, load_embedded, load_folder, load_tfds
