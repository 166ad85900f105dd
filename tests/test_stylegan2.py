"""StyleGAN2 (jaxgan/core/models/stylegan2.py, stylegan2_layers.py) and configs/stylegan2.py:
parameter counts against StyleGAN2-ADA's networks, the modulated convolution against
per-example convolutions, resampling convolutions and minibatch-std against direct
computations, w_avg / truncation / style mixing, the path length in W, and training."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import stylegan2 as sg2_cfg
from jaxgan.core import models
from jaxgan.run import train, validate
from jaxgan.base.errors import UserError
from jaxgan.core.models import stylegan2_layers as S
from jaxgan.core.regularizers import path_length
from tests.conftest import set_fields

# NVlabs/stylegan2-ada-pytorch d72cc7d, Generator / Discriminator built as train.py builds
# them, sum(p.numel() for p in net.parameters()) (buffers excluded):
CIFAR_COND = (20_215_315, 23_089_664)       # --cfg=cifar --cond=1, 32x32x3, 10 classes
PAPER256 = (24_767_458, 24_001_089)         # --cfg=paper256, 256x256x3, unconditional


@pytest.mark.parametrize("variant,shape,classes,expected", [
    ("cifar", (32, 32, 3), 10, CIFAR_COND), ("paper256", (256, 256, 3), 0, PAPER256)])
def test_parameter_counts_equal_the_reference(variant, shape, classes, expected):
  assert models.param_counts(sg2_cfg.get_config(variant).model, shape, classes) == expected


def test_cifar_settings_are_the_references():
  c = sg2_cfg.get_config("cifar")
  assert c.optim.g.lr == pytest.approx(0.002) and c.optim.g.b2 == pytest.approx(0.99 ** 0.8)
  assert c.optim.d.lr == pytest.approx(0.0025 * 16 / 17)
  assert c.optim.d.b2 == pytest.approx(0.99 ** (16 / 17)) and c.optim.d.b1 == 0.0
  assert c.regularizers == ({"name": "r1", "weight": 0.01, "every": 16},)
  assert c.model.stylegan2.d_architecture == "orig" and c.model.stylegan2.mixing_prob == 0.0
  assert (c.ema_halflife_kimg, c.ema_rampup) == (500.0, 0.05)


def per_example_conv(x, weight, styles, demodulate, up):
  """Each example convolved with its own kernel w s (demodulated), one at a time."""
  outs = []
  for b in range(x.shape[0]):
    w = weight * styles[b][None, None, :, None]
    if demodulate:
      w = w / jnp.sqrt(jnp.sum(w ** 2, axis=(0, 1, 2), keepdims=True) + 1e-8)
    xb = x[b:b + 1]
    outs.append(S.conv_up2(xb, w) if up else S.conv(xb, w, ((1, 1), (1, 1))))
  return jnp.concatenate(outs)


@pytest.mark.parametrize("demodulate,up", [(True, False), (True, True), (False, False)])
def test_modulated_convolution_equals_per_example_convolutions(demodulate, up):
  k = jax.random.split(jax.random.PRNGKey(0), 3)
  x = jax.random.normal(k[0], (3, 4, 4, 5))
  weight = jax.random.normal(k[1], (3, 3, 5, 6))
  styles = jax.random.normal(k[2], (3, 5)) + 1.0
  got = S.modulated_conv(x, weight, styles, demodulate=demodulate, up=up)
  np.testing.assert_allclose(got, per_example_conv(x, weight, styles, demodulate, up),
                             rtol=1e-4, atol=1e-5)
  if demodulate:   # unit-norm output channels: the output scale does not follow the style
    again = S.modulated_conv(x, weight, 10.0 * styles, demodulate=True, up=up)
    np.testing.assert_allclose(again, got, rtol=1e-4, atol=1e-5)


def fir2d(x, gain):
  """The 4x4 [1,3,3,1] x [1,3,3,1] / 64 filter (x gain), valid, on [H, W] (direct sums)."""
  f = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0 * gain
  h, w = x.shape[0] - 3, x.shape[1] - 3
  return np.array([[np.sum(x[i:i + 4, j:j + 4] * f) for j in range(w)] for i in range(h)])


def corr2d(x, w, stride=1):
  """Valid correlation of [H, W] with a [k, k] kernel, direct sums."""
  k = w.shape[0]
  return np.array([[np.sum(x[i:i + k, j:j + k] * w)
                    for j in range(0, x.shape[1] - k + 1, stride)]
                   for i in range(0, x.shape[0] - k + 1, stride)])


def test_resampling_convolutions_match_upfirdn2d_written_out():
  rs = np.random.RandomState(0)
  x, w = rs.randn(6, 6), rs.randn(3, 3)
  # up: zero insertion, pad (3, 2), the 2-D filter x 4, then the flipped kernel
  z = np.zeros((12, 12))
  z[::2, ::2] = x
  want = corr2d(fir2d(np.pad(z, ((3, 2), (3, 2))), 4.0), w[::-1, ::-1])
  got = S.conv_up2(jnp.asarray(x)[None, :, :, None], jnp.asarray(w)[:, :, None, None])
  np.testing.assert_allclose(got[0, :, :, 0], want, rtol=1e-4, atol=1e-5)
  # down: pad (2, 2), the filter, a stride-2 correlation
  want = corr2d(fir2d(np.pad(x, 2), 1.0), w, stride=2)
  got = S.conv_down2(jnp.asarray(x)[None, :, :, None], jnp.asarray(w)[:, :, None, None])
  np.testing.assert_allclose(got[0, :, :, 0], want, rtol=1e-4, atol=1e-5)


def test_minibatch_stddev_groups_are_strided():
  x = np.random.RandomState(0).randn(8, 2, 2, 3)
  got = np.asarray(S.minibatch_stddev(jnp.asarray(x), 4))
  assert got.shape == (8, 2, 2, 4)
  np.testing.assert_array_equal(got[..., :3], x.astype(np.float32))
  for n in range(8):
    group = x[[j for j in range(8) if j % 2 == n % 2]]      # N / G = 2: n, n + 2, ...
    want = np.mean(np.sqrt(np.var(group, axis=0) + 1e-8))
    np.testing.assert_allclose(got[n, :, :, 3], want, rtol=1e-5)


def tiny_model(**kw):
  c = sg2_cfg.get_config("fashion")
  set_fields(c, {"model.latent_dim": 8, "model.stylegan2.w_dim": 8,
                 "model.stylegan2.channel_base": 64, "model.stylegan2.channel_max": 8,
                 "model.stylegan2.mapping_layers": 1, **kw})
  return c


def test_w_avg_truncation_and_style_mixing():
  c = tiny_model(**{"model.stylegan2.mixing_prob": 1.0})
  g, _ = models.build(c.model, (16, 16, 1), 0, 0)
  z = jax.random.normal(jax.random.PRNGKey(1), (5, 8))
  w = g.mapping(z)
  assert float(jnp.sum(jnp.abs(g.mapping.w_avg[...]))) == 0.0
  ws = g.map(z, train=True)                      # a training forward moves w_avg
  np.testing.assert_allclose(g.mapping.w_avg[...], 0.005 * jnp.mean(w, axis=0), rtol=1e-5)
  np.testing.assert_allclose(g.map(z, truncation=1.0), ws, rtol=1e-6)     # psi 1: identity
  zero = g.map(z, truncation=0.0)                                         # psi 0: w_avg
  np.testing.assert_allclose(zero, jnp.broadcast_to(g.mapping.w_avg[...], zero.shape),
                             rtol=1e-6)
  mixed = g.map(z, train=True, key=jax.random.PRNGKey(3))
  same = np.all(np.isclose(mixed, ws[:, :1]), axis=(0, 2))   # which ws are z's own
  cut = int(np.argmin(same))
  assert 1 <= cut < g.num_ws and same[:cut].all() and not same[cut:].any()


def test_noise_comes_from_the_key_in_training_and_is_fixed_otherwise():
  c = tiny_model()
  g, _ = models.build(c.model, (16, 16, 1), 0, 0)
  for layer in (g.blocks[1].conv0, g.blocks[1].conv1):
    layer.noise_strength[...] = jnp.ones(())
  z = jax.random.normal(jax.random.PRNGKey(1), (2, 8))
  a = g(z, train=False)
  np.testing.assert_array_equal(a, g(z, train=False))
  k1, k2 = jax.random.PRNGKey(5), jax.random.PRNGKey(6)
  g.mixing_prob = 0.0
  np.testing.assert_array_equal(g(z, train=True, rngs=k1), g(z, train=True, rngs=k1))
  assert not np.allclose(g(z, train=True, rngs=k1), g(z, train=True, rngs=k2))


def test_path_length_in_w_of_a_linear_synthesis_in_closed_form():
  a = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 4 * 4 * 2))    # [num_ws, w_dim, HWC]
  generate = lambda ws: jnp.einsum("blw,lwp->bp", ws, a).reshape(ws.shape[0], 4, 4, 2)
  ws = jax.random.normal(jax.random.PRNGKey(1), (5, 3, 4))
  key = jax.random.PRNGKey(2)
  lengths, images = path_length.path_lengths(generate, ws, key)
  y = np.asarray(jax.random.normal(key, images.shape)).reshape(5, -1) / 4.0
  grads = np.einsum("lwp,bp->blw", np.asarray(a), y)                 # J^T y per w
  want = np.sqrt(np.mean(np.sum(grads ** 2, axis=2), axis=1))
  np.testing.assert_allclose(lengths, want, rtol=1e-5)


def tiny_run(**kw):
  c = tiny_model(**{"data.name": "mnist", "data.data_dir": "", "data.image_size": 16,
                    "data.batch_size": 4, "data.max_examples": 32, "train.steps": 4,
                    "train.log_every": 2, "train.sample_every": 2,
                    "train.checkpoint_every": 2, "train.progress": False,
                    "checkpoint.async_save": False, "sample.grid_size": 4, "eval.every": 0,
                    "regularizers": ({"name": "r1", "weight": 0.01, "every": 2},
                                     {"name": "path_length", "weight": 2.0, "every": 2}),
                    **kw})
  return c


def test_resume_mid_run_is_bit_exact(tmp_path):
  # the three invocations compile the same two programs (lazy R1 and path length on, then
  # off): JAX's persistent cache, as launch.py has it on, compiles each once (an
  # executable from the cache is the program a compile gives)
  from jaxgan.run import compile_cache
  compile_cache.enable(str(tmp_path / "xla"))
  try:
    with tfds.testing.mock_data(num_examples=32):
      full = train.train_and_evaluate(tiny_run(), str(tmp_path / "a"))
      train.train_and_evaluate(tiny_run(**{"train.steps": 2}), str(tmp_path / "b"))
      resumed = train.train_and_evaluate(tiny_run(), str(tmp_path / "b"))
  finally:
    compile_cache.enable("off")
  for a, b in ((full.g.params, resumed.g.params), (full.d.params, resumed.d.params),
               (full.g.stats, resumed.g.stats), (full.reg, resumed.reg), (full.ema, resumed.ema)):
    jax.tree.map(np.testing.assert_array_equal, a, b)
  assert float(full.reg["path_length"]["mean"]) > 0     # the running mean moved
  assert float(jnp.abs(full.g.stats["mapping"]["w_avg"][...]).sum()) > 0


def test_fashion_configs_train_a_few_steps(tmp_path):
  # ':fashion' is ':fashion_cond' without labels: it is validated, the conditional one (the
  # mapping of the label, the projection D) trains; unconditional training is the resume
  # test's
  validate.validate(sg2_cfg.get_config("fashion"))
  c = sg2_cfg.get_config("fashion_cond")   # its recipe at a quarter of the widths
  set_fields(c, {"model.stylegan2.channel_base": 256, "model.stylegan2.channel_max": 32,
                 "data.data_dir": "", "data.batch_size": 4, "data.max_examples": 32,
                 "train.steps": 1, "train.log_every": 1, "train.progress": False,
                 "eval.every": 0, "sample.grid_size": 10,
                 "checkpoint.async_save": False})
  # one step: its lazy R1 and path length both run, so the one program compiled is the
  # whole recipe (a second step would compile the program without them)
  with tfds.testing.mock_data(num_examples=32):
    state = train.train_and_evaluate(c, str(tmp_path))
  assert int(state.step) == 1


def test_a_size_it_cannot_build_is_refused_in_one_line():
  c = sg2_cfg.get_config("fashion")
  c.data.image_size = 28
  with pytest.raises(UserError, match="power-of-two size from 16 up"):
    validate.validate(c)
  c.data.image_size, c.model.conditioning = 32, "acgan"
  with pytest.raises(UserError, match="conditioning='acgan'.*use 'projection' or 'none'"):
    validate.validate(c)
  c.model.conditioning, c.model.d_spectral_norm = "none", True
  with pytest.raises(UserError, match="no normalisation, spectral norm or dropout"):
    validate.validate(c)


def tiny_gan():
  from jaxgan.core import state as state_lib
  c = tiny_model()
  gan, st = state_lib.create(c, (16, 16, 1), 0)
  # a w_avg away from zero, as after training
  stats = jax.tree.map(lambda x: x, st.g.stats)
  stats["mapping"]["w_avg"] = stats["mapping"]["w_avg"].replace(jnp.full((8,), 0.3))
  return gan, st.replace(g=st.g.replace(stats=stats))


def test_truncation_strip_mixing_grid_and_w_interpolation():
  from jaxgan.eval import latent, sampling
  gan, st = tiny_gan()
  z = jax.random.normal(jax.random.PRNGKey(0), (3, 8))
  strip = latent.truncation_strip(gan, st, z, steps=5).reshape(3, 5, 16, 16, 1)
  np.testing.assert_array_equal(strip[0, 0], strip[1, 0])     # psi 0: every row is w_avg
  assert not np.array_equal(strip[0, -1], strip[1, -1])
  plain = sampling.to_uint8(sampling.generator_fn(gan)(st.g.params, st.g.stats, z, None))
  np.testing.assert_array_equal(strip[:, -1], plain)          # psi 1: untruncated
  half = sampling.to_uint8(sampling.generator_fn(gan, 0.5)(st.g.params, st.g.stats, z, None))
  np.testing.assert_array_equal(strip[:, 2], half)             # --truncation 0.5 is psi
  zc = jax.random.normal(jax.random.PRNGKey(1), (2, 8))
  none = latent.mixing_grid(gan, st, z, zc, 0).reshape(4, 3, 16, 16, 1)
  every = latent.mixing_grid(gan, st, z, zc, 10).reshape(4, 3, 16, 16, 1)
  for r in range(1, 4):     # cutoff 0: the row's own image; all ws: the column's
    np.testing.assert_array_equal(none[r, 1:], np.broadcast_to(none[r, :1], (2, 16, 16, 1)))
    np.testing.assert_array_equal(every[r, 1:], every[0, 1:])
  path = latent.interpolate_w(gan, st, z[0], z[1], 4)
  np.testing.assert_array_equal(path[[0, -1]], plain[:2])


def test_ppl_of_a_style_based_generator_walks_in_w():
  from flax import nnx
  from jaxgan.base import rng
  from jaxgan.eval.evaluate import Extractor
  from jaxgan.eval.metrics import Inputs, ppl
  gan, st = tiny_gan()
  flat = lambda x: np.asarray(x, np.float64).reshape(len(x), -1)
  ex = Extractor("pixels", flat, features_float=flat)
  key = jax.random.PRNGKey(4)
  got = ppl.path_length_samples(Inputs(np.zeros((6, 16, 16, 1), np.uint8), None, ex, None,
                                       gan=gan, state=st, key=key), 6, batch=6)
  # the same draws, walked by hand: w = G.map(z), images = G.synthesize(lerp in W)
  k0, k1, kt, _ = jax.random.split(jax.random.fold_in(rng.stream(key, "ppl"), 0), 4)
  g = nnx.merge(gan.g_graph, st.g.params, st.g.stats)
  w0, w1 = g.map(gan.sample_latents(k0, 6)), g.map(gan.sample_latents(k1, 6))
  t = jax.random.uniform(kt, (6,))
  at = lambda u: flat(g.synthesize(w0 + u[:, None, None] * (w1 - w0)))
  want = np.sum((at(t) - at(t + ppl.EPSILON)) ** 2, axis=1) / ppl.EPSILON ** 2
  np.testing.assert_allclose(got, want, rtol=1e-2)   # float32 differences over eps^2
  assert np.all(got > 0)
