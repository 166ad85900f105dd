"""DiffAugment (Zhao et al. 2020): each op against an independent NumPy computation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.core import augment
from jaxgan.core.augment import diffaugment as da
from tests.conftest import tiny_config
from tests.test_augment import make

KEY = jax.random.PRNGKey(3)


def images(n=64, h=16, w=16, c=3, seed=0):
  return jax.random.uniform(jax.random.PRNGKey(seed), (n, h, w, c), minval=-1, maxval=1)


def shifted(x, dy, dx):
  """NumPy: out[i, j] = x[i + dy, j + dx], zero outside."""
  h, w = x.shape[:2]
  padded = np.zeros((h + 4, w + 4) + x.shape[2:], x.dtype)
  padded[2:2 + h, 2:2 + w] = x
  return padded[2 + dy:2 + dy + h, 2 + dx:2 + dx + w]


def test_translation_is_a_zero_filled_shift_of_at_most_one_eighth():
  x = np.asarray(images(n=32))
  y = np.asarray(da.translation(KEY, jnp.asarray(x)))
  seen = set()
  for a, b in zip(x, y):
    hits = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)   # 16 / 8 = 2
            if np.array_equal(b, shifted(a, dy, dx))]
    assert len(hits) == 1
    seen.add(hits[0])
  assert len(seen) > 10   # the shifts vary per example


def test_cutout_zeroes_one_square_of_half_the_size_clipped_to_the_image():
  x = jnp.ones((500, 16, 16, 1))
  y = np.asarray(da.cutout(KEY, x))[..., 0]
  for img in y:
    rows, cols = np.nonzero(img == 0)
    assert set(np.unique(img)) <= {0.0, 1.0}
    assert rows.max() - rows.min() + 1 <= 8 and cols.max() - cols.min() + 1 <= 8
    # a full rectangle: every pixel of its bounding box is zero
    assert (img[rows.min():rows.max() + 1, cols.min():cols.max() + 1] == 0).all()
  areas = (y == 0).sum(axis=(1, 2))
  assert areas.max() == 64 and areas.min() < 64          # inside, and cut by the border
  # centre uniform over 17 positions per axis (16 + 1, the cut being even): the expected
  # area is (sum over positions of the covered length / 17) ** 2
  lengths = [min(c + 4, 16) - max(c - 4, 0) for c in range(17)]
  assert areas.mean() == pytest.approx((np.mean(lengths)) ** 2, rel=0.1)


def test_color_on_a_grey_constant_image_is_a_brightness_shift_in_range():
  # one channel: saturation is the identity; a constant image: contrast is the identity
  x = jnp.zeros((400, 4, 4, 1)) + 0.25
  d = np.asarray(da.color(KEY, x)) - 0.25
  assert np.allclose(d, d[:, :1, :1, :], atol=1e-6)
  b = d[:, 0, 0, 0]
  assert b.min() >= -0.5 and b.max() < 0.5 and abs(b.mean()) < 0.06 and b.std() > 0.25


def test_color_matches_the_closed_form_with_the_same_draws():
  x = images(n=8)
  kb, ks, kc = jax.random.split(KEY, 3)
  u = lambda k, lo, hi: np.asarray(jax.random.uniform(k, (8, 1, 1, 1), minval=lo, maxval=hi))
  b, s, c = u(kb, -0.5, 0.5), u(ks, 0.0, 2.0), u(kc, 0.5, 1.5)
  y = np.asarray(x) + b
  m = y.mean(axis=3, keepdims=True)
  y = (y - m) * s + m
  m = y.mean(axis=(1, 2, 3), keepdims=True)
  y = (y - m) * c + m
  np.testing.assert_allclose(np.asarray(da.color(KEY, x)), y, atol=1e-5)


@pytest.mark.parametrize("name", ["color", "translation", "cutout", "diffaugment"])
def test_shapes_kept_and_gradients_reach_the_image(name):
  x = images(n=4, h=8, w=12)
  fn = augment.pipeline(name)
  assert fn(KEY, x).shape == x.shape
  g = jax.grad(lambda v: jnp.sum(fn(KEY, v) ** 2))(x)
  assert np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).sum()) > 0


def test_diffaugment_is_the_papers_policy_string():
  x = images(n=4)
  np.testing.assert_array_equal(da.diffaugment(KEY, x),
                                augment.pipeline("color,translation,cutout")(KEY, x))


def test_a_train_step_with_diffaugment_is_finite():
  state, step, batch = make(tiny_config(**{"augment.policy": "color,translation,cutout"}))
  new, m = step(state, batch)
  assert np.isfinite(float(m["d_loss"])) and np.isfinite(float(m["g_loss"]))
  for a, b in zip(jax.tree.leaves(state.g.params), jax.tree.leaves(new.g.params)):
    assert np.isfinite(np.asarray(b)).all() and not np.array_equal(a, b)
