"""ADA (Karras et al. 2020): the pipeline against exact and closed-form references, p's
update rule on a fake sequence of D outputs, and p in the train state (resume, population)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.core import augment
from jaxgan.run import train
from jaxgan.core.augment import ada as A
from jaxgan.core.augment import adaptive
from tests.conftest import tiny_config
from tests.test_regularizers import _step

KEY = jax.random.PRNGKey(5)
P0, P1 = jnp.float32(0.0), jnp.float32(1.0)
ada = jax.jit(A.ada, static_argnums=3)   # one compile instead of op-by-op dispatch


def images(n=32, h=16, w=16, c=3, seed=0):
  return jax.random.uniform(jax.random.PRNGKey(seed), (n, h, w, c), minval=-1, maxval=1)


def smooth(n=1, h=16, w=16):
  yy, xx = np.mgrid[0:h, 0:w] / (h - 1)
  img = np.stack([np.sin(2 * xx + 0.5 * yy), np.cos(3 * yy) * xx, xx * yy - 0.5], -1)
  return jnp.asarray(np.repeat(img[None], n, 0), jnp.float32)


@pytest.mark.parametrize("channels", [1, 3])
def test_p_zero_is_the_exact_identity(channels):
  x = images(c=channels)
  assert np.array_equal(ada(KEY, x, P0, "bgc"), x)
  # each group on its own too (the pipeline skips all of them at p = 0)
  for op in (A.xflip, A.rotate90, A.int_translate, A.geometric, A.color):
    assert np.array_equal(op(KEY, x, P0), x)


def test_flips_and_rotations_are_exact_permutations():
  x = np.asarray(images(n=64))
  flipped = np.asarray(A.xflip(KEY, jnp.asarray(x), P1))
  rotated = np.asarray(A.rotate90(KEY, jnp.asarray(x), P1))
  flips, rots = set(), set()
  for a, f, r in zip(x, flipped, rotated):
    flips.add(next(k for k, ref in enumerate([a, a[:, ::-1]]) if np.array_equal(f, ref)))
    rots.add(next(k for k in range(4) if np.array_equal(r, np.rot90(a, k))))
  assert flips == {0, 1} and rots == {0, 1, 2, 3}   # each drawn, each exact


def test_integer_translation_is_a_reflected_shift_of_at_most_one_eighth():
  x = np.asarray(images(n=48))
  y = np.asarray(A.int_translate(KEY, jnp.asarray(x), P1))
  seen = set()
  for a, b in zip(x, y):
    padded = np.pad(a, ((2, 2), (2, 2), (0, 0)), mode="reflect")  # 16 / 8 = 2
    hits = [(ty, tx) for ty in range(-2, 3) for tx in range(-2, 3)
            if np.array_equal(b, padded[2 - ty:18 - ty, 2 - tx:18 - tx])]
    assert len(hits) == 1
    seen.add(hits[0])
  assert len(seen) > 12


def test_resampling_with_the_identity_map_reconstructs_the_image():
  # sym6 is orthogonal: 2x up- then downsampling is the identity, which pins the filter,
  # its orientation and every index convention of the resampler
  x = images(n=3, c=2)
  y = A.resample(x, jnp.broadcast_to(jnp.eye(3), (3, 3, 3)))
  np.testing.assert_allclose(y, x, atol=1e-5)


def test_resampling_a_whole_pixel_shift_and_a_quarter_turn():
  x = images(n=2)
  shift = jnp.broadcast_to(jnp.eye(3), (2, 3, 3)).at[:, 0, 2].set(-1.0)   # out(x) = in(x - 1)
  y = A.resample(x, shift)
  np.testing.assert_allclose(y[:, 2:-2, 3:-2], x[:, 2:-2, 2:-3], atol=1e-5)
  s = smooth()
  quarter = A.resample(s, A._rotation(jnp.full((1,), jnp.pi / 2)))    # as rotate90's i = 1
  err = [float(jnp.abs(quarter - jnp.rot90(s, k, axes=(1, 2)))[:, 3:-3, 3:-3].max())
         for k in range(4)]
  assert err[1] < 0.02 and min(err[0], err[2], err[3]) > 0.5


def test_geometric_draws_follow_their_probabilities_and_spreads():
  n, p = 4000, 0.5
  m = np.asarray(A.geometric_matrix(KEY, n, 16, 16, jnp.float32(p)))
  moved = np.any(np.abs(m - np.eye(3)) > 0, axis=(1, 2))
  # four chances: scale, aniso, xfrac with p, and the two rotations with 1 - sqrt(1 - p)
  # each: P(untouched) = (1 - p)^3 (1 - p_rot)^2 = (1 - p)^4
  assert 1 - moved.mean() == pytest.approx((1 - p) ** 4, abs=0.02)
  full = np.asarray(A.geometric_matrix(KEY, n, 16, 16, P1))
  # rotations and anisotropic scaling keep the area: det = 1 / s^2, log2 s ~ N(0, 0.2^2)
  log_det = np.log2(np.abs(np.linalg.det(full[:, :2, :2])))
  assert np.std(log_det) == pytest.approx(2 * A.SCALE_STD, rel=0.05)
  assert np.std(full[:, 0, 2]) > 0   # fractional translation (mixed with the rest)


def test_color_applies_its_matrix_rgb_and_greyscale():
  x = images(n=16)
  C, drawn = A.color_matrix(KEY, 16, 3, P1)
  y = np.asarray(A.color(KEY, x, P1))
  C, xs = np.asarray(C), np.asarray(x)
  want = np.einsum("nij,nhwj->nhwi", C[:, :3, :3], xs) + C[:, None, None, :3, 3]
  want = np.where(np.asarray(drawn)[:, None, None, None], want, xs)
  np.testing.assert_allclose(y, want, atol=1e-5)
  # greyscale: brightness, contrast and luma flip only, so out = +-c x + b'; the luma flip
  # (a reflection about the grey axis) negates it for about half of the examples
  g = jnp.full((2000, 2, 2, 1), 0.5)
  gy = np.asarray(A.color(KEY, g, P1))[:, 0, 0, 0]
  gz = np.asarray(A.color(KEY, jnp.zeros_like(g), P1))[:, 0, 0, 0]
  scale = (gy - gz) / 0.5
  assert np.mean(scale < 0) == pytest.approx(0.5, abs=0.04)
  assert np.median(np.log2(np.abs(scale))) == pytest.approx(0.0, abs=0.05)


def test_hue_rotation_keeps_the_grey_axis_and_the_luma():
  v = A.LUMA
  R = np.asarray(A._rotate3d(v, jnp.asarray([0.7, -2.0])))
  np.testing.assert_allclose(R[:, :3, :3] @ v[:3], np.tile(v[:3], (2, 1)), atol=1e-6)
  np.testing.assert_allclose(R[:, :3, :3] @ R[:, :3, :3].transpose(0, 2, 1),
                             np.tile(np.eye(3), (2, 1, 1)), atol=1e-6)


def test_pipeline_keeps_shapes_and_gradients_reach_the_image():
  x = images(n=8, c=3) * 0.9
  for ops in ("b", "g", "bg", "bgc"):
    y = ada(KEY, x, jnp.float32(0.7), ops)
    assert y.shape == x.shape
  # blitting moves pixels: the value range is kept exactly
  y = ada(KEY, x, P1, "b")
  assert float(y.min()) >= float(x.min()) and float(y.max()) <= float(x.max())
  # resampling rings a little at sharp edges, within a few percent of the range
  y = ada(KEY, x, P1, "g")
  assert float(jnp.abs(y).max()) < 1.1
  w = jax.random.normal(KEY, x.shape)
  grad = jax.jit(jax.grad(lambda v: jnp.sum(A.ada(KEY, v, jnp.float32(0.7)) * w)))(x)
  assert np.all(np.isfinite(grad)) and float(jnp.abs(grad).sum()) > 0


def test_p_update_rule_on_a_fake_sequence_of_d_outputs():
  sched = adaptive.Schedule(target=0.6, interval=2, kimg=0.128, images_per_step=16)
  step_size = 2 * 16 / 128.0     # images per adjustment / (kimg * 1000) = 0.25
  signs = [1.0, 0.8, 1.0, 1.0, 0.6, 0.6, -1.0, 0.2, -1.0, -1.0, -0.5, -1.0] + [1.0] * 10
  state = {"p": jnp.float32(0.1), "signs": jnp.float32(0), "count": jnp.float32(0),
           "rt": jnp.float32(0)}
  p, acc, want = 0.1, [], []
  for t, s in enumerate(signs):
    state = adaptive.update(state, jnp.float32(s), t, sched)
    acc.append(s)
    if (t + 1) % 2 == 0:   # independent: the reference's rule, clipped to [0, 1]
      p = min(max(p + np.sign(np.mean(acc) - 0.6) * step_size, 0.0), 1.0)
      acc = []
    want.append(p)
    assert float(state["p"]) == pytest.approx(p, abs=1e-6)
  assert want[1] == pytest.approx(0.35) and want[5] == pytest.approx(0.6)   # r = 0.6: held
  assert min(want) == 0.0 and max(want) == 1.0                              # both clips hit


def test_fixed_p_with_target_zero():
  sched = adaptive.Schedule(target=0.0, interval=1, kimg=0.001, images_per_step=16)
  state = {"p": jnp.float32(0.3), "signs": jnp.float32(0), "count": jnp.float32(0),
           "rt": jnp.float32(0)}
  for t in range(3):
    state = adaptive.update(state, jnp.float32(1.0), t, sched)
  assert float(state["p"]) == pytest.approx(0.3) and float(state["rt"]) == 1.0


def _ada(**kw):
  # the state's p and its update do not depend on which groups run: blitting compiles fast
  return tiny_config(**{"augment.policy": "ada", "augment.ada_ops": "b",
                        "augment.ada_interval": 4,
                        "augment.ada_kimg": 0.2, "train.checkpoint_every": 3,
                        "train.sample_every": 0, **kw})


def test_the_step_moves_p_from_d_outputs_and_logs_it():
  c = _ada(**{"augment.ada_interval": 1})
  state, step, batch = _step(c)
  assert float(state.augment["p"]) == 0.0
  new, m = step(state, batch)
  r = float(m["d_real_sign"])
  want = np.clip(np.sign(r - 0.6) * 16 / 200.0, 0, 1)
  assert float(new.augment["p"]) == pytest.approx(want, abs=1e-6)
  assert float(m["augment_p"]) == 0.0 and float(m["ada_rt"]) == pytest.approx(r)


def test_resume_in_the_middle_of_ada_is_bit_exact_and_members_keep_their_p(tmp_path):
  # p starts at 0.5 so the pipeline is active; checkpoint at 3 is mid-interval (4)
  c = lambda steps: _ada(**{"train.steps": steps, "augment.p": 0.5})
  full = train.train_and_evaluate(c(6), str(tmp_path / "a"))
  train.train_and_evaluate(c(3), str(tmp_path / "b"))
  resumed = train.train_and_evaluate(c(6), str(tmp_path / "b"))
  assert float(full.augment["p"]) != 0.5   # it moved at step 4
  for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed)):
    assert np.array_equal(np.asarray(a), np.asarray(b))
  pop = train.train_and_evaluate(_ada(**{"train.steps": 4, "augment.ada_target": 0.0}),
                                 str(tmp_path / "p"),
                                 trials=[{"augment.p": 0.0}, {"augment.p": 0.25}])
  np.testing.assert_array_equal(np.asarray(pop.augment["p"]), [0.0, 0.25])


def test_ada_is_registered_and_refuses_bad_settings():
  assert augment.uses_p("ada") and not augment.uses_p("diffaugment")
  with pytest.raises(ValueError, match="channels"):
    A.color(KEY, jnp.zeros((2, 4, 4, 2)), P1)
