"""Image sources: the embedded dataset, any TFDS image dataset, a folder of images, a
prepared directory (jaxgan/data/records.py).

Each source returns an `ImageData`: every image decoded, resized (bilinear) to
`config.data.image_size`, converted to `config.data.channels` (without TensorFlow:
jaxgan/data/resize.py), stored as uint8 in host memory (scaling to [-1, 1] happens on
the device, inside the train step), with integer labels when the data has them. Holding
the decoded dataset in memory is what makes the batch order a pure function of (seed,
epoch): any batch can be produced without replaying the ones before it (see
`jaxgan.data.pipeline`); data larger than memory is streamed instead (jaxgan/data/stream.py).

A latent dataset (prepared with `--encoder`, jaxgan/data/encode_latents.py) is an
`ImageData` too: `images` holds the float32 means of q(z|x), `stds` their standard
deviations, and `latent` what the manifest says of the encoder and of the latents'
per-channel statistics; the train step draws mean + std * eps from them.
"""
from __future__ import annotations

import dataclasses
import gzip
import os
import pathlib
from typing import Optional, Sequence

import numpy as np
from jaxgan.data import records
from jaxgan.data.image_files import IMAGE_EXTENSIONS
from jaxgan.data.resize import preprocess  # noqa: F401  (TF-free; re-exported)
from jaxgan.base import sizes
from jaxgan.base.errors import UserError, UserFileError, did_you_mean

EMBEDDED_DIR = pathlib.Path(__file__).parent / "embedded"
EMBEDDED_NAME = "fashion_mnist_embedded"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")


@dataclasses.dataclass
class ImageData:
  images: np.ndarray               # uint8 [N, H, W, C]
  labels: Optional[np.ndarray]     # int32 [N] or None
  num_classes: int                 # 0 when unlabelled
  name: str
  class_names: Sequence[str] = ()
  heldout: Optional["ImageData"] = None   # real images kept out of training (data.subset)
  whole: Optional["ImageData"] = None     # the split a data.subset was taken from
  stds: Optional[np.ndarray] = None       # a latent dataset: float32 [N, h, w, c]
  latent: Optional[dict] = None           # a latent dataset: its manifest's description

  def __post_init__(self):
    want = np.float32 if self.latent is not None else np.uint8
    if self.images.ndim != 4 or self.images.dtype != want:
      raise UserError(f"{self.name}: {'latents' if self.latent else 'images'} must be "
                      f"{np.dtype(want).name} [N, H, W, C], got {self.images.dtype} "
                      f"{self.images.shape}.")
    if self.labels is not None and len(self.labels) != len(self.images):
      raise UserError(f"{self.name}: {len(self.labels)} labels for {len(self.images)} images.")
    if (self.latent is not None) != (self.stds is not None):
      raise UserError(f"{self.name}: a latent dataset needs both its stds and its description.")

  def take(self, idx, labels: bool = True) -> "ImageData":
    """The examples at `idx` (an index array or a slice), with this data's description."""
    return ImageData(self.images[idx], self.labels[idx] if labels and self.labels is not None
                     else None, self.num_classes if labels else 0, self.name,
                     self.class_names if labels else (),
                     stds=None if self.stds is None else self.stds[idx], latent=self.latent)

  @property
  def image_shape(self):
    return tuple(self.images.shape[1:])


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # The data pipeline must never grab an accelerator from JAX.
  try:
    tf.config.set_visible_devices([], "GPU")
    tf.config.set_visible_devices([], "TPU")
  except (RuntimeError, ValueError):
    pass  # Already initialised; visibility can only be set before first use.
  return tf


def _read_idx(path: pathlib.Path) -> np.ndarray:
  with gzip.open(path, "rb") as f:
    data = f.read()
  ndim = data[3]
  dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
  return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_embedded(image_size, channels: int, max_examples: int = 0) -> ImageData:
  """The 10,000 Fashion-MNIST images shipped inside the package (MIT licence)."""
  images = _read_idx(EMBEDDED_DIR / "t10k-images-idx3-ubyte.gz")[..., None]
  labels = _read_idx(EMBEDDED_DIR / "t10k-labels-idx1-ubyte.gz").astype(np.int32)
  if max_examples:
    images, labels = images[:max_examples], labels[:max_examples]
  return ImageData(preprocess(images, image_size, channels), labels, 10, EMBEDDED_NAME,
                   FASHION_MNIST_CLASSES)


def _label_feature(features, label_key: str):
  feat = features
  for part in label_key.split("/"):
    feat = feat[part]
  return feat


def load_tfds(name: str, split: str, data_dir: str, image_size, channels: int, *,
              image_key: str = "image", label_key: str = "label", download: bool = False,
              max_examples: int = 0) -> ImageData:
  """Any TFDS image dataset by name (e.g. mnist, fashion_mnist, cifar10, celeb_a).

  `label_key` may name a nested feature with '/', e.g. "attributes/Blond_Hair" for a binary
  celeb_a attribute (2 classes); an empty label_key, or a dataset without that feature,
  gives unlabelled data.
  """
  tf = _tf()
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
  try:
    builder = tfds.builder(name, data_dir=data_dir or None)
  except tfds.core.registered.DatasetNotFoundError as e:
    hint = did_you_mean(name.split(":")[0], tfds.list_builders())
    raise UserError(f"Unknown TFDS dataset {name!r} (config.data.name).{hint} Use a TFDS name "
                     "such as mnist, fashion_mnist, cifar10 or celeb_a, or leave "
                     "config.data.name empty for the embedded Fashion-MNIST, or set "
                     "config.data.folder for a folder of images.") from None
  if download:
    builder.download_and_prepare()
  try:
    ds = builder.as_dataset(split=split, shuffle_files=False)
  except (AssertionError, FileNotFoundError, tf.errors.NotFoundError) as e:
    raise UserFileError(
        f"TFDS dataset {name!r} (split {split!r}) is not prepared under {where!r}: looked "
        f"in {builder.data_dir!r}. To get it, on a machine with internet run "
        f"`tfds build {name} --data_dir DIR` (or add --config.data.download=True) and pass "
        f"--config.data.data_dir=DIR. Offline, leave config.data.name empty to train on the "
        f"embedded Fashion-MNIST.\n({type(e).__name__}: {e})") from None
  except ValueError as e:  # unknown split
    raise UserError(f"{name}: bad split {split!r} (config.data.split): {e}") from None
  features = builder.info.features
  if image_key not in features:
    raise UserError(f"{name} has no image feature {image_key!r} (config.data.image_key); "
                     f"its features are: {', '.join(features.keys())}.")
  has_label = False
  num_classes, class_names = 0, ()
  if label_key:
    try:
      feat = _label_feature(features, label_key)
      has_label = True
    except KeyError:
      if label_key != "label":  # an explicit choice that does not exist is a mistake
        raise UserError(f"{name} has no label feature {label_key!r} (config.data.label_key)"
                         f"; its features are: {', '.join(features.keys())}") from None
      has_label = False  # the default key on an unlabelled dataset: no labels
    if has_label:
      if isinstance(feat, tfds.features.ClassLabel):
        num_classes, class_names = feat.num_classes, tuple(feat.names)
      elif getattr(feat, "dtype", None) == tf.bool:
        num_classes, class_names = 2, (f"not {label_key.split('/')[-1]}", label_key.split("/")[-1])
      else:
        raise UserError(f"{name}: label feature {label_key!r} is neither a ClassLabel nor a "
                         "binary attribute; pick another config.data.label_key.")
  if max_examples:
    ds = ds.take(max_examples)

  def pick(ex):
    out = {"image": ex[image_key]}
    if has_label:
      lab = ex
      for part in label_key.split("/"):
        lab = lab[part]
      out["label"] = tf.cast(lab, tf.int32)
    return out

  images, labels = [], []
  for batch in tfds.as_numpy(ds.map(pick).batch(2048)):
    images.append(preprocess(batch["image"], image_size, channels))
    if has_label:
      labels.append(batch["label"])
  if not images:
    raise UserError(f"TFDS dataset {name!r} split {split!r} is empty.")
  return ImageData(np.concatenate(images), np.concatenate(labels) if has_label else None,
                   num_classes, name, class_names)


def load_folder(folder: str, image_size, channels: int, max_examples: int = 0) -> ImageData:
  """Every PNG/JPEG/BMP/GIF below `folder` (sorted paths). When the images sit in two or
  more sub-folders, the sub-folder names are the class labels (as Keras'
  image_dataset_from_directory); otherwise the data is unlabelled."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  root = pathlib.Path(folder).expanduser()
  if not root.is_dir():
    raise UserFileError(f"Image folder {str(root)!r} (config.data.folder) does not exist "
                            "or is not a directory; pass the folder that holds your images.")
  files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
  if not files:
    raise UserFileError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) found below "
                            f"{str(root)!r} (config.data.folder); pass a folder with image files.")
  if max_examples:
    files = files[:max_examples]
  top = [p.relative_to(root).parts for p in files]
  classes = sorted({parts[0] for parts in top if len(parts) > 1})
  labelled = len(classes) >= 2 and all(len(parts) > 1 for parts in top)
  mode = "L" if channels == 1 else "RGB"
  images = []
  for p in files:
    try:
      with Image.open(p) as im:
        arr = np.asarray(im.convert(mode), np.uint8)
    except (OSError, ValueError) as e:
      raise UserError(f"Cannot read image {str(p)!r}: {e}. Remove or fix the file.") from None
    images.append(preprocess(arr.reshape(1, arr.shape[0], arr.shape[1], channels),
                             image_size, channels)[0])
  labels = None
  if labelled:
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[parts[0]] for parts in top], np.int32)
  return ImageData(np.stack(images), labels, len(classes) if labelled else 0,
                   f"folder:{root.name}", tuple(classes) if labelled else ())


def load_prepared(folder: str, image_size, channels: int, max_examples: int = 0):
  """Every record of a prepared directory decoded into host memory (an ImageData): the
  default path for prepared data that fits in config.data.max_host_memory."""
  manifest = records.read_manifest(folder)
  records.check_shape(manifest, folder, image_size, channels)
  n = manifest["count"] if not max_examples else min(max_examples, manifest["count"])
  source = records.open_source(folder, manifest)
  if records.is_latent(manifest):
    return _load_latents(folder, manifest, source, n)
  images = np.empty((n, *sizes.hw(image_size), channels), np.uint8)
  labels = np.empty((n,), np.int32)
  for lo in range(0, n, 4096):
    idx = list(range(lo, min(n, lo + 4096)))
    images[lo:lo + len(idx)], labels[lo:lo + len(idx)] = records.decode_many(
        source.__getitems__(idx), channels)
  labelled = manifest["num_classes"] > 0
  return ImageData(images, labels if labelled else None, manifest["num_classes"],
                   records.dataset_name(folder),
                   tuple(manifest["class_names"]) if labelled else ())


def _load_latents(folder: str, manifest: dict, source, n: int) -> ImageData:
  shape = tuple(manifest["latent_shape"])
  means, stds = np.empty((n, *shape), np.float32), np.empty((n, *shape), np.float32)
  labels = np.empty((n,), np.int32)
  for lo in range(0, n, 4096):
    idx = list(range(lo, min(n, lo + 4096)))
    means[lo:lo + len(idx)], stds[lo:lo + len(idx)], labels[lo:lo + len(idx)] = (
        records.decode_latents(source.__getitems__(idx), shape))
  labelled = manifest["num_classes"] > 0
  return ImageData(means, labels if labelled else None, manifest["num_classes"],
                   records.dataset_name(folder),
                   tuple(manifest["class_names"]) if labelled else (), stds=stds,
                   latent=records.latent_description(manifest))


def shard(data: ImageData, index: int, count: int) -> ImageData:
  """The index-th of `count` contiguous, disjoint shards that together cover `data`
  (the split of tfds.even_splits)."""
  n = len(data.images)
  lo, hi = n * index // count, n * (index + 1) // count
  out = data.take(slice(lo, hi))
  out.heldout = data.heldout
  return out


HELDOUT_MAX = 1024   # held-out images kept beside a subset


def take_subset(data: ImageData, subset: float, seed: int) -> ImageData:
  """A fixed subset, chosen by `seed` alone (not the run's seed), in the split's order.

  Data-efficient GAN papers (DiffAugment, ADA) train on 10%-1% of a dataset; every run that
  compares methods on "1000 images" must see the same 1000, whatever its own seed."""
  total = len(data.images)
  k = int(round(subset * total)) if subset < 1 else int(subset)   # a fraction or a count
  if subset >= 1 and subset != int(subset):
    raise UserError(f"config.data.subset={subset}: a count must be a whole number (or a "
                    "fraction below 1).")
  if not 1 <= k <= total:
    raise UserError(f"config.data.subset={subset} keeps {k} of the {total} images of "
                    f"{data.name}; choose between 1 and {total} (or a fraction below 1).")
  order = np.random.default_rng(seed).permutation(total)
  keep, rest = np.sort(order[:k]), np.sort(order[k:k + HELDOUT_MAX])
  pick = data.take
  out = pick(keep)
  out.whole = data   # evaluation compares with all of it (Karras et al. 2020, sec. 2)
  if len(rest):   # images the run never trains on: the held-out D probe's real batch
    out.heldout = pick(rest)
  return out


def load(data_cfg, process_index: int = 0, process_count: int = 1) -> ImageData:
  """The dataset named by `config.data`, decoded into memory: folder (of images, or
  prepared by jaxgan.data.prepare) if set, else TFDS name, else embedded.

  With several processes, each one reads only its own shard: a `tfds.even_splits` part
  of the TFDS split, or a contiguous part of the embedded data or folder."""
  size, ch, n = sizes.hw(data_cfg.image_size), data_cfg.channels, data_cfg.max_examples
  sharded = False
  if data_cfg.folder and records.is_prepared(data_cfg.folder):  # python -m jaxgan.data.prepare
    data = load_prepared(data_cfg.folder, size, ch, n)
  elif data_cfg.folder:
    data = load_folder(data_cfg.folder, size, ch, n)
  elif data_cfg.name:
    split = data_cfg.split
    if process_count > 1 and not n and not data_cfg.subset:  # a subset is of the whole split
      import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
      split, sharded = tfds.even_splits(split, process_count)[process_index], True
    data = load_tfds(data_cfg.name, split, data_cfg.data_dir, size, ch,
                     image_key=data_cfg.image_key, label_key=data_cfg.label_key,
                     download=data_cfg.download, max_examples=n)
  else:
    data = load_embedded(size, ch, n)
  if not data_cfg.label_key and data.labels is not None:  # '' means unlabelled, for any source
    data = data.take(slice(None), labels=False)
  if data_cfg.subset:
    data = take_subset(data, data_cfg.subset, data_cfg.subset_seed)
  if process_count > 1 and not sharded:
    data = shard(data, process_index, process_count)
  local_batch = data_cfg.batch_size // process_count
  if len(data.images) < local_batch:
    raise UserError(f"{data.name} has {len(data.images)} images per process, fewer than one "
                     f"batch (config.data.batch_size={data_cfg.batch_size} over "
                     f"{process_count} process(es)).")
  return data
