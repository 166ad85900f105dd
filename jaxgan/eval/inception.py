"""InceptionV3 as FID and IS measure with it: pytorch-fid's port of TensorFlow's 2015-12-05 graph.

FID (Heusel et al. 2017) and IS (Salimans et al. 2016) numbers are only comparable between
papers when they come from the same network, and that network is not torchvision's
InceptionV3: TensorFlow's graph, which the original FID code used, differs in details that
pytorch-fid (Seitzer, `pt_inception-2015-12-05-6726825d.pth`) reproduces and that this port
follows layer for layer (Szegedy et al. 2016, "Rethinking the Inception Architecture"):

- every convolution has no bias and is followed by BatchNorm with eps 1e-3 and a ReLU;
- the 3x3 average pools of the A, C and first E blocks ignore the zero padding in their
  mean (TensorFlow's AVG pool), and the last E block (Mixed_7c) max-pools instead;
- the classifier has 1008 outputs (the 2015 graph's label space), used by IS;
- the input is resized to 299x299 (bilinear, half-pixel centres, no antialiasing, as
  `F.interpolate(..., align_corners=False)`) from [0, 1] and scaled to [-1, 1].

Submodules carry pytorch-fid's state-dict names (`Mixed_6b.branch7x7_2.conv`), so its
`.pth` maps onto this module one key at a time (jaxgan/eval/inception_weights.py). Convolutions
run at full float32 precision (`Precision.HIGHEST`): TF32 on a GPU would move FID in the
second decimal.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import jax
import jax.numpy as jnp
from flax import nnx

POOL_DIM = 2048       # the pool3 features of FID / KID / precision-recall
NUM_LOGITS = 1008     # the 2015 graph's classes (IS)
SIZE = 299
HIGHEST = jax.lax.Precision.HIGHEST


class BasicConv(nnx.Module):
  """Conv (no bias) -> BatchNorm(eps=1e-3, running statistics) -> ReLU."""

  def __init__(self, cin: int, cout: int, kernel, stride: int = 1, pad=(0, 0), *,
               rngs: nnx.Rngs):
    kernel = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
    pad = (pad, pad) if isinstance(pad, int) else tuple(pad)
    self.conv = nnx.Conv(cin, cout, kernel, strides=(stride, stride),
                         padding=((pad[0], pad[0]), (pad[1], pad[1])), use_bias=False,
                         precision=HIGHEST, rngs=rngs)
    self.bn = nnx.BatchNorm(cout, epsilon=1e-3, use_running_average=True, rngs=rngs)

  def __call__(self, x):
    return jax.nn.relu(self.bn(self.conv(x)))


def max_pool(x, stride: int, pad: int = 0):
  """3x3 max pool; padding (Mixed_7c) never wins the max, as in PyTorch."""
  p = ((0, 0), (pad, pad), (pad, pad), (0, 0))
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, stride, stride, 1), p)


def avg_pool_valid_mean(x):
  """3x3, stride 1, padding 1, averaging over the window's pixels inside the image only
  (`count_include_pad=False`): corners divide by 4, edges by 6, the interior by 9."""
  p = ((0, 0), (1, 1), (1, 1), (0, 0))
  total = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1), p)
  ones = jnp.ones((1,) + x.shape[1:3] + (1,), x.dtype)
  count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1), p)
  return total / count


class InceptionA(nnx.Module):
  """Mixed_5b/c/d: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1 (pool_features)."""

  def __init__(self, cin: int, pool_features: int, *, rngs: nnx.Rngs):
    self.branch1x1 = BasicConv(cin, 64, 1, rngs=rngs)
    self.branch5x5_1 = BasicConv(cin, 48, 1, rngs=rngs)
    self.branch5x5_2 = BasicConv(48, 64, 5, pad=2, rngs=rngs)
    self.branch3x3dbl_1 = BasicConv(cin, 64, 1, rngs=rngs)
    self.branch3x3dbl_2 = BasicConv(64, 96, 3, pad=1, rngs=rngs)
    self.branch3x3dbl_3 = BasicConv(96, 96, 3, pad=1, rngs=rngs)
    self.branch_pool = BasicConv(cin, pool_features, 1, rngs=rngs)

  def __call__(self, x):
    b5 = self.branch5x5_2(self.branch5x5_1(x))
    b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    bp = self.branch_pool(avg_pool_valid_mean(x))
    return jnp.concatenate([self.branch1x1(x), b5, b3, bp], axis=-1)


class InceptionB(nnx.Module):
  """Mixed_6a, 35 -> 17: 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2."""

  def __init__(self, cin: int, *, rngs: nnx.Rngs):
    self.branch3x3 = BasicConv(cin, 384, 3, stride=2, rngs=rngs)
    self.branch3x3dbl_1 = BasicConv(cin, 64, 1, rngs=rngs)
    self.branch3x3dbl_2 = BasicConv(64, 96, 3, pad=1, rngs=rngs)
    self.branch3x3dbl_3 = BasicConv(96, 96, 3, stride=2, rngs=rngs)

  def __call__(self, x):
    b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    return jnp.concatenate([self.branch3x3(x), b3, max_pool(x, 2)], axis=-1)


class InceptionC(nnx.Module):
  """Mixed_6b-e: 1x1 | 1x1-1x7-7x1 | 1x1-7x1-1x7-7x1-1x7 | avgpool-1x1, c7 inner channels."""

  def __init__(self, cin: int, c7: int, *, rngs: nnx.Rngs):
    self.branch1x1 = BasicConv(cin, 192, 1, rngs=rngs)
    self.branch7x7_1 = BasicConv(cin, c7, 1, rngs=rngs)
    self.branch7x7_2 = BasicConv(c7, c7, (1, 7), pad=(0, 3), rngs=rngs)
    self.branch7x7_3 = BasicConv(c7, 192, (7, 1), pad=(3, 0), rngs=rngs)
    self.branch7x7dbl_1 = BasicConv(cin, c7, 1, rngs=rngs)
    self.branch7x7dbl_2 = BasicConv(c7, c7, (7, 1), pad=(3, 0), rngs=rngs)
    self.branch7x7dbl_3 = BasicConv(c7, c7, (1, 7), pad=(0, 3), rngs=rngs)
    self.branch7x7dbl_4 = BasicConv(c7, c7, (7, 1), pad=(3, 0), rngs=rngs)
    self.branch7x7dbl_5 = BasicConv(c7, 192, (1, 7), pad=(0, 3), rngs=rngs)
    self.branch_pool = BasicConv(cin, 192, 1, rngs=rngs)

  def __call__(self, x):
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    d = x
    for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                  self.branch7x7dbl_4, self.branch7x7dbl_5):
      d = layer(d)
    bp = self.branch_pool(avg_pool_valid_mean(x))
    return jnp.concatenate([self.branch1x1(x), b7, d, bp], axis=-1)


class InceptionD(nnx.Module):
  """Mixed_7a, 17 -> 8: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2."""

  def __init__(self, cin: int, *, rngs: nnx.Rngs):
    self.branch3x3_1 = BasicConv(cin, 192, 1, rngs=rngs)
    self.branch3x3_2 = BasicConv(192, 320, 3, stride=2, rngs=rngs)
    self.branch7x7x3_1 = BasicConv(cin, 192, 1, rngs=rngs)
    self.branch7x7x3_2 = BasicConv(192, 192, (1, 7), pad=(0, 3), rngs=rngs)
    self.branch7x7x3_3 = BasicConv(192, 192, (7, 1), pad=(3, 0), rngs=rngs)
    self.branch7x7x3_4 = BasicConv(192, 192, 3, stride=2, rngs=rngs)

  def __call__(self, x):
    b3 = self.branch3x3_2(self.branch3x3_1(x))
    b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
    return jnp.concatenate([b3, b7, max_pool(x, 2)], axis=-1)


class InceptionE(nnx.Module):
  """Mixed_7b/c: 1x1 | 1x1-(1x3,3x1) | 1x1-3x3-(1x3,3x1) | pool-1x1. `max_pool_branch`:
  the FID graph's Mixed_7c max-pools where Mixed_7b (and the paper) average."""

  def __init__(self, cin: int, max_pool_branch: bool, *, rngs: nnx.Rngs):
    self.max_pool_branch = max_pool_branch
    self.branch1x1 = BasicConv(cin, 320, 1, rngs=rngs)
    self.branch3x3_1 = BasicConv(cin, 384, 1, rngs=rngs)
    self.branch3x3_2a = BasicConv(384, 384, (1, 3), pad=(0, 1), rngs=rngs)
    self.branch3x3_2b = BasicConv(384, 384, (3, 1), pad=(1, 0), rngs=rngs)
    self.branch3x3dbl_1 = BasicConv(cin, 448, 1, rngs=rngs)
    self.branch3x3dbl_2 = BasicConv(448, 384, 3, pad=1, rngs=rngs)
    self.branch3x3dbl_3a = BasicConv(384, 384, (1, 3), pad=(0, 1), rngs=rngs)
    self.branch3x3dbl_3b = BasicConv(384, 384, (3, 1), pad=(1, 0), rngs=rngs)
    self.branch_pool = BasicConv(cin, 192, 1, rngs=rngs)

  def __call__(self, x):
    b3 = self.branch3x3_1(x)
    b3 = jnp.concatenate([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], axis=-1)
    d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    d = jnp.concatenate([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], axis=-1)
    pooled = max_pool(x, 1, pad=1) if self.max_pool_branch else avg_pool_valid_mean(x)
    return jnp.concatenate([self.branch1x1(x), b3, d, self.branch_pool(pooled)], axis=-1)


class InceptionV3(nnx.Module):
  """The FID InceptionV3 on float images in [-1, 1] of 299x299x3 (any size works: the
  network is convolutional up to its global mean)."""

  def __init__(self, *, rngs: nnx.Rngs):
    self.Conv2d_1a_3x3 = BasicConv(3, 32, 3, stride=2, rngs=rngs)
    self.Conv2d_2a_3x3 = BasicConv(32, 32, 3, rngs=rngs)
    self.Conv2d_2b_3x3 = BasicConv(32, 64, 3, pad=1, rngs=rngs)
    self.Conv2d_3b_1x1 = BasicConv(64, 80, 1, rngs=rngs)
    self.Conv2d_4a_3x3 = BasicConv(80, 192, 3, rngs=rngs)
    self.Mixed_5b = InceptionA(192, 32, rngs=rngs)
    self.Mixed_5c = InceptionA(256, 64, rngs=rngs)
    self.Mixed_5d = InceptionA(288, 64, rngs=rngs)
    self.Mixed_6a = InceptionB(288, rngs=rngs)
    self.Mixed_6b = InceptionC(768, 128, rngs=rngs)
    self.Mixed_6c = InceptionC(768, 160, rngs=rngs)
    self.Mixed_6d = InceptionC(768, 160, rngs=rngs)
    self.Mixed_6e = InceptionC(768, 192, rngs=rngs)
    self.Mixed_7a = InceptionD(768, rngs=rngs)
    self.Mixed_7b = InceptionE(1280, max_pool_branch=False, rngs=rngs)
    self.Mixed_7c = InceptionE(2048, max_pool_branch=True, rngs=rngs)
    self.fc = nnx.Linear(POOL_DIM, NUM_LOGITS, precision=HIGHEST, rngs=rngs)

  def features(self, x):
    """[N, H, W, 3] in [-1, 1] -> the 2048-d pool3 features."""
    x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
    x = max_pool(x, 2)
    x = max_pool(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 2)
    for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                  self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                  self.Mixed_7c):
      x = block(x)
    return jnp.mean(x, axis=(1, 2))

  def features_and_logits(self, x) -> Tuple[jax.Array, jax.Array]:
    f = self.features(x)
    return f, self.fc(f)

  def __call__(self, x):
    return self.features_and_logits(x)[1]


def abstract_model() -> InceptionV3:
  """The module's structure and shapes without allocating its 23.9M weights."""
  return nnx.eval_shape(lambda: InceptionV3(rngs=nnx.Rngs(0)))


def variables(model: nnx.Module) -> Sequence[Tuple[str, nnx.Variable]]:
  """(path "Mixed_5b/branch1x1/conv/kernel", variable) of every parameter and statistic,
  sorted by path."""
  out = []
  for path, var in nnx.iter_graph(model):
    if isinstance(var, nnx.Variable):
      out.append(("/".join(str(p) for p in path), var))
  return sorted(out, key=lambda pv: pv[0])
