"""Shapes, ranges and parameter counts of every architecture preset."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import dcgan as dcgan_cfg
from configs import gan as gan_cfg
from configs import wgan_gp as wgan_gp_cfg
from jaxgan.core import models, state as state_lib

# Parameter counts of the pinned benchmark models, from the table in
# ../shared/bench/peers/README.md (computed there analytically and checked against the
# PyTorch and Keras implementations).
PINNED = {
    "mlp_gan": (gan_cfg.get_config("mnist_a"), (28, 28, 1), 1_477_136, 1_460_225),
    "wgan_gp28": (wgan_gp_cfg.get_config(), (28, 28, 1), 546_177, 138_561),
    "dcgan64": (dcgan_cfg.get_config(), (64, 64, 1), 3_574_657, 2_763_521),
    "wgan_gp64": (wgan_gp_cfg.get_config("gray64"), (64, 64, 1), 3_574_657, 2_762_689),
}

PRESETS = {
    "gan:fashion": (gan_cfg.get_config("fashion"), (28, 28, 1)),
    "gan:mnist_a": (gan_cfg.get_config("mnist_a"), (28, 28, 1)),
    "gan:mnist_b": (gan_cfg.get_config("mnist_b"), (28, 28, 1)),
    "dcgan": (dcgan_cfg.get_config(), (64, 64, 1)),
    "dcgan:upsample": (dcgan_cfg.get_config("upsample"), (64, 64, 1)),
    "wgan_gp": (wgan_gp_cfg.get_config(), (28, 28, 1)),
    "wgan_gp:celeba64": (wgan_gp_cfg.get_config("celeba64"), (64, 64, 3)),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_pinned_parameter_counts(name):
  config, shape, g_params, d_params = PINNED[name]
  _, state = state_lib.create(config, shape, 0)
  assert state_lib.count_params(state.g.params) == g_params
  assert state_lib.count_params(state.d.params) == d_params


def run_models(config, shape, num_classes=0, batch=3):
  gan, state = state_lib.create(config, shape, num_classes)
  z = jnp.linspace(-2, 2, batch * gan.latent_dim).reshape(batch, gan.latent_dim)
  labels = jnp.arange(batch) % num_classes if gan.num_classes else None
  x, _ = gan.generate(state.g.params, state.g.stats, z, labels, train=True)
  d_labels = None if gan.conditioning == "acgan" else labels
  logits, cls, _ = gan.discriminate(state.d.params, state.d.stats, x, d_labels, train=True,
                                    key=jax.random.PRNGKey(0))
  assert (cls is not None) == (gan.conditioning == "acgan")
  if cls is not None:
    assert cls.shape == (batch, num_classes)
  return gan, state, x, logits


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_shapes_and_range(name):
  config, shape = PRESETS[name]
  _, _, x, logits = run_models(config, shape)
  assert x.shape == (3, *shape)
  assert float(jnp.max(jnp.abs(x))) <= 1.0
  assert logits.shape == (3,)
  assert np.all(np.isfinite(np.asarray(logits)))


@pytest.mark.parametrize("size,start", [(28, 7), (32, 4), (64, 4)])
@pytest.mark.parametrize("stem,head", [("convt", "conv"), ("dense", "dense")])
def test_dcgan_is_resolution_generic(size, start, stem, head):
  c = dcgan_cfg.get_config()
  c.model.dcgan.start_size, c.model.dcgan.g_stem, c.model.dcgan.d_head = start, stem, head
  c.model.dcgan.g_base_features = c.model.dcgan.d_base_features = 8
  _, _, x, logits = run_models(c, (size, size, 3))
  assert x.shape == (3, size, size, 3) and logits.shape == (3,)


def test_dcgan_rejects_impossible_resolution():
  c = dcgan_cfg.get_config()
  with pytest.raises(ValueError, match="image_size = start_size \\* 2\\*\\*n"):
    state_lib.create(c, (48, 48, 1), 0)


def test_unknown_conditioning():
  c = gan_cfg.get_config()
  c.model.conditioning = "film"
  with pytest.raises(ValueError, match="Unknown conditioning .film.*none, concat, projection, acgan"):
    state_lib.create(c, (28, 28, 1), 10)


def test_unknown_architecture_and_norm():
  c = gan_cfg.get_config()
  c.model.arch = "resnet9000"
  with pytest.raises(ValueError, match="Unknown architecture 'resnet9000'.*dcgan, gat, mlp"):
    state_lib.create(c, (28, 28, 1), 0)
  c = dcgan_cfg.get_config()
  c.model.d_norm = "group"
  with pytest.raises(ValueError, match="Unknown norm 'group'"):
    state_lib.create(c, (64, 64, 1), 0)


def test_batchnorm_statistics_live_in_the_state():
  c = dcgan_cfg.get_config()
  c.model.dcgan.g_base_features = c.model.dcgan.d_base_features = 8
  gan, state, _, _ = run_models(c, (64, 64, 1))
  z = jax.random.normal(jax.random.PRNGKey(0), (4, gan.latent_dim))
  _, new_stats = gan.generate(state.g.params, state.g.stats, z, train=True)
  _, same_stats = gan.generate(state.g.params, state.g.stats, z, train=False)
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.g.stats, new_stats)
  assert all(jax.tree.leaves(changed))  # running mean/var moved in training mode
  unchanged = jax.tree.map(lambda a, b: bool(jnp.all(a == b)), state.g.stats, same_stats)
  assert all(jax.tree.leaves(unchanged))


def test_dropout_draws_from_the_key():
  c = dcgan_cfg.get_config()
  c.model.dcgan.g_base_features = c.model.dcgan.d_base_features = 8
  gan, state, x, _ = run_models(c, (64, 64, 1))
  d = lambda k: gan.discriminate(state.d.params, state.d.stats, x, train=True,
                                 key=jax.random.PRNGKey(k))[0]
  np.testing.assert_array_equal(d(1), d(1))
  assert not np.allclose(d(1), d(2))


def test_spectral_norm_discriminator():
  c = wgan_gp_cfg.get_config()
  c.model.d_spectral_norm = True
  gan, state, x, logits = run_models(c, (28, 28, 1))
  assert logits.shape == (3,)
  # The power-iteration vectors are state (updated in training), not parameters.
  stats = jax.tree_util.tree_flatten_with_path(state.d.stats)[0]
  assert any("u" in jax.tree_util.keystr(p) for p, _ in stats)


def test_spectral_norm_bounds_the_layer_norm():
  from flax import nnx
  layer = nnx.SpectralNorm(nnx.Linear(16, 8, rngs=nnx.Rngs(0)), n_steps=50, rngs=nnx.Rngs(1))
  layer(jnp.ones((1, 16)), update_stats=True)
  w = np.asarray(layer.layer_instance.kernel[...])
  sigma = np.linalg.svd(w, compute_uv=False)[0]
  probe = layer(jnp.eye(16), update_stats=False)  # rows = normalised kernel (+ bias)
  w_sn = np.asarray(probe) - np.asarray(layer.layer_instance.bias[...])
  np.testing.assert_allclose(w_sn, w / sigma, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
@pytest.mark.parametrize("method", ["concat", "projection", "acgan"])
def test_conditioning_methods(arch, method):
  c = gan_cfg.get_config() if arch == "mlp" else wgan_gp_cfg.get_config()
  c.model.conditioning = method
  if arch == "dcgan":
    c.model.dcgan.g_base_features = c.model.dcgan.d_base_features = 8
  gan, state, x, logits = run_models(c, (28, 28, 1), num_classes=10)
  assert gan.num_classes == 10 and x.shape == (3, 28, 28, 1) and logits.shape == (3,)
  z = jnp.zeros((2, gan.latent_dim))
  x0, _ = gan.generate(state.g.params, state.g.stats, z, jnp.array([0, 1]), train=False)
  assert not np.allclose(x0[0], x0[1])  # same z, different label -> different image
  with pytest.raises(ValueError, match="conditional .* got no labels"):
    gan.generate(state.g.params, state.g.stats, z, None, train=False)
  if method != "acgan":  # D's output depends on the label it is given
    l0, _, _ = gan.discriminate(state.d.params, state.d.stats, x, jnp.zeros(3, jnp.int32),
                                train=False)
    l1, _, _ = gan.discriminate(state.d.params, state.d.stats, x, jnp.ones(3, jnp.int32),
                                train=False)
    assert not np.allclose(l0, l1)


def test_projection_discriminator_adds_the_embedding_inner_product():
  c = gan_cfg.get_config()
  c.model.conditioning = "projection"
  gan, state = state_lib.create(c, (28, 28, 1), 10)
  x = jax.random.uniform(jax.random.PRNGKey(0), (4, 28, 28, 1), minval=-1, maxval=1)
  y = jnp.array([0, 3, 3, 9])
  logits, _, _ = gan.discriminate(state.d.params, state.d.stats, x, y, train=False)
  # Recompute: phi = last hidden layer; logit = w.phi + b + <E[y], phi>.
  p = state.d.params
  h = x.reshape(4, -1)
  for layer in p["hidden"].values():
    h = jax.nn.leaky_relu(h @ layer["kernel"][...] + layer["bias"][...], 0.2)
  want = (h @ p["out"]["kernel"][...] + p["out"]["bias"][...])[:, 0]
  want = want + jnp.sum(p["cond"]["embed"]["embedding"][...][y] * h, axis=-1)
  np.testing.assert_allclose(logits, want, rtol=1e-5, atol=1e-5)


def test_concat_critic_receives_label_channels():
  c = wgan_gp_cfg.get_config()
  c.model.conditioning = "concat"
  gan, state = state_lib.create(c, (28, 28, 1), 10)
  first = state.d.params["convs"][0]["kernel"][...]
  assert first.shape == (4, 4, 1 + 10, 64)


def test_model_registry_is_extensible():
  assert "mlp" in models.ARCHITECTURES and "dcgan" in models.ARCHITECTURES
