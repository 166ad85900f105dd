"""The R3GAN backbone (jaxgan/core/models/r3gan.py) and configs/r3gan.py: parameter counts against
the authors' code, resampling against a direct FIR computation, the grouped convolution
against XLA's, the fix-up initialisation, and a few training steps of each config."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from flax import nnx
from jax import lax

from configs import r3gan as r3gan_cfg
from jaxgan.core import models
from jaxgan.run import train, validate
from jaxgan.base.errors import UserError
from jaxgan.core.models import r3gan
from jaxgan.ops import convs
from tests.conftest import set_fields

# brownvc/R3GAN (commit 19a7ddf), train.py --preset=CIFAR10, built with torch:
# sum(p.numel() for p in G.parameters()), c_dim 10 (--cond=1) and 0.
CIFAR10_COND = (20_781_952, 21_280_512)
CIFAR10_UNCOND = (20_732_160, 20_683_776)


def counts(config, shape, classes):
  return models.param_counts(config.model, shape, classes)


@pytest.mark.parametrize("variant,classes,expected", [("cifar10", 10, CIFAR10_COND),
                                                      ("cifar10_uncond", 0, CIFAR10_UNCOND)])
def test_cifar10_parameter_counts_equal_the_reference(variant, classes, expected):
  assert counts(r3gan_cfg.get_config(variant), (32, 32, 3), classes) == expected


def fir_reference(x: np.ndarray, up: bool) -> np.ndarray:
  """upfirdn2d with the [1,3,3,1] filter along one axis, written as loops (axis 0)."""
  f = np.array([1.0, 3.0, 3.0, 1.0]) / 8.0
  n = x.shape[0]
  if up:   # zero-insert, then filter with gain 2, padding (2, 1)
    z = np.zeros((2 * n,) + x.shape[1:])
    z[0::2] = x
    zp = np.concatenate([np.zeros((2,) + x.shape[1:]), z, np.zeros((1,) + x.shape[1:])])
    return np.stack([sum(2 * f[3 - k] * zp[i + k] for k in range(4)) for i in range(2 * n)])
  xp = np.concatenate([np.zeros((1,) + x.shape[1:]), x, np.zeros((1,) + x.shape[1:])])
  return np.stack([sum(f[k] * xp[2 * i + k] for k in range(4)) for i in range(n // 2)])


@pytest.mark.parametrize("n", [4, 8])
def test_resampling_matches_a_direct_fir_computation(n):
  x = np.random.RandomState(0).randn(n, 3).astype(np.float64)
  np.testing.assert_allclose(r3gan.up_matrix(n) @ x, fir_reference(x, True), atol=1e-6)
  np.testing.assert_allclose(r3gan.down_matrix(n) @ x, fir_reference(x, False), atol=1e-6)
  img = jnp.asarray(np.random.RandomState(1).randn(2, n, n, 3), jnp.float32)
  up = r3gan.resample(img, r3gan.up_matrix)
  assert up.shape == (2, 2 * n, 2 * n, 3)
  # separable: filtering H then W equals the 2-D filter; a constant stays constant inside
  ones = r3gan.resample(jnp.ones((1, n, n, 1)), r3gan.up_matrix)
  np.testing.assert_allclose(ones[0, 1:-1, 1:-1, 0], 1.0, rtol=1e-6)


@pytest.mark.parametrize("cpu_conv", ["xla", "onednn"])
def test_grouped_convolution_equals_xla_grouped_convolution(cpu_conv):
  from jaxgan.cpu import conv_provider  # pylint: disable=g-import-not-at-top
  with convs.provided_by(conv_provider.make(cpu_conv)):
    _grouped_convolution_equals_xla()


def _grouped_convolution_equals_xla():
  conv = r3gan.GroupedConv(32, 3, 4, 1.0, nnx.Rngs(0))
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 32))
  want = lax.conv_general_dilated(x, conv.kernel[...], (1, 1), ((1, 1), (1, 1)),
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                  feature_group_count=4)
  np.testing.assert_allclose(conv(x), want, rtol=1e-5, atol=1e-5)
  dense = r3gan.block_diagonal(conv.kernel[...], 4)
  assert dense.shape == (3, 3, 32, 32) and float(jnp.abs(dense[:, :, :8, 8:]).max()) == 0.0


def test_blocks_start_as_identity_with_fixup_gains():
  block = r3gan.Block(64, 8, 2, 16, nnx.Rngs(0))
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 4, 4, 64))
  np.testing.assert_array_equal(block(x), x)            # W3 = 0
  gain = np.sqrt(2 / 1.04) * 16 ** -0.25
  w1 = np.asarray(block.w1.kernel[...])                 # fan-in 64
  assert np.std(w1) == pytest.approx(gain / 8, rel=0.05)
  w2 = np.asarray(block.w2.kernel[...])                 # fan-in 3*3*(128/8)
  assert np.std(w2) == pytest.approx(gain / 12, rel=0.05)


@pytest.mark.parametrize("size,conditioning", [(32, "projection"), (64, "none")])
def test_shapes(size, conditioning):
  c = r3gan_cfg.get_config("fashion")
  c.model.conditioning = conditioning
  n = int(np.log2(size // 4)) + 1
  c.model.r3gan.widths, c.model.r3gan.cardinality = (8,) * n, (2,) * n
  c.model.r3gan.blocks = (1,) * n
  classes = 10 if conditioning != "none" else 0
  g, d = models.build(c.model, (size, size, 1), classes, 0)
  y = jnp.array([3, 4]) if classes else None
  x = g(jnp.ones((2, c.model.latent_dim)), y, train=True)
  logits, cls = d(x, y, train=True)
  assert x.shape == (2, size, size, 1) and logits.shape == (2,) and cls is None


@pytest.mark.parametrize("override,match", [
    ({"data.image_size": 64}, "4 stages, which build 32 px"),
    ({"model.r3gan.cardinality": (96, 96, 96)}, "one entry per stage"),
    ({"model.r3gan.cardinality": (5, 5, 5, 5)}, "not divisible"),
    ({"model.conditioning": "acgan"}, "'projection' or 'none'"),
    ({"model.d_spectral_norm": True}, "no normalisation"),
])
def test_impossible_settings_are_refused(override, match):
  with pytest.raises(UserError, match=match):
    validate.validate(set_fields(r3gan_cfg.get_config("fashion"), override))


def test_fashion_variants_are_valid_and_narrow():
  for variant, classes in (("fashion", 0), ("fashion_cond", 10)):
    c = r3gan_cfg.get_config(variant)
    validate.validate(c)
    assert c.data.name == "fashion_mnist" and c.model.r3gan.widths == (128, 64, 32, 16)
    g, d = models.param_counts(c.model, (32, 32, 1), classes)
    assert g < CIFAR10_COND[0] / 20 and d < CIFAR10_COND[1] / 20


# One config file, one training test (CI time): the conditional CIFAR-10 default.
@pytest.mark.parametrize("variant,name", [("cifar10", "cifar10")])
def test_r3gan_configs_train_a_few_steps(tmp_path, variant, name):
  c = r3gan_cfg.get_config(variant)
  assert c.data.name == name and c.loss == "rpgan" and c.optim.d.b1 == 0.0
  assert {r["name"] for r in c.regularizers} == {"r1", "r2"}
  c.model.r3gan.widths, c.model.r3gan.cardinality = (8,) * 4, (2,) * 4
  c.model.r3gan.blocks, c.model.latent_dim = (1,) * 4, 8
  c.data.batch_size = 8
  c.train.steps, c.train.log_every, c.train.checkpoint_every = 2, 1, 2
  c.train.sample_every, c.train.progress, c.sample.grid_size = 0, False, 4
  c.eval.every, c.train.tensorboard, c.data.data_dir = 0, False, ""
  with tfds.testing.mock_data(num_examples=32):
    state = train.train_and_evaluate(c, str(tmp_path / variant))
  assert int(state.step) == 2 and state.ema is not None
  for leaf in jax.tree.leaves((state.g.params, state.d.params, state.ema)):
    assert np.all(np.isfinite(leaf))
