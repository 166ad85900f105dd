"""Memory or stream: how a run reads its images (config.data.source, max_host_memory).

"memory" decodes the whole dataset (this process's shard) into host memory, the fastest
path for anything that fits; "stream" reads each batch from disk (jaxgan/data/stream.py),
which needs random access: a directory written by `python -m jaxgan.data.prepare`, or a
TFDS dataset stored as array_record. "auto" streams exactly when the decoded images
(count x S x S x C bytes, known from the manifest or the TFDS metadata before anything is
decoded) would take more than config.data.max_host_memory, and says so in one line.
Both paths give the same batches for the same data and seed.
"""
from __future__ import annotations

import dataclasses
import math
import pathlib
import re
from typing import Callable, Optional, Tuple, Union

from jaxgan.data import records, sources, stream
from jaxgan.data.pipeline import Batches
from jaxgan.base import sizes
from jaxgan.base.errors import UserError

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text) -> int:
  """'8GB' -> 8e9, '512MiB' -> 512 * 2**20, '1000000' or 1000000 -> 1000000 (ValueError)."""
  if isinstance(text, int) and not isinstance(text, bool):
    return text
  match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
  if not match or match.group(2).lower() not in _UNITS:
    raise ValueError(f"{text!r} is not a size")
  return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def bytes_problem(v) -> Optional[str]:
  """The config rule of data.max_host_memory."""
  try:
    return None if parse_bytes(v) > 0 else "must be more than 0 bytes"
  except ValueError:
    return "must be a size such as '8GB', '512MB', '2GiB' or a byte count '1000000'"


def _human(n: float) -> str:
  for unit in ("B", "KB", "MB", "GB", "TB"):
    if n < 1000 or unit == "TB":
      return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
    n /= 1000
  return ""


def _kind(d) -> str:
  if d.folder:
    return "prepared" if records.is_prepared(d.folder) else "folder"
  return "tfds" if d.name else "embedded"


def _tfds_builder(d):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    return tfds.builder(d.name, data_dir=d.data_dir or None)
  except Exception:  # pylint: disable=broad-except  (sources.load_tfds names the problem)
    return None


def _count(d, kind: str, builder) -> int:
  """Examples the run would decode (before sharding); -1 when unknown before decoding."""
  if kind == "prepared":
    n = records.read_manifest(d.folder)["count"]
  elif kind == "embedded":
    n = 10_000
  elif kind == "folder":
    root = pathlib.Path(d.folder).expanduser()
    n = sum(1 for p in root.rglob("*") if p.suffix.lower() in sources.IMAGE_EXTENSIONS)
  else:
    try:
      n = builder.info.splits[d.split].num_examples
    except Exception:  # pylint: disable=broad-except  (not prepared: loading says so)
      return -1
  n = min(n, d.max_examples) if d.max_examples else n
  if d.subset:
    n = min(n, int(round(d.subset * n)) if d.subset < 1 else int(d.subset))
  return n


def _cannot_stream(d, kind: str, builder, why: str) -> UserError:
  """The one-line error for a source that must stream but cannot."""
  fix = (f"prepare it with `python -m jaxgan.data.prepare SRC OUT --size "
         f"{sizes.text(d.image_size)} "
         f"--channels {d.channels}` and set config.data.folder=OUT")
  if kind == "folder":
    what = f"config.data.folder={d.folder!r} is a plain image folder"
  elif kind == "embedded":
    what = "the embedded Fashion-MNIST is held in memory"
    fix = "set config.data.source='memory' (it is 10,000 small images)"
  elif d.subset:
    what = f"config.data.subset={d.subset} keeps a subset in memory"
    fix = "set config.data.source='memory' (or 'auto')"
  else:
    fmt = getattr(getattr(builder, "info", None), "file_format", None)
    what = (f"TFDS dataset {d.name!r} is stored as {getattr(fmt, 'value', fmt)}, which "
            "has no random access")
    fix = (f"rebuild it with `tfds build {d.name} --file_format=array_record`, or convert "
           "its images with `python -m jaxgan.data.prepare`")
  alt = ", or raise config.data.max_host_memory" if "'auto'" in why else ""
  return UserError(f"{why}, but {what}; {fix}{alt}.")


def _can_stream(kind: str, builder, d) -> bool:
  if d.subset:
    return False
  if kind == "prepared":
    return True
  fmt = getattr(getattr(builder, "info", None), "file_format", None)
  return kind == "tfds" and getattr(fmt, "value", str(fmt)) == "array_record"


def plan(d, process_count: int = 1) -> Tuple[str, str]:
  """("memory" | "stream", the line that says why streaming was chosen, or '')."""
  kind = _kind(d)
  if d.source == "memory":
    return "memory", ""
  builder = _tfds_builder(d) if kind == "tfds" else None
  if d.source == "stream":
    if not _can_stream(kind, builder, d):
      raise _cannot_stream(d, kind, builder, "config.data.source='stream'")
    return "stream", ""
  count = _count(d, kind, builder)
  per = math.prod(sizes.hw(d.image_size)) * d.channels
  if kind == "prepared":   # a latent dataset decodes to float32 means and stds
    per = records.decoded_bytes(records.read_manifest(d.folder), 1)
  need = -(-count // process_count) * per
  limit = parse_bytes(d.max_host_memory)
  if count < 0 or need <= limit:
    return "memory", ""
  if not _can_stream(kind, builder, d):
    raise _cannot_stream(d, kind, builder, f"config.data.source='auto': {count} images take "
                         f"{_human(need)} decoded, more than config.data.max_host_memory="
                         f"{d.max_host_memory!r}")
  return "stream", (f"Streaming the data from disk: its {count} images take {_human(need)} "
                    f"decoded per process, more than config.data.max_host_memory="
                    f"{d.max_host_memory!r} (config.data.source='auto').")


def _tfds_stream(d, process_index: int, process_count: int) -> stream.StreamedData:
  """A TFDS array_record split as streamed data (this process's contiguous shard)."""
  feat = _tfds_builder(d).info.features
  num_classes, names = 0, ()
  if d.label_key:
    try:
      feat = sources._label_feature(feat, d.label_key)  # pylint: disable=protected-access
      num_classes, names = feat.num_classes, tuple(feat.names)
    except (KeyError, AttributeError):
      pass
  spec = stream.Spec("tfds", sizes.hw(d.image_size), d.channels, num_classes > 0,
                     tfds=(d.name, d.split, d.data_dir, d.image_key, d.label_key))
  n = len(spec.open())
  n = min(n, d.max_examples) if d.max_examples else n
  lo, hi = n * process_index // process_count, n * (process_index + 1) // process_count
  return stream.StreamedData(d.name, num_classes, names,
                             (*sizes.hw(d.image_size), d.channels), hi - lo,
                             dataclasses.replace(spec, offset=lo))


Data = Union[sources.ImageData, stream.StreamedData]


def open_data(d, process_index: int = 0, process_count: int = 1,
              say: Callable[[str], None] = print) -> Data:
  """The run's data: decoded in memory (`sources.load`) or streamed, as `plan` decides."""
  mode, why = plan(d, process_count)
  if mode == "memory":
    return sources.load(d, process_index, process_count)
  if why:
    say(why)
  if _kind(d) == "prepared":
    data = stream.prepared_data(d.folder, d.image_size, d.channels, d.max_examples,
                                process_index, process_count, labelled=bool(d.label_key))
  else:
    data = _tfds_stream(d, process_index, process_count)
  local_batch = d.batch_size // process_count
  if data.count < local_batch:
    raise UserError(f"{data.name} has {data.count} images per process, fewer than one batch "
                    f"(config.data.batch_size={d.batch_size} over {process_count} process(es)).")
  return data


def latent_manifest(d) -> Optional[dict]:
  """The manifest of config.data's latent dataset, or None when the data are images."""
  if d.folder and records.is_prepared(d.folder):
    m = records.read_manifest(d.folder)
    return m if records.is_latent(m) else None
  return None


def image_config(d):
  """config.data of the images a latent dataset was encoded from (what evaluation
  compares decoded samples with); `d` itself for image data."""
  m = latent_manifest(d)
  if m is None:
    return d
  import copy  # pylint: disable=g-import-not-at-top
  src, out = m["image_source"], copy.deepcopy(d)
  out.image_size = sizes.hw(src["image_size"])
  out.channels = int(src["channels"])
  if src["kind"] == "tfds":
    out.folder, out.name, out.split, out.data_dir = "", src["name"], src["split"], src["data_dir"]
  else:
    out.folder = src["folder"]
  return out


def open_for_eval(d, max_real: int, say: Callable[[str], None] = print) -> sources.ImageData:
  """The real images `--mode eval` compares with. Data that can stream (a prepared
  directory; an array_record TFDS split the run would stream) is not decoded whole: only
  `max_real` (eval.max_real_features) examples spread evenly over it are read
  (`StreamedData.reference`, as evaluation during a streamed run does), so memory is
  bounded by eval.max_real_features, not the dataset; with at most that many examples
  they are all of them, in order (the same data as decoding it whole). A data.subset, and
  any other source, is loaded as training loads it. A latent dataset's run is compared
  with the images it was encoded from (`image_config`)."""
  d = image_config(d)
  kind = _kind(d)
  if d.subset or kind not in ("prepared", "tfds"):
    return sources.load(d)
  if kind == "tfds":
    try:
      if plan(d)[0] != "stream":
        return sources.load(d)
    except UserError:   # cannot stream (not array_record): decoded whole, as before
      return sources.load(d)
    data = _tfds_stream(d, 0, 1)
  else:
    data = stream.prepared_data(d.folder, d.image_size, d.channels, d.max_examples,
                                labelled=bool(d.label_key))
  ref = data.reference(max_real)
  say(f"Evaluation compares with {len(ref.images)} of the {data.count} images of {data.name}"
      ", read spread evenly over it (config.eval.max_real_features).")
  return ref


def make_batches(data: Data, batch_size: int, n_critic: int, seed: int,
                 process_index: int = 0, process_count: int = 1):
  """`Batches` for data in memory, `StreamBatches` for streamed data: the same batches."""
  cls = stream.StreamBatches if isinstance(data, stream.StreamedData) else Batches
  return cls(data, batch_size, n_critic, seed, process_index, process_count)


def count(data: Data) -> int:
  """Examples this process trains on."""
  return data.count if isinstance(data, stream.StreamedData) else len(data.images)
