"""One discriminator path: every D evaluation of the step sees the augmented images."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.core import augment, state as state_lib, train_step as ts
from jaxgan.core.augment import AUGMENTATIONS, Augmentation
from tests.conftest import tiny_config


def make(c):
  gan, state = state_lib.create(c, (28, 28, 1), 0)
  rng = np.random.RandomState(0)
  batch = {"images": rng.randint(0, 256, (c.train.n_critic, 16, 28, 28, 1)).astype(np.uint8)}
  return state, jax.jit(ts.make_train_step(gan, c)), batch


@pytest.fixture
def blank(monkeypatch):
  """An augmentation that replaces every image by zeros: after it, D cannot tell real from
  fake, and nothing that reaches D depends on G or on the input."""
  monkeypatch.setitem(AUGMENTATIONS._items, "blank",
                      Augmentation(lambda key, x: jnp.zeros_like(x)))


def test_every_discriminator_call_goes_through_the_augmentation(blank):
  c = tiny_config(**{"augment.policy": "blank", "penalty": "gp", "penalty_weight": 1.0,
                     "loss": "ragan"})  # ragan: D also sees real images in the G update
  state, step, batch = make(c)
  new, m = step(state, batch)
  assert float(m["d_x"]) == float(m["d_g_z"])           # real and fake D inputs
  assert float(m["d_gp"]) == pytest.approx(1.0)         # penalty inputs: ||grad|| = 0
  assert float(m["g_grad_norm"]) == 0.0                 # G update: D ignores G's images
  for a, b in zip(jax.tree.leaves(state.g.params), jax.tree.leaves(new.g.params)):
    np.testing.assert_array_equal(a, b)


def test_empty_policy_is_the_identity_and_a_real_one_changes_d():
  x = jnp.arange(12.0).reshape(1, 2, 2, 3)
  assert augment.pipeline("")(jax.random.PRNGKey(0), x) is x
  assert augment.pipeline(" , ")(jax.random.PRNGKey(0), x) is x
  state, plain, batch = make(tiny_config())
  _, flipped, _ = make(tiny_config(**{"augment.policy": "xflip"}))
  _, m0 = plain(state, batch)
  _, m1 = flipped(state, batch)
  assert float(m0["d_loss"]) != float(m1["d_loss"])


def test_xflip_mirrors_about_half_the_images():
  x = jax.random.normal(jax.random.PRNGKey(0), (400, 4, 5, 1))
  y = augment.pipeline("xflip")(jax.random.PRNGKey(1), x)
  same = np.all(np.asarray(y) == np.asarray(x), axis=(1, 2, 3))
  mirrored = np.all(np.asarray(y) == np.asarray(x)[:, :, ::-1], axis=(1, 2, 3))
  assert np.all(same ^ mirrored)
  assert 150 < mirrored.sum() < 250


def test_unknown_augmentation_is_refused_with_the_valid_names():
  gan, _ = state_lib.create(tiny_config(), (28, 28, 1), 0)
  with pytest.raises(ValueError, match="Unknown augmentation 'flip'.*xflip"):
    ts.make_train_step(gan, tiny_config(**{"augment.policy": "flip"}))
