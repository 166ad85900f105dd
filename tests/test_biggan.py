"""BigGAN (jaxgan/core/models/biggan.py) and configs/biggan.py: parameter counts against
PyTorch-StudioGAN, self-attention against an independent computation, hierarchical
latents, the truncation trick, the EMA start, and a few training steps."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from flax import nnx

from configs import biggan as biggan_cfg
from jaxgan.core import models, state as state_lib
from jaxgan.run import train, validate
from jaxgan.base.errors import UserError
from jaxgan.core.models import layers as L
from tests.conftest import set_fields, tiny_config
from tests.test_regularizers import _step

# StudioGAN's big_resnet (commit 947b35e) with CIFAR10/BigGAN.yaml, built with torch:
# sum(p.numel() for p in model.parameters()); unconditional = BigGAN-Uncond.yaml.
CIFAR10_COND = (9_416_196, 2_415_170)
CIFAR10_UNCOND = (8_825_092, 2_413_250)


@pytest.mark.parametrize("variant,classes,expected", [("cifar10", 10, CIFAR10_COND),
                                                      ("cifar10_uncond", 0, CIFAR10_UNCOND)])
def test_cifar10_parameter_counts_equal_studiogan(variant, classes, expected):
  c = biggan_cfg.get_config(variant)
  assert models.param_counts(c.model, (32, 32, 3), classes) == expected


def test_self_attention_matches_an_independent_computation():
  att = L.SelfAttention(16, spectral=False, init="ortho", rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 4, 4, 16))
  np.testing.assert_array_equal(att(x, train=False), x)   # sigma starts at 0
  att.sigma[...] = jnp.array([0.7])
  got = np.asarray(att(x, train=False))
  k = lambda layer: np.asarray(layer.kernel[...])[0, 0]   # 1x1 kernels (in, out)
  xn = np.asarray(x, np.float64)
  pool = lambda v: v.reshape(2, 2, 2, 2, 2, -1).max(axis=(2, 4)).reshape(2, 4, -1)
  q = (xn @ k(att.theta)).reshape(2, 16, 2)
  kk, v = pool(xn @ k(att.phi)), pool(xn @ k(att.g))
  s = np.einsum("bqc,bkc->bqk", q, kk)
  a = np.exp(s - s.max(-1, keepdims=True))
  a /= a.sum(-1, keepdims=True)
  o = np.einsum("bqk,bkc->bqc", a, v).reshape(2, 4, 4, 8) @ k(att.o)
  np.testing.assert_allclose(got, xn + 0.7 * o, rtol=1e-4, atol=1e-5)


def small(variant="fashion_cond"):
  c = biggan_cfg.get_config(variant)
  c.model.biggan.g_base_features = c.model.biggan.d_base_features = 4
  c.model.biggan.shared_dim = 8
  return c


def test_hierarchical_latents_reach_every_block():
  c = small()
  gan, state = state_lib.create(c, (32, 32, 1), 10)
  gen = jax.jit(lambda z, y: gan.generate(state.g.params, state.g.stats, z, y,
                                          train=False)[0])
  z = jax.random.normal(jax.random.PRNGKey(0), (2, 80))
  y = jnp.array([1, 2])
  base = gen(z, y)
  assert base.shape == (2, 32, 32, 1)
  for chunk in range(4):   # 80 = 4 chunks of 20: the first linear map, then 3 blocks
    z2 = z.at[:, 20 * chunk:20 * (chunk + 1)].add(1.0)
    assert not np.allclose(gen(z2, y), base), chunk
  assert not np.allclose(gen(z, jnp.array([3, 4])), base)   # the shared class embedding


def test_truncation_trick_bounds_every_latent_component():
  gan, _ = state_lib.create(small(), (32, 32, 1), 10)
  z = gan.sample_latents(jax.random.PRNGKey(0), 500, truncation=0.5)
  assert float(jnp.abs(z).max()) <= 0.5 and float(jnp.abs(z).max()) > 0.45
  full = gan.sample_latents(jax.random.PRNGKey(0), 500)
  assert float(jnp.abs(full).max()) > 2.0


def test_ema_copies_g_until_its_start():
  c = tiny_config(**{"ema_decay": 0.99, "ema_start": 2})
  state, step, batch = _step(c)
  for i in range(3):
    before = state
    state, _ = step(state, batch)
    same = all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state.ema),
                                                  jax.tree.leaves(state.g.params)))
    assert same == (i < 2), i
  # from the start on, an ordinary EMA: ema <- 0.99 ema + 0.01 params
  for e0, g1, e1 in zip(jax.tree.leaves(before.ema), jax.tree.leaves(state.g.params),
                        jax.tree.leaves(state.ema)):
    np.testing.assert_allclose(e1, 0.99 * e0 + 0.01 * g1, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("override,match", [
    ({"model.latent_dim": 81}, "4 equal chunks"),
    ({"model.biggan.g_attention": 4}, "G has 3 blocks"),
    ({"data.image_size": 28}, "biggan architecture builds"),
])
def test_impossible_settings_are_refused(override, match):
  with pytest.raises(UserError, match=match):
    validate.validate(set_fields(biggan_cfg.get_config("fashion"), override))


def test_fashion_variants_are_valid_and_sized_for_the_cpu():
  for variant, classes in (("fashion", 0), ("fashion_cond", 10)):
    c = biggan_cfg.get_config(variant)
    validate.validate(c)
    assert c.data.name == "fashion_mnist" and c.data.image_size == 32
    g, d = models.param_counts(c.model, (32, 32, 1), classes)
    assert g < CIFAR10_COND[0] / 10 and d < CIFAR10_COND[1] / 10


# One config file, one training test (CI time): the conditional CIFAR-10 default.
@pytest.mark.parametrize("variant,name", [("cifar10", "cifar10")])
def test_biggan_configs_train_a_few_steps(tmp_path, variant, name):
  c = small(variant)
  assert c.data.name == name and c.loss == "hinge" and c.train.n_critic == 5
  c.data.batch_size = 8
  c.train.steps, c.train.log_every, c.train.checkpoint_every = 2, 1, 2
  c.train.sample_every, c.train.progress, c.sample.grid_size = 0, False, 4
  c.eval.every, c.train.tensorboard, c.data.data_dir = 0, False, ""
  c.train.critic_loop = "scan"
  with tfds.testing.mock_data(num_examples=32):
    state = train.train_and_evaluate(c, str(tmp_path / variant))
  assert int(state.step) == 2 and state.ema is not None
  for leaf in jax.tree.leaves((state.g.params, state.d.params)):
    assert np.all(np.isfinite(leaf))


def test_orthogonal_regularization_against_its_closed_form():
  from jaxgan.core.regularizers import orthogonal as O
  rs = np.random.RandomState(0)
  conv = rs.randn(3, 3, 4, 5).astype(np.float32)     # 5 filters of 36 weights
  lin = rs.randn(6, 2).astype(np.float32)
  params = {"conv": {"kernel": jnp.asarray(conv), "bias": jnp.ones(5)},
            "lin": {"kernel": jnp.asarray(lin)}, "emb": {"embedding": jnp.ones((3, 4))}}
  want = 0.0
  for w in (conv.reshape(-1, 5).T, lin.T):   # one row per output unit
    gram = w.astype(np.float64) @ w.T.astype(np.float64)
    want += np.sum((gram * (1 - np.eye(len(gram)))) ** 2)
  assert float(O.orthogonal_penalty(params)) == pytest.approx(want, rel=1e-5)
  q, _ = np.linalg.qr(rs.randn(36, 5))       # orthonormal filters: no penalty
  ortho = {"conv": {"kernel": jnp.asarray(q.reshape(3, 3, 4, 5), jnp.float32)}}
  assert float(O.orthogonal_penalty(ortho)) == pytest.approx(0.0, abs=1e-8)
  c = tiny_config(**{"regularizers": ({"name": "orthogonal", "side": "g", "weight": 1e-4},)})
  state, step, batch = _step(c)
  _, m = step(state, batch)
  assert float(m["g_orthogonal"]) == pytest.approx(
      float(O.orthogonal_penalty(state.g.params)), rel=1e-5)
