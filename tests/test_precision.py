"""Mixed precision (train.dtype=bfloat16): the networks compute in bf16, everything the
step keeps or reduces stays float32, and one step agrees with float32 to bf16 accuracy."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import sngan as sngan_cfg
from configs import wgan_gp as wgan_gp_cfg
from jaxgan.core import precision
from jaxgan.run import train
from tests.test_train_step import make


def small(cfg_module, variant, dtype, **fields):
  c = cfg_module.get_config(variant)
  c.train.dtype = dtype
  c.data.batch_size, c.train.n_critic = 8, 2
  for k, v in fields.items():
    node = c
    for p in k.split(".")[:-1]:
      node = node[p]
    node[k.split(".")[-1]] = v
  return c


def wgan_gp(dtype):
  return small(wgan_gp_cfg, "default", dtype, **{"model.dcgan.g_base_features": 8,
                                                 "model.dcgan.d_base_features": 8,
                                                 "model.latent_dim": 8})


def test_cast_and_like_keep_non_float_leaves_and_restore_dtypes():
  tree = {"w": jnp.ones((2,), jnp.float32), "n": jnp.arange(3), "none": None}
  low = precision.cast(tree, jnp.bfloat16)
  assert low["w"].dtype == jnp.bfloat16 and low["n"].dtype == tree["n"].dtype
  assert precision.cast(tree, jnp.float32) is tree
  back = precision.like(low, tree)
  assert back["w"].dtype == jnp.float32 and back["n"].dtype == tree["n"].dtype
  assert precision.to_float32(low)["w"].dtype == jnp.float32


def test_bf16_step_computes_in_bf16_and_keeps_float32_state():
  gan, state, step, batch = make(wgan_gp("bfloat16"))
  text = str(jax.make_jaxpr(step)(state, batch))
  convs = [l for l in text.splitlines() if "conv_general_dilated" in l]
  assert convs and all("bf16" in l for l in convs)       # every convolution is bf16
  new, metrics = step(state, batch)
  for tree in (new.g, new.d, new.hparams):
    assert {str(x.dtype) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)
            } == {"float32"}
  for k in ("c_loss", "c_gp", "g_loss", "d_grad_norm"):
    assert metrics[k].dtype == jnp.float32 and np.isfinite(float(metrics[k])), k


@pytest.mark.parametrize("cfg", [wgan_gp, lambda d: small(
    sngan_cfg, "fashion", d, **{"model.resnet.g_base_features": 8,
                                "model.resnet.d_base_features": 8})])
def test_bf16_step_matches_float32_to_bf16_accuracy(cfg):
  _, s32, step32, batch = make(cfg("float32"), shape=(cfg("float32").data.image_size,) * 2 + (1,))
  _, s16, step16, _ = make(cfg("bfloat16"), shape=(cfg("float32").data.image_size,) * 2 + (1,))
  (n32, m32), (n16, m16) = step32(s32, batch), step16(s16, batch)
  for k in m32:   # losses and D's outputs to bf16 accuracy; gradient norms (sums of
    if k.startswith("hist_") or k == "params_finite":   # many rounded terms) looser
      continue
    tol = 0.25 if k.endswith("grad_norm") else 0.05
    np.testing.assert_allclose(float(np.mean(m16[k])), float(np.mean(m32[k])),
                               rtol=tol, atol=0.05, err_msg=k)
  # Adam's first step moves each weight by about lr * sign(gradient): the bf16 gradients
  # point the same way as the float32 ones for nearly every weight of G and D.
  for net in ("g", "d"):
    u32 = jnp.concatenate([jnp.ravel(a - b) for a, b in zip(
        jax.tree.leaves(getattr(n32, net).params), jax.tree.leaves(getattr(s32, net).params))])
    u16 = jnp.concatenate([jnp.ravel(a - b) for a, b in zip(
        jax.tree.leaves(getattr(n16, net).params), jax.tree.leaves(getattr(s16, net).params))])
    moved = jnp.abs(u32) > 1e-6
    assert float(jnp.mean(jnp.sign(u16)[moved] == jnp.sign(u32)[moved])) >= 0.9, net


def test_bf16_spectral_norm_writes_the_weight_in_its_own_dtype():
  """flax would scatter W / sigma (float32: u is float32 state) into the bfloat16 weight,
  which JAX deprecates (FutureWarning, an error in later releases); layers.SpectralNorm
  writes it in bfloat16 and keeps u float32."""
  import warnings  # pylint: disable=g-import-not-at-top
  c = small(sngan_cfg, "fashion", "bfloat16", **{"model.resnet.g_base_features": 8,
                                                 "model.resnet.d_base_features": 8})
  _, state, step, batch = make(c, shape=(c.data.image_size,) * 2 + (1,))
  with warnings.catch_warnings():
    warnings.simplefilter("error", FutureWarning)
    new, metrics = step(state, batch)
  assert np.isfinite(float(metrics["d_loss"]))
  us = [x for p, x in jax.tree_util.tree_leaves_with_path(new.d.stats)
        if "u" in jax.tree_util.keystr(p).split("'")]
  assert us and all(u.dtype == jnp.float32 for u in us)


def test_bf16_wgan_gp_trains_a_few_steps(tmp_path):
  c = wgan_gp("bfloat16")
  c.train.steps, c.train.log_every, c.train.checkpoint_every = 6, 2, 3
  c.train.sample_every, c.train.progress, c.eval.every = 3, False, 0
  c.data.max_examples = 64
  state = train.train_and_evaluate(c, str(tmp_path))
  assert int(state.step) == 6
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.g.params))
