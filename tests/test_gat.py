"""GAT (jaxgan/core/models/gat.py, transformer_layers.py): parameter counts and outputs
against the authors' code (hse1032/GAT, fixtures made by tools/independent/gat_parity.py in
a side venv with torch), the position tables and MNG noise against their closed forms, the
finite-difference R1/R2 against the exact penalties, and a few training steps."""
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import gat as gat_cfg
from jaxgan.base.errors import UserError
from jaxgan.core import models, optim
from jaxgan.core.augment import partial as gat_aug
from jaxgan.core.models import gat
from jaxgan.core.models import transformer_layers as T
from jaxgan.core.regularizers import gradient_penalties as gp
from jaxgan.run import train, validate
from tests.conftest import set_fields, tiny_config

FIXTURES = os.path.join(os.path.dirname(__file__), "data", "gat")


def _tiny(**over):
  c = tiny_config(**{"model.arch": "gat", "model.latent_dim": 16, "data.image_size": 16,
                     "data.batch_size": 4, "model.gat.width": 32, "model.gat.depth": 2,
                     "model.gat.heads": 2, "model.gat.patch": 4, "model.gat.levels": 2,
                     "model.gat.d_cmap_dim": 16})
  gat_cfg.recipe(c, 32, policy="gat_color,translation,cutout,gat_flip")
  return set_fields(c, over)


def _reference_counts():
  with open(os.path.join(FIXTURES, "gat_reference_counts.json")) as f:
    return json.load(f)


@pytest.mark.parametrize("preset", gat_cfg.PRESETS)
def test_preset_parameter_counts_equal_the_reference(preset):
  """G and D at the ImageNet-256 latent setting (32x32x4, 1000 classes, REPA to DINOv2-B's
  768) against sum(p.numel()) of the reference's own modules. Ours lacks the frozen sin-cos
  tables (constants here) and G's noise-image patch embedding (multiplied by 0 there)."""
  ref = _reference_counts()[preset[:-1].upper() + "/" + preset[-1]]
  c = gat_cfg.get_config(preset)
  c.model.gat.repa_dim = 768
  g, d = models.param_counts(c.model, (32, 32, 4), 1000)
  assert g == ref["g_total"] - ref["g_pos_embed"] - ref["g_x_embedder"]
  assert d == ref["d_total"] - ref["d_pos_embed"]
  c.model.gat.repa_dim = 0
  assert models.param_counts(c.model, (32, 32, 4), 1000)[1] == d - ref["d_repa_proj"]


def _put(param, value):
  assert param.shape == value.shape, (param.shape, value.shape)
  param[...] = jnp.asarray(value)


def _load_linear(layer, sd, name):
  _put(layer.kernel, sd[name + ".weight"].T)
  _put(layer.bias, sd[name + ".bias"])


def _load_attention_and_mlp(block, sd, p):
  _load_linear(block.attn.qkv, sd, p + "attn.qkv")
  _load_linear(block.attn.proj, sd, p + "attn.proj")
  _put(block.attn.q_norm.scale, sd[p + "attn.q_norm.weight"])
  _put(block.attn.k_norm.scale, sd[p + "attn.k_norm.weight"])
  _load_linear(block.mlp.w12, sd, p + "mlp.w12")
  _load_linear(block.mlp.w3, sd, p + "mlp.w3")


def _reference_nets():
  """Our G and D built as the fixture's reference modules, with its weights."""
  f = np.load(os.path.join(FIXTURES, "gat_parity.npz"))
  meta = json.loads(str(f["meta"]))
  gk, dk = meta["g_kwargs"], meta["d_kwargs"]
  kw = dict(width=gk["hidden_size"], depth=gk["depth"], heads=gk["num_heads"],
            patch=gk["patch_size"], conditioning="projection", num_classes=gk["num_classes"])
  shape = (gk["input_size"], gk["input_size"], gk["in_channels"])
  g = gat.GATGenerator(gk["latent_size"], shape, rngs=nnx.Rngs(0), **kw)
  d = gat.GATDiscriminator(shape, cmap_dim=dk["cmap_dim"], repa_dim=dk["z_dims"][0],
                           repa_hidden=dk["projector_dim"], rngs=nnx.Rngs(0), **kw)
  sd = {k[2:]: f[k] for k in f.files if k.startswith("g/")}
  _put(g.embed.embedding, sd["y_embedder.embedding_table.weight"])
  _load_linear(g.map1, sd, "latent_embedder.0")
  _load_linear(g.map2, sd, "latent_embedder.2")
  _put(g.w_avg, sd["w_avg"])
  for i, block in enumerate(g.blocks):
    _load_attention_and_mlp(block, sd, f"blocks.{i}.")
    _load_linear(block.ada, sd, f"blocks.{i}.adaLN_modulation.1")
  for i, head in enumerate(g.heads):
    _load_linear(head.out, sd, f"final_layers.{i}.linear")
    _load_linear(head.ada, sd, f"final_layers.{i}.adaLN_modulation.1")
  sd = {k[2:]: f[k] for k in f.files if k.startswith("d/")}
  w = sd["x_embedder.proj.weight"]                                 # (H, Cin, p, p)
  _put(d.embed_patches.kernel, w.transpose(2, 3, 1, 0).reshape(-1, w.shape[0]))
  _put(d.embed_patches.bias, sd["x_embedder.proj.bias"])
  _put(d.cls, sd["cls_token"].reshape(-1))
  for i, block in enumerate(d.blocks):
    p = f"blocks.{i}."
    _load_attention_and_mlp(block, sd, p)
    _put(block.norm1.scale, sd[p + "norm1.weight"])
    _put(block.norm2.scale, sd[p + "norm2.weight"])
    _put(block.ls1, sd[p + "ls_attn"])
    _put(block.ls2, sd[p + "ls_mlp"])
  _put(d.final_norm.scale, sd["final_layer.0.weight"])
  _load_linear(d.final, sd, "final_layer.1")
  _put(d.embed.embedding, sd["y_embedder.embedding_table.weight"])
  _load_linear(d.cmap1, sd, "y_embedder.latent_embedder.0")
  _load_linear(d.cmap2, sd, "y_embedder.latent_embedder.2")
  for i, layer in enumerate(d.repa):
    _load_linear(layer, sd, f"proj.{2 * i}")
  return g, d, f


def test_outputs_equal_the_reference_code():
  """The authors' G (every level, and truncated towards w_avg) and D (logit and REPA
  projections) on the fixture's inputs; NCHW there, NHWC here."""
  g, d, f = _reference_nets()
  z, y = jnp.asarray(f["g_in_z"]), jnp.asarray(f["g_in_y"])
  nchw = lambda x: np.moveaxis(np.asarray(x), -1, -3)
  levels = g(z, y, train=False, truncation=1.0)
  np.testing.assert_allclose(nchw(levels), f["g_out_f64"], rtol=2e-4, atol=2e-4)
  g.mng = True
  multi = np.asarray(g(z, y, train=True)).reshape(3, 8, 8, 4, 4)       # (B, H, W, level, C)
  np.testing.assert_allclose(np.moveaxis(multi, (3, 4), (0, 2)), f["g_out_multiscale_f64"],
                             rtol=2e-4, atol=2e-4)
  psi_ref = 0.3                     # the reference lerps towards w_avg by psi: ours 1 - psi
  g.w_avg[...] = jnp.asarray(f["g/w_avg"])    # (the train call above moved it)
  np.testing.assert_allclose(nchw(g(z, y, train=False, truncation=1 - psi_ref)),
                             f["g_out_psi0p3_f64"], rtol=2e-4, atol=2e-4)
  stack = jnp.asarray(np.moveaxis(f["d_in_x"], (0, 2), (3, 4)).reshape(3, 8, 8, 16))
  h = d.trunk(stack)
  np.testing.assert_allclose(d.logits(h, jnp.asarray(f["d_in_y"])), f["d_out_logit_f64"][:, 0],
                             rtol=2e-4, atol=2e-4)
  proj = d.project(h)
  np.testing.assert_allclose(proj[:, :1], f["d_out_proj_cls_f64"], rtol=2e-4, atol=2e-4)
  np.testing.assert_allclose(proj[:, 1:], f["d_out_proj_tokens_f64"], rtol=2e-4, atol=2e-4)


def test_sincos_table_is_maes_2d_table():
  """Channels [sin(col w), cos(col w), sin(row w), cos(row w)], w_k = 10000^(-k / (H/4))."""
  table = T.sincos_table(16, 3, 5)
  assert table.shape == (15, 16)
  w = 10000.0 ** (-np.arange(4) / 4)
  row, col = 2, 3
  want = np.concatenate([np.sin(col * w), np.cos(col * w), np.sin(row * w), np.cos(row * w)])
  np.testing.assert_allclose(table[row * 5 + col], want, rtol=1e-6)


def test_rope_scores_depend_on_relative_positions_only():
  """<R(p) q, R(p') k> = <R(p + s) q, R(p' + s) k>: rotary embeddings make attention
  scores a function of the 2-D offset; and every rotation keeps the norm."""
  hd, g = 16, 6
  cos, sin = T.rope_tables(hd, g, g)
  q, k = jax.random.normal(jax.random.PRNGKey(0), (2, hd))
  at_all = lambda v: jnp.broadcast_to(v, (1, g * g, 1, hd))   # one vector at every token
  rq = T.apply_rope(at_all(q), cos, sin)[0, :, 0]
  rk = T.apply_rope(at_all(k), cos, sin)[0, :, 0]
  np.testing.assert_allclose(jnp.linalg.norm(rq, axis=-1), jnp.linalg.norm(q), rtol=1e-5)
  at = lambda i, j: i * g + j
  s1 = float(rq[at(1, 2)] @ rk[at(3, 0)])
  s2 = float(rq[at(2, 4)] @ rk[at(4, 2)])      # both shifted by (1, 2)
  assert s1 == pytest.approx(s2, rel=1e-4, abs=1e-5)
  assert abs(s1 - float(rq[at(1, 2)] @ rk[at(3, 1)])) > 1e-3   # another offset differs


def test_rope_rotates_rows_with_the_first_half_and_columns_with_the_second():
  hd = 8
  cos, sin = T.rope_tables(hd, 3, 4)
  freqs = 10000.0 ** (-4 * np.arange(2) / hd)
  i, j = 2, 3
  ang = np.concatenate([np.repeat(i * freqs, 2), np.repeat(j * freqs, 2)])
  np.testing.assert_allclose(cos[i * 4 + j], np.cos(ang), rtol=1e-6)
  np.testing.assert_allclose(sin[i * 4 + j], np.sin(ang), rtol=1e-6)


def test_mng_noise_is_one_trajectory_with_std_t():
  """n_k ~ N(0, t_k^2), and n_k = r_k n_{k+1} + s_k eps: Cov(n_k, n_{k+1}) = r_k t_{k+1}^2
  with r_k = (1 - t_k) / (1 - t_{k+1}); a level's signal is scaled by 1 - t_k."""
  t = gat.MNG_T
  x = jnp.full((4, 200_000, 1, 1, 1), 2.0)
  out = gat.mng_noise(x, t, jax.random.PRNGKey(0))[:, :, 0, 0, 0]
  n = out - 2.0 * (1 - jnp.asarray(t))[:, None]
  np.testing.assert_allclose(jnp.std(n, axis=1), t, rtol=1e-2)
  for k in range(3):
    r = (1 - t[k]) / (1 - t[k + 1])
    cov = float(jnp.mean(n[k] * n[k + 1]))
    assert cov == pytest.approx(r * t[k + 1] ** 2, rel=3e-2, abs=2e-4)


def test_generator_levels_are_cumulative_and_the_sample_is_the_last():
  c = _tiny()
  g, d = models.build(c.model, (16, 16, 1), 0, 0)
  z = jax.random.normal(jax.random.PRNGKey(1), (3, 16))
  levels = g(z, None, train=True)
  sample = g(z, None, train=False)
  assert levels.shape == (3, 16, 16, 2) and sample.shape == (3, 16, 16, 1)
  np.testing.assert_allclose(levels[..., 1:], sample, rtol=1e-5, atol=1e-6)
  assert float(jnp.abs(levels[..., :1] - sample).max()) > 1e-3
  logits, _ = d(levels, None, train=True, rngs=jax.random.PRNGKey(2))
  assert logits.shape == (3,)
  real, _ = d(sample, None, train=True, rngs=jax.random.PRNGKey(2))   # replicated per level
  assert real.shape == (3,)


def test_w_avg_follows_the_mapping_and_truncation_pulls_towards_it():
  c = _tiny(**{"model.conditioning": "projection"})
  g, _ = models.build(c.model, (16, 16, 1), 3, 0)
  z = jax.random.normal(jax.random.PRNGKey(1), (4, 16))
  y = jnp.array([0, 0, 2, 2])
  g(z, y, train=True)
  w = g.mapping(z, y)
  avg = np.asarray(g.w_avg[...])
  np.testing.assert_allclose(avg[0], 0.005 * np.mean(w[:2], 0), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(avg[1], 0.0)                 # class 1 was not in the batch
  full = g(z, y, train=False, truncation=0.0)             # psi 0: every sample is w_avg[y]
  np.testing.assert_allclose(full[0], full[1], rtol=1e-5, atol=1e-6)


def test_w_avg_moves_in_the_generator_update_only():
  """The reference tracks w_avg in step_gen alone: a D update leaves G's stats as they were."""
  from jaxgan.core import schedules, state as state_lib, train_step
  c = _tiny(regularizers=())   # the penalties' extra D passes only slow its compile
  gan, st = state_lib.create(c, (16, 16, 1), 0)
  step = train_step.TrainStep(gan, c)
  hp = schedules.at(step.schedules, st.hparams, st.step)
  real = jnp.zeros((4, 16, 16, 1), jnp.uint8)
  d_update = jax.jit(lambda d, g, reg, hp: step.d_update(d, g, g.stats, reg, real, None, 0,
                                                        jax.random.PRNGKey(0), hp))
  g_update = jax.jit(lambda g, d, reg, hp: step.g_update(g, d, reg, real, None, 0,
                                                        jax.random.PRNGKey(1), hp))
  _, g_stats, _, _ = d_update(st.d, st.g, st.reg or {}, hp)
  assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), g_stats, st.g.stats))
  g, _, _, _ = g_update(st.g, st.d, st.reg or {}, hp)
  moved = jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.any(a != b)), g.stats,
                                       st.g.stats))
  assert any(moved)


def test_gat_color_takes_its_means_before_the_brightness_shift():
  """On a constant image (its means are the value a) the reference's transform gives a +
  (b - 1/2) 2s (c + 1/2): brightness scaled by the saturation and contrast factors."""
  x = jnp.full((64, 2, 2, 3), 0.3)
  key = jax.random.PRNGKey(4)
  y = gat_aug.gat_color(key, x)
  k_mask, kb, ks, kc = jax.random.split(key, 4)
  u = lambda k: np.asarray(jax.random.uniform(k, (64, 1, 1, 1)))
  on = u(k_mask) < 0.5
  want = np.where(on, 0.3 + (u(kb) - 0.5) * 2 * u(ks) * (u(kc) + 0.5), 0.3)
  np.testing.assert_allclose(y, np.broadcast_to(want, x.shape), rtol=1e-5, atol=1e-6)


def test_attention_kernel_choice():
  assert T.attention_implementation("auto", jnp.float32) == "xla"
  assert T.attention_implementation("xla", jnp.bfloat16) == "xla"
  assert T.attention_implementation("cudnn", jnp.float32) == "cudnn"
  want = "cudnn" if jax.default_backend() == "gpu" else "xla"
  assert T.attention_implementation("auto", jnp.bfloat16) == want


def test_finite_difference_r1_is_exact_for_a_linear_critic():
  """D(x) = <w, x>: (D(x + s delta) - D(x))^2 / s^2 = <w, delta>^2, whose mean is ||w||^2."""
  w = jax.random.normal(jax.random.PRNGKey(0), (5, 4, 4, 2))
  critic = lambda v: jnp.sum(v * w, axis=(1, 2, 3))
  x = jax.random.normal(jax.random.PRNGKey(1), (5, 4, 4, 2))
  key = jax.random.PRNGKey(2)
  fd = gp.finite_difference_penalty(critic, x, critic(x), 0.01, key)
  delta = jax.random.normal(key, x.shape)
  want = 0.5 * jnp.mean(jnp.sum(delta * w, axis=(1, 2, 3)) ** 2)
  assert float(fd) == pytest.approx(float(want), rel=1e-3)


def test_finite_difference_r1_averages_to_the_exact_penalty():
  """On a smooth non-linear D, the mean over draws of delta equals 1/2 E||grad D||^2."""
  w = jax.random.normal(jax.random.PRNGKey(0), (48, 6)) / math.sqrt(48)
  critic = lambda v: jnp.sum(jnp.tanh(2 * v.reshape(v.shape[0], -1) @ w), axis=-1)
  x = jax.random.normal(jax.random.PRNGKey(1), (3, 4, 4, 3))
  exact = float(gp.r1_penalty(critic, x, None, None))
  keys = jax.random.split(jax.random.PRNGKey(3), 4000)
  fd = jax.vmap(lambda k: gp.finite_difference_penalty(critic, x, critic(x), 1e-2, k))(keys)
  assert float(jnp.mean(fd)) == pytest.approx(exact, rel=5e-2)


def test_gradient_clipping_bounds_the_update_and_keeps_hyperparams_outermost():
  c = _tiny()
  c.optim.g.name, c.optim.g.lr, c.optim.g.b1 = "sgd", 1.0, 0.0
  tx = optim.make(c.optim.g)                  # grad_clip 1.0 from the recipe
  params = {"w": jnp.zeros((4,))}
  st = tx.init(params)
  assert "learning_rate" in st.hyperparams
  upd, _ = tx.update({"w": jnp.full((4,), 10.0)}, st, params)
  np.testing.assert_allclose(jnp.linalg.norm(upd["w"]), 1.0, rtol=1e-6)


def test_gat_color_changes_half_the_batch_and_gat_flip_mirrors():
  x = jax.random.normal(jax.random.PRNGKey(0), (400, 4, 4, 2))
  y = gat_aug.gat_color(jax.random.PRNGKey(1), x)
  changed = np.asarray(jnp.any(jnp.abs(y - x) > 0, axis=(1, 2, 3)))
  assert 0.4 < changed.mean() < 0.6
  f = gat_aug.gat_flip(jax.random.PRNGKey(2), x)
  mirrored = np.asarray(jnp.all(f == x[:, :, ::-1], axis=(1, 2, 3)))
  same = np.asarray(jnp.all(f == x, axis=(1, 2, 3)))
  assert np.all(mirrored | same) and 0.3 < mirrored.mean() < 0.5


def test_bfloat16_and_several_steps_per_call_train(tmp_path):
  """Mixed precision (RMS norms and D's logit in float32) and K = 2 steps in one compiled
  call (lax.scan) keep the run finite; G's output in bfloat16 stays close to float32's."""
  # without R1/R2 (one D forward each on top): the program compiles in half the time
  c = _tiny(**{"train.steps": 2, "train.sample_every": 0, "train.dtype": "bfloat16",
               "train.steps_per_call": 2, "train.checkpoint_every": 2, "train.log_every": 2,
               "regularizers": ()})
  state = train.train_and_evaluate(c, str(tmp_path / "r"))
  assert int(state.step) == 2
  assert all(np.all(np.isfinite(np.asarray(w))) for w in jax.tree.leaves(state.g.params))
  g, _ = models.build(c.model, (16, 16, 1), 0, 0)
  z = jax.random.normal(jax.random.PRNGKey(1), (2, 16))
  full = g(z, None, train=False)
  graph, params, rest = nnx.split(g, nnx.Param, ...)
  half = nnx.merge(graph, jax.tree.map(lambda p: p.astype(jnp.bfloat16), params), rest)(
      z.astype(jnp.bfloat16), None, train=False)
  assert half.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(half, np.float32), full, atol=0.1 * float(
      jnp.std(full)) + 0.05)


@pytest.mark.parametrize("override,match", [
    ({"model.gat.patch": 3}, "patch=3 does not divide"),
    ({"model.gat.depth": 3}, "multiple of levels=2"),
    ({"model.gat.heads": 3}, "split into heads"),
    ({"regularizers": ({"name": "gp"},)}, "'gp' interpolates real and generated"),
    ({"model.d_spectral_norm": True}, "no normalisation"),
    ({"model.gat.mng_t": (0.5, 1.0)}, r"each noise std must be in \[0, 1\)"),
])
def test_impossible_settings_are_refused(override, match):
  with pytest.raises(UserError, match=match):
    validate.validate(_tiny(**override))


def test_config_variants():
  c = gat_cfg.get_config("xl4")
  assert (c.model.gat.width, c.model.gat.depth, c.model.gat.heads, c.model.gat.patch) == (
      1152, 28, 16, 4)
  assert c.optim.g.lr == pytest.approx(2e-4 * 768 / 1152) and c.optim.d.grad_clip == 1.0
  assert c.regularizers[0] == {"name": "r1", "weight": 0.1, "fd_sigma": 0.01}
  assert gat_cfg.get_config("fashion,123").train.steps == 123
  with pytest.raises(ValueError, match="Unknown gat.py variant 'xxl2'"):
    gat_cfg.get_config("xxl2")
