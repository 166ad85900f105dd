"""The SNGAN ResNet (jaxgan/core/models/resnet.py) and configs/sngan.py: parameter counts against
PyTorch-StudioGAN, shapes per resolution, spectral norm, conditional BatchNorm, training."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from flax import nnx

from configs import sngan
from jaxgan.core import models, state as state_lib
from jaxgan.run import train, validate
from jaxgan.base.errors import UserError
from jaxgan.core.models import resnet
from tests.conftest import set_fields

# StudioGAN's resnet.py for CIFAR-10 (z 128, g_conv_dim = d_conv_dim = 64, 10 classes).
# Unconditional: ../shared/bench/MODELS.md (`resnet32`). Conditional (cBN + projection):
# each of the 6 block BatchNorms trades its 2 x 256 affine parameters for two 10 x 256
# class embeddings, and D gains the 10 x 128 projection embedding.
UNCOND_32 = (4_276_739, 1_053_825)
COND_32 = (UNCOND_32[0] + 6 * (2 * 10 * 256 - 2 * 256), UNCOND_32[1] + 10 * 128)
# StudioGAN's own classes (commit 947b35e, CIFAR10/SNGAN.yaml with DATA.img_size changed),
# counted with torch: sum(p.numel() for p in model.parameters()).
COND_64 = (12_272_515, 19_552_961)
COND_128 = (32_239_491, 38_429_377)


def counts(config, shape, classes):
  return models.param_counts(config.model, shape, classes)


@pytest.mark.parametrize("variant,size,expected", [
    ("cifar10_uncond", 32, UNCOND_32), ("cifar10", 32, COND_32), ("cifar10", 64, COND_64),
    ("cifar10", 128, COND_128)])
def test_parameter_counts_equal_studiogan(variant, size, expected):
  c = sngan.get_config(variant)
  classes = 10 if c.model.conditioning != "none" else 0
  assert counts(c, (size, size, 3), classes) == expected


@pytest.mark.parametrize("size,conditioning", [(32, "none"), (32, "projection"),
                                               (32, "acgan"), (64, "projection"),
                                               (128, "none")])
def test_shapes_at_each_resolution(size, conditioning):
  c = sngan.get_config("fashion")
  c.model.conditioning = conditioning
  c.model.resnet.g_base_features = c.model.resnet.d_base_features = 2
  classes = 0 if conditioning == "none" else 10
  gan, state = state_lib.create(c, (size, size, 3), classes)
  z = jax.random.normal(jax.random.PRNGKey(0), (2, gan.latent_dim))
  y = jnp.array([1, 7]) if classes else None
  # Compiled whole: eager mode would compile each small op on its own (slower here).
  x, _ = jax.jit(lambda *a: gan.generate(*a, train=True))(state.g.params, state.g.stats, z, y)
  assert x.shape == (2, size, size, 3) and float(jnp.abs(x).max()) <= 1.0
  d_labels = None if conditioning == "acgan" else y
  logits, cls, _ = jax.jit(lambda *a: gan.discriminate(*a, train=True))(
      state.d.params, state.d.stats, x, d_labels)
  assert logits.shape == (2,)
  assert (cls is None) == (conditioning != "acgan")
  # G: one up-block per doubling from 4x4; D: StudioGAN's block list for the size.
  assert len(state.g.params["blocks"]) == int(np.log2(size // 4))
  assert len(state.d.params["blocks"]) == len(resnet.D_WIDTHS[size])


def test_resampling_helpers_match_numpy():
  x = np.random.RandomState(0).randn(2, 4, 6, 3).astype(np.float32)
  up = np.asarray(resnet.upsample2(jnp.asarray(x)))
  np.testing.assert_array_equal(up, x.repeat(2, axis=1).repeat(2, axis=2))
  pooled = np.asarray(resnet.avgpool2(jnp.asarray(x)))
  want = (x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2]) / 4
  np.testing.assert_allclose(pooled, want, rtol=1e-6)


def test_discriminator_blocks_follow_studiogan_at_32px():
  d = resnet.ResNetDiscriminator((32, 32, 3), base_features=4, rngs=nnx.Rngs(0))
  # Blocks 1-2 downsample with a learned 1x1 shortcut; blocks 3-4 keep 8x8 and width,
  # so their shortcut is the identity (no parameters).
  assert [b.down for b in d.blocks] == [True, True, False, False]
  assert [b.shortcut is None for b in d.blocks] == [False, False, True, True]
  h = jnp.zeros((1, 32, 32, 3))
  sizes = []
  for b in d.blocks:
    h = b(h, train=False)
    sizes.append(h.shape[1])
  assert sizes == [16, 8, 8, 8]


def test_spectral_norm_sigma_is_the_largest_singular_value():
  d = resnet.ResNetDiscriminator((32, 32, 1), base_features=4, rngs=nnx.Rngs(0))
  layer = d.blocks[1].conv1   # SpectralNorm(Conv2D 8 -> 8, 3x3)
  x = jnp.ones((1, 8, 8, 8))
  for _ in range(200):        # the power iteration converges to the top singular pair
    layer(x, update_stats=True)
  kernel = np.asarray(layer.layer_instance.kernel[...])
  w = kernel.reshape(-1, kernel.shape[-1])
  sigma = next(v[...] for p, v in nnx.iter_graph(layer) if isinstance(v, nnx.BatchStat)
               and v[...].ndim == 0)
  np.testing.assert_allclose(float(sigma), np.linalg.svd(w, compute_uv=False)[0], rtol=1e-4)


def test_conditional_batchnorm_is_normalise_then_class_affine():
  bn = resnet.BatchNorm(5, 3, "ortho", rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.PRNGKey(1), (4, 2, 2, 5)) * 3 + 1
  y = jnp.array([0, 2, 2, 1])
  out = bn(x, y, train=True)
  mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
  normed = (x - mean) / jnp.sqrt(var + resnet.BN_EPS)
  gain = np.asarray(bn.gain.embedding[...])[np.asarray(y)]
  bias = np.asarray(bn.bias.embedding[...])[np.asarray(y)]
  want = normed * (1 + gain[:, None, None, :]) + bias[:, None, None, :]
  np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)


def test_orthogonal_initialisation():
  g = resnet.ResNetGenerator(8, (32, 32, 1), base_features=4, rngs=nnx.Rngs(0))
  w = np.asarray(g.linear.kernel[...])           # (8, 256): orthonormal rows
  np.testing.assert_allclose(w @ w.T, np.eye(8), atol=1e-5)
  k = np.asarray(g.blocks[0].conv1.kernel[...])  # (3, 3, 16, 16) -> (144, 16)
  m = k.reshape(-1, k.shape[-1])
  np.testing.assert_allclose(m.T @ m, np.eye(16), atol=1e-5)
  assert not np.any(np.asarray(g.blocks[0].conv1.bias[...]))


@pytest.mark.parametrize("override,match", [
    ({"data.image_size": 28}, "32, 64, 128"),
    ({"model.conditioning": "concat"}, "'projection'"),
    ({"model.g_norm": "none"}, "g_norm"),
    ({"model.d_norm": "batch"}, "without spectral norm"),
])
def test_impossible_settings_are_refused(override, match):
  with pytest.raises(UserError, match=match):
    validate.validate(set_fields(sngan.get_config("fashion"), override))


def test_fashion_variants_are_valid_and_read_the_shared_tfds_data():
  for variant in ("fashion", "fashion_cond"):
    c = sngan.get_config(variant)
    validate.validate(c)
    assert (c.data.name, c.data.image_size, c.data.channels) == ("fashion_mnist", 32, 1)
    assert c.data.data_dir.endswith("shared/data/tensorflow_datasets")


@pytest.mark.parametrize("variant,conditioning", [("fashion_dcgan", "none"),
                                                  ("fashion_dcgan_cond", "projection")])
def test_fashion_dcgan_is_the_wgan_gp_networks_with_the_sngan_recipe(tmp_path, variant,
                                                                     conditioning):
  from configs import wgan_gp  # pylint: disable=g-import-not-at-top
  c, base = sngan.get_config(variant), wgan_gp.get_config()
  validate.validate(c)
  assert c.model.to_dict() == {**base.model.to_dict(), "d_spectral_norm": True,
                               "conditioning": conditioning}
  assert (c.loss, c.penalty, c.train.n_critic, c.ema_decay) == ("hinge", "none", 1, 0.999)
  assert (c.data.name, c.data.image_size) == ("fashion_mnist", 28)
  assert [(s["target"], s["end"], s["steps"]) for s in c.schedules] == [
      ("optim.g.lr", 1e-5, 30_000), ("optim.d.lr", 1e-5, 30_000)]
  c.model.dcgan.g_base_features = c.model.dcgan.d_base_features = 4
  c.data.batch_size, c.model.latent_dim = 8, 8
  c.train.steps, c.train.log_every, c.train.checkpoint_every = 4, 2, 4
  c.train.sample_every, c.eval.every, c.train.progress = 0, 0, False
  with tfds.testing.mock_data(num_examples=32):
    state = train.train_and_evaluate(c, str(tmp_path))
  assert int(state.step) == 4 and state.ema is not None
  assert not np.allclose(jax.tree.leaves(state.ema)[0], jax.tree.leaves(state.g.params)[0])


# One config file, one training test (CI time): the conditional CIFAR-10 default.
@pytest.mark.parametrize("variant,shape,name", [("cifar10", (32, 32, 3), "cifar10")])
def test_sngan_configs_train_a_few_steps(tmp_path, variant, shape, name):
  c = sngan.get_config(variant)
  assert c.data.name == name and c.loss == "hinge" and c.train.n_critic == 5
  c.model.resnet.g_base_features = c.model.resnet.d_base_features = 2
  c.data.batch_size, c.model.latent_dim = 8, 16
  c.train.steps, c.train.log_every, c.train.checkpoint_every = 2, 1, 2
  c.train.sample_every, c.train.progress, c.sample.grid_size = 0, False, 4
  c.eval.every, c.train.tensorboard = 0, False
  c.train.critic_loop = "scan"   # one traced critic update instead of five: faster to compile
  c.data.data_dir = ""
  with tfds.testing.mock_data(num_examples=32):
    state = train.train_and_evaluate(c, str(tmp_path / variant))
  assert int(state.step) == 2
  for leaf in jax.tree.leaves((state.g.params, state.d.params)):
    assert np.all(np.isfinite(leaf))
