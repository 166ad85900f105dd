"""The fast convolutions equal XLA's reference convolution, to first and second order,
on both CPU paths: XLA's own kernels and the oneDNN custom call (jaxgan/cpu/onednn.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxgan.base.errors import UserError
from jaxgan.cpu import conv_provider, onednn
from jaxgan.ops import convs

KEY = jax.random.PRNGKey(0)
# channels >= 8 on both sides: the oneDNN path takes every one of these convolutions
X = jax.random.normal(KEY, (4, 8, 8, 8))
W = jax.random.normal(jax.random.PRNGKey(1), (4, 4, 8, 16)) * 0.1
PAD, S = ((1, 1), (1, 1)), (2, 2)


@pytest.fixture(params=["xla", "onednn"], autouse=True)
def cpu_conv(request):
  """Every test here runs once per CPU convolution path: no provider (XLA), oneDNN's."""
  with convs.provided_by(conv_provider.make(request.param)):
    yield request.param


def uses_onednn(fn, *args) -> bool:
  return onednn.TARGET in str(jax.make_jaxpr(fn)(*args))


def ref_conv(x, w):
  return lax.conv_general_dilated(x, w, S, PAD, dimension_numbers=("NHWC", "HWIO", "NHWC"))


def ref_conv_t(h, w):
  return jax.vjp(lambda v: ref_conv(v, w), jnp.zeros((h.shape[0], 8, 8, w.shape[2])))[1](h)[0]


def close(a, b, tol=1e-5):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, rtol=tol, atol=tol)


def test_the_chosen_path_is_taken(cpu_conv):
  h = jax.random.normal(KEY, (4, 4, 4, 16))
  fns = [(lambda x, w: convs.conv(x, w, S, PAD), X),
         (lambda h, w: convs.conv_transpose(h, w, S, PAD, (8, 8)), h),
         (lambda x, w: jax.grad(lambda w: jnp.sum(convs.conv(x, w, S, PAD) ** 2))(w), X)]
  for fn, a in fns:
    assert uses_onednn(fn, a, W) == (cpu_conv == "onednn")


def test_forward_and_adjointness():
  close(convs.conv(X, W, S, PAD), ref_conv(X, W))
  h = jax.random.normal(KEY, (4, 4, 4, 16))
  y = convs.conv_transpose(h, W, S, PAD, (8, 8))
  close(y, ref_conv_t(h, W))
  # <g, conv_t(h)> = <conv(g), h>
  g = jax.random.normal(jax.random.PRNGKey(3), (4, 8, 8, 8))
  assert float(jnp.vdot(g, y)) == pytest.approx(float(jnp.vdot(convs.conv(g, W, S, PAD), h)),
                                                rel=1e-5)


def test_first_order_gradients():
  f = lambda c: (lambda x, w: jnp.sum(jnp.sin(c(x, w))))
  close(jax.grad(f(lambda x, w: convs.conv(x, w, S, PAD)), (0, 1))(X, W),
        jax.grad(f(ref_conv), (0, 1))(X, W))
  h = jax.random.normal(KEY, (4, 4, 4, 16))
  close(jax.grad(f(lambda h, w: convs.conv_transpose(h, w, S, PAD, (8, 8))), (0, 1))(h, W),
        jax.grad(f(ref_conv_t), (0, 1))(h, W))


def test_second_order_gradient_penalty_style():
  def gp(conv_fn, w):
    gx = jax.grad(lambda v: jnp.sum(jnp.tanh(conv_fn(v, w)) ** 2))(X)
    return jnp.sum((jnp.sqrt(jnp.sum(gx ** 2, axis=(1, 2, 3))) - 1) ** 2)
  close(jax.grad(lambda w: gp(lambda v, w: convs.conv(v, w, S, PAD), w))(W),
        jax.grad(lambda w: gp(ref_conv, w))(W), tol=1e-4)


@pytest.mark.parametrize("size,k,s,want", [(64, 4, 2, (1, 1)), (28, 4, 2, (1, 1)),
                                           (28, 4, 1, (1, 2)), (7, 3, 1, (1, 1))])
def test_same_padding_matches_tf(size, k, s, want):
  assert convs.same_padding(size, k, s) == want


def test_layers_shapes():
  from flax import nnx
  from jaxgan.core.models.layers import Conv2D, ConvTranspose2D
  c = Conv2D(8, 8, 4, stride=2, rngs=nnx.Rngs(0))
  t = ConvTranspose2D(8, 3, 4, stride=2, rngs=nnx.Rngs(0))
  stem = ConvTranspose2D(16, 8, 4, padding="VALID", rngs=nnx.Rngs(0))
  assert c(X).shape == (4, 4, 4, 8)
  assert t(c(X)).shape == (4, 8, 8, 3)
  assert stem(jnp.ones((2, 1, 1, 16))).shape == (2, 4, 4, 8)
  assert t.kernel[...].shape == (4, 4, 3, 8)  # the kernel of the conv it is the adjoint of


@pytest.mark.parametrize("k,s,pad,size", [(4, 2, ((1, 1), (1, 1)), 8), (3, 2, ((0, 1), (0, 1)), 8),
                                          (5, 2, ((2, 2), (1, 2)), 9), (4, 1, ((0, 0), (0, 0)), 4),
                                          (3, 3, ((1, 1), (1, 1)), 7)])
def test_unstrided_formulation_equals_xla(k, s, pad, size):
  """The space-to-depth stride-1 form of a strided convolution (used for the transposed
  convolution) gives XLA's values for kernels divisible by the stride or not."""
  x = jax.random.normal(KEY, (2, size, size + 1, 8))
  w = jax.random.normal(jax.random.PRNGKey(1), (k, k, 8, 16)) * 0.1
  ref = lax.conv_general_dilated(x, w, (s, s), pad, dimension_numbers=("NHWC", "HWIO", "NHWC"))
  got = convs._unstrided_conv(x, w, (s, s), pad)  # pylint: disable=protected-access
  assert got.shape == ref.shape
  close(got, ref)
  h = jax.random.normal(jax.random.PRNGKey(2), ref.shape)
  ref_t = jax.vjp(lambda v: lax.conv_general_dilated(
      v, w, (s, s), pad, dimension_numbers=("NHWC", "HWIO", "NHWC")), x)[1](h)[0]
  close(convs.conv_transpose(h, w, (s, s), pad, x.shape[1:3]), ref_t)
  # and through the public functions (oneDNN on that path), with the weight gradient
  close(convs.conv(x, w, (s, s), pad), ref)
  ref_dw = jax.vjp(lambda v: lax.conv_general_dilated(
      x, v, (s, s), pad, dimension_numbers=("NHWC", "HWIO", "NHWC")), w)[1](h)[0]
  close(convs.weight_grad(x, h, w.shape, (s, s), pad), ref_dw, tol=1e-4)


def test_few_channel_sides_stay_on_xla_and_agree(cpu_conv):
  """A 1-channel image layer: its input gradient and a 1-channel output are XLA's even on
  the oneDNN path (measured faster there); the values are the reference ones either way."""
  x = jax.random.normal(KEY, (4, 8, 8, 1))
  w = jax.random.normal(jax.random.PRNGKey(1), (4, 4, 1, 16)) * 0.1
  h = jax.random.normal(KEY, (4, 4, 4, 16))
  close(convs.conv(x, w, S, PAD), ref_conv(x, w))
  close(convs.conv_transpose(h, w, S, PAD, (8, 8)), ref_conv_t(h, w))
  assert uses_onednn(lambda x, w: convs.conv(x, w, S, PAD), x, w) == (cpu_conv == "onednn")
  assert not uses_onednn(lambda h, w: convs.conv_transpose(h, w, S, PAD, (8, 8)), h, w)


def test_vmapped_members_equal_separate_calls():
  """Populations vmap the convolutions over per-member kernels."""
  ws = jnp.stack([W, 2 * W, -W])
  got = jax.vmap(lambda w: convs.conv(X, w, S, PAD))(ws)
  for i in range(3):
    close(got[i], ref_conv(X, ws[i]))


def test_onednn_builds_here_and_reports_its_kernels():
  """On x86-64 Linux (every machine we test on) the extension must build; CI fails if not.
  The kernels chosen are oneDNN's optimised ones, not its slow reference code."""
  ok, why = onednn.available()
  assert ok, why
  name = onednn.impl_name(0, (4, 8, 8, 8), (4, 4, 8, 16), (4, 4, 4, 16), S, PAD)
  assert name and not name.startswith("ref"), name
  with pytest.raises(ValueError, match="oneDNN rejected"):
    onednn.impl_name(0, (4, 8, 8, 8), (4, 4, 8, 16), (4, 9, 9, 16), S, PAD)  # wrong out size


def test_unknown_cpu_conv_lists_the_valid_ones():
  with pytest.raises(UserError, match=r"config.train.cpu_conv='mkl'.*auto, onednn, xla"):
    conv_provider.make("mkl")


def test_the_provider_is_scoped_and_nests():
  """No process-wide switch: the provider applies inside its scope only, and an inner
  scope (None: XLA) restores the outer one when it ends."""
  onednn_convs = conv_provider.make("onednn")
  f = lambda x, w: convs.conv(x, w, S, PAD)
  with convs.provided_by(None):
    assert not uses_onednn(f, X, W)
    with convs.provided_by(onednn_convs):
      assert uses_onednn(f, X, W)
      with convs.provided_by(None):
        assert not uses_onednn(f, X, W)
      assert uses_onednn(f, X, W)
    assert convs.current_provider() is None


def test_onednn_is_deterministic_run_to_run():
  f = jax.jit(jax.grad(lambda w: jnp.sum(jnp.tanh(convs.conv(X, w, S, PAD)) ** 2)))
  np.testing.assert_array_equal(f(W), f(W))
