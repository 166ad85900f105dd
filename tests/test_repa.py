"""GAT's REPA term: the DINOv2 encoder, PyTorch's bicubic resizes, the alignment term and
its replayed augmentation, checked against a fixture made with torch + timm
(tools/independent/dinov2_parity.py), and its place in training."""
import json
import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.base import weights_file
from jaxgan.base.errors import UserError
from jaxgan.core import augment, schedules, state as state_lib, train_step
from jaxgan.core.augment import diffaugment
from jaxgan.core.regularizers import repa
from jaxgan.ops import resize
from jaxgan.pretrained import dinov2
from jaxgan.run import validate
from tests.test_gat import _tiny

HERE = os.path.join(os.path.dirname(__file__), "data", "dinov2")
TINY = os.path.join(HERE, "tiny_dinov2.pth")


@pytest.fixture(scope="module")
def fixture():
  return np.load(os.path.join(HERE, "dinov2_parity.npz"))


def test_bicubic_resizes_equal_pytorchs(fixture):
  for n_in, n_out, aa in json.loads(str(fixture["meta"]))["sizes"]:
    x = fixture[f"resize_in_{n_in}_{n_out}_{int(aa)}"]
    want = fixture[f"resize_out_{n_in}_{n_out}_{int(aa)}"]
    got = resize.bicubic(jnp.asarray(x), n_out, n_out + 2, antialias=aa)
    np.testing.assert_allclose(np.asarray(got), want, atol=3e-5, err_msg=f"{n_in, n_out, aa}")
  # rows of a resize matrix sum to one: a constant image stays constant
  for aa in (False, True):
    np.testing.assert_allclose(resize.bicubic_matrix(13, 5, aa).sum(1), 1.0, atol=1e-12)


def test_encoder_equals_timms_dinov2_read_without_pytorch(fixture):
  """The hub-named .pth (torch.save) read by jaxgan's pickle reader; the 37 x 37 table
  resampled as timm's resample_abs_pos_embed; the features as forward_features' normed
  tokens of GAT's preprocessed raw images."""
  enc = dinov2.load(TINY, 224)
  assert (enc.width, enc.depth, enc.patch, enc.registers, enc.grid) == (64, 2, 14, 0, 16)
  np.testing.assert_allclose(np.asarray(enc.params["pos_embed"]), fixture["pos_embed_16"],
                             atol=1e-6)
  images = jnp.asarray(fixture["raw"]) / 127.5 - 1.0
  cls, patches = dinov2.features(enc, dinov2.preprocess(images, enc))
  assert patches.shape == (2, 16, 16, 64)
  np.testing.assert_allclose(np.asarray(cls), fixture["cls"], atol=1e-4)
  np.testing.assert_allclose(np.asarray(patches), fixture["patches"], atol=1e-4)


def test_hugging_face_names_load_the_same_encoder(tmp_path, fixture):
  from safetensors.numpy import save_file
  t = {k: np.asarray(v, np.float32) for k, v in weights_file.read_torch(TINY).items()}
  hf = {"embeddings.cls_token": t.pop("cls_token"), "embeddings.mask_token": t.pop("mask_token"),
        "embeddings.position_embeddings": t.pop("pos_embed"),
        "embeddings.patch_embeddings.projection.weight": t.pop("patch_embed.proj.weight"),
        "embeddings.patch_embeddings.projection.bias": t.pop("patch_embed.proj.bias"),
        "layernorm.weight": t.pop("norm.weight"), "layernorm.bias": t.pop("norm.bias")}
  for i in range(2):
    a, b = f"encoder.layer.{i}.", f"blocks.{i}."
    for s in ("weight", "bias"):
      q, k, v = np.split(t.pop(b + f"attn.qkv.{s}"), 3)
      for n, w in zip(("query", "key", "value"), (q, k, v)):
        hf[a + f"attention.attention.{n}.{s}"] = w
      hf[a + f"attention.output.dense.{s}"] = t.pop(b + f"attn.proj.{s}")
      for n in ("norm1", "norm2", "mlp.fc1", "mlp.fc2"):
        hf[a + f"{n}.{s}"] = t.pop(b + f"{n}.{s}")
    hf[a + "layer_scale1.lambda1"] = t.pop(b + "ls1.gamma")
    hf[a + "layer_scale2.lambda1"] = t.pop(b + "ls2.gamma")
  assert not t
  path = str(tmp_path / "model.safetensors")
  save_file({k: np.ascontiguousarray(v) for k, v in hf.items()}, path)
  enc = dinov2.load(path, 224)
  cls, _ = dinov2.features(enc, dinov2.preprocess(jnp.asarray(fixture["raw"]) / 127.5 - 1, enc))
  np.testing.assert_allclose(np.asarray(cls), fixture["cls"], atol=1e-4)


def test_alignment_equals_gats_term(fixture):
  got = repa.alignment(*(jnp.asarray(fixture[k]) for k in ("d_cls", "d_patches", "cls",
                                                             "patches")))
  np.testing.assert_allclose(float(got), float(fixture["alignment"]), rtol=1e-5)
  # closed forms: aligned vectors cost 0, opposite ones 2 per part (cls + patches = 4)
  v = jax.random.normal(jax.random.PRNGKey(0), (3, 8))
  grid = jax.random.normal(jax.random.PRNGKey(1), (3, 2, 2, 8))
  assert float(repa.alignment(2 * v, 3 * grid, v, grid)) == pytest.approx(0, abs=1e-6)
  assert float(repa.alignment(-v, -grid, v, grid)) == pytest.approx(4, abs=1e-5)


def test_translation_is_replayed_on_a_larger_view_by_the_same_fraction():
  key = jax.random.PRNGKey(3)
  small = jax.random.normal(key, (6, 8, 8, 2))
  up = lambda x: jnp.repeat(jnp.repeat(x, 7, axis=1), 7, axis=2)   # nearest, 8 -> 56 px
  moved = diffaugment.translation(key, small)
  np.testing.assert_array_equal(diffaugment.replay_translation(key, up(small), small.shape),
                                up(moved))
  # the policy's geometric steps only (translation, then the flips), with the path's keys
  policy = "gat_color,translation,cutout,gat_flip"
  replay = augment.geometry(policy)(key, up(small), small.shape)
  from jaxgan.base import rng
  from jaxgan.core.augment import partial
  want = partial.gat_flip(rng.stream(key, "gat_flip"),
                          diffaugment.translation(rng.stream(key, "translation"), small))
  np.testing.assert_array_equal(replay, up(want))


def _repa_config(encoder=TINY, **over):
  regs = ({"name": "r1", "weight": 0.1, "fd_sigma": 0.01},
          {"name": "repa", "encoder": encoder, "resolution": 28})
  return _tiny(**{"model.gat.repa_dim": 64, "model.gat.repa_hidden": 32,
                  "regularizers": regs, **over})


def _one_d_update(c):
  gan, st = state_lib.create(c, (16, 16, 1), 0)
  step = train_step.TrainStep(gan, c)
  hp = schedules.at(step.schedules, st.hparams, st.step)
  real = jax.random.randint(jax.random.PRNGKey(2), (4, 16, 16, 1), 0, 256).astype(jnp.uint8)
  update = jax.jit(lambda d, g, reg, hp: step.d_update(d, g, g.stats, reg, real, None, 0,
                                                      jax.random.PRNGKey(0), hp))
  d, _, _, m = update(st.d, st.g, st.reg or {}, hp)
  moved = lambda a, b: float(jnp.max(jnp.abs(a - b)))
  return m, moved(d.params["repa"][0]["kernel"], st.d.params["repa"][0]["kernel"])


def test_the_term_trains_d_projector_and_is_off_without_an_encoder(caplog):
  """With the encoder, one D update moves REPA's projector (nothing else reaches it)."""
  validate.validate(_repa_config())
  m, moved = _one_d_update(_repa_config())
  assert 0 < float(m["d_repa"]) < 4 and moved > 0
  # without an encoder file the term is 0 and computes nothing (no D view, no images)
  from jaxgan.core.regularizers import Context
  fail = lambda: pytest.fail("the term ran without an encoder")
  repa._say_off.cache_clear()   # said once per process and path: another test may have
  for path, says in (("", "no encoder file given"), ("/nowhere/x.pth", "no file at")):
    with caplog.at_level(logging.WARNING):
      value, _ = repa.repa(Context(key=None, options={"encoder": path, "resolution": 224,
                                                      "optional": True},
                                   represent_real=fail, real_images=fail))
    assert float(value) == 0
    assert any(f"REPA is off: {says}" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("over,match", [
    ({"model.arch": "dcgan"}, "has no projector"),
    ({"model.gat.repa_dim": 32}, r"is 64 wide; set --config.model.gat.repa_dim=64"),
    ({"augment.policy": "ada", "augment.ada_ops": "bg"}, "adaptive augmentation"),
    ({"regularizers": ({"name": "repa", "encoder": "/nowhere/dino.pth"},)},
     r"repa's 'encoder'='/nowhere/dino.pth' is not a file.*or add 'optional': True"),
    ({"regularizers": ({"name": "repa", "encoder": TINY, "resolution": "big"},)},
     "repa's 'resolution'='big' must be a positive whole number"),
    ({"regularizers": (), "penalty": "repa", "model.gat.repa_dim": 0}, "has no projector"),
])
def test_impossible_repa_settings_are_refused(over, match):
  with pytest.raises(UserError, match=match):
    validate.validate(_repa_config(**over))


def test_bad_encoder_files_get_one_line(tmp_path):
  bad = tmp_path / "x.safetensors"
  bad.write_bytes(b"not a file")
  with pytest.raises(UserError, match="not a readable safetensors file"):
    dinov2.load(str(bad), 224)
  with pytest.raises(UserError, match="no such file"):
    dinov2.load(str(tmp_path / "missing.pth"), 224)
  with pytest.raises(UserError, match="not a multiple of the encoder's patch size 14"):
    dinov2.load(TINY, 100)
