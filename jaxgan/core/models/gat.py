"""GAT: a DiT-like generator and a ViT discriminator on patch tokens (`config.model.arch=gat`).

Hyun, Lee and Heo, "Scalable GANs with Transformers" (arXiv 2509.24935); reference code
github.com/hse1032/GAT at 21a2dd09fcee5b8b8849302dc2ac4dd66236d268 (the code is its parent
efea1ce1, models/generator.py, models/discriminator.py). Every constant below is read from
there; docs/reference_notes/gat.md has the facts with line numbers. Parameter counts equal
the reference's for its twelve presets (tests/test_gat.py, against counts printed by the
reference itself: tools/independent/gat_parity.py).

Generator. Its input tokens are the fixed 2-D sin-cos table, the same for every sample; z
and the class enter only through c = mapping([rms(class embedding), rms(z)]), two
EqualLinears with learning-rate multiplier 0.01. Each block: x += gate_a * Attn(rms(x) (1 +
scale_a)); x += gate_m * SwiGLU(rms(x) (1 + scale_m)), with (scale_a, gate_a, scale_m,
gate_m) = Linear(SiLU(c)) (scale and gate, no shift; Xavier gain 0.1, so the gates start
small, not 0). Attention has QK-RMSNorm and 2-D RoPE. `levels` heads (4) read the stream
after every depth/levels blocks; head k = Linear(rms(x) (1 + scale_k(c))), unpatchified,
and level k is the sum of heads 0..k, so the last level, the sample, is the sum of all.
With multi-level noise (`mng`), G returns its levels concatenated on channels in training
and the last level otherwise. `w_avg` (per class) follows c with beta 0.995 in training;
`truncation` psi < 1 pulls c towards it (c = w_avg + psi (c - w_avg), StyleGAN's
convention: the reference's psi_ref = 1 - psi).

Discriminator. Its input is the levels on channels (a real image: the same image at every
level), each noised as one rectified-flow trajectory x_k <- (1 - t_k) x_k + n_k with nested
noises of std t_k = (0.885, 0.76, 0.51, 0.01) from the earliest level to the last (MNG,
drawn from D's key); a stride-p patch embedding plus the sin-cos table; a cls token in
front; blocks x += ls_a * Attn(rms(x)); x += ls_m * SwiGLU(rms(x)) (learned RMSNorm gains,
layer-scale 0.1; RoPE on the patch tokens only); the logit is <Linear(rms(cls)), e(y)> with
e(y) = EqualLinear(SiLU(EqualLinear(embedding(y)))) 2048-wide (projection), or a Linear to
1 (unconditional, our addition: the reference is class-conditional only). With `repa_dim`
> 0 D also has the reference's REPA projector (an H -> 2048 -> 2048 -> repa_dim MLP).

Square images only: the reference builds them, and a non-square config.data.image_size is
refused in one line (layers.check_square).

Differences from the reference, on purpose: G's noise-image patch embedding, whose output
the reference multiplies by 0, is not built (4 p^2 C H + H parameters fewer); the sin-cos
tables are constants, not frozen parameters (the reference counts them in parameters());
the unconditional head; QK-norm eps 1e-6 (the reference's PyTorch default is float32 eps).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgan.base.errors import UserError
from jaxgan.base.schema import Field, OneOf, Range
from jaxgan.core.models import Architecture, ARCHITECTURES
from jaxgan.core.models import layers as L
from jaxgan.core.models import transformer_layers as T

# noise std per level, earliest to last (losses/Rp_PT_loss.py info_per_layer: 1 - 0.125^(1 -
# k/3), + 0.01)
MNG_T = (0.885, 0.76, 0.51, 0.01)
W_AVG_BETA = 0.995


def mng_noise(levels, t, key):
  """GAT's multi-level noise: `levels` (K, B, H, W, C), t (K,) noise std per level. From
  the last (least noisy) level to the first, n <- r n + sqrt(t^2 - r^2 t_prev^2) eps with
  r = (1 - t) / (1 - t_prev), so n_k ~ N(0, t_k^2) and the levels of one image are points
  of one trajectory; returns (1 - t_k) x_k + n_k."""
  out, n, t_prev = [None] * len(t), jnp.zeros_like(levels[0]), 0.0
  keys = jax.random.split(key, len(t))
  for i in reversed(range(len(t))):
    r = (1.0 - t[i]) / (1.0 - t_prev)
    eps = jax.random.normal(keys[i], levels[i].shape, jnp.float32).astype(levels.dtype)
    n = r * n + (max(t[i] ** 2 - (r * t_prev) ** 2, 0.0) ** 0.5) * eps
    out[i], t_prev = (1.0 - t[i]) * levels[i] + n, t[i]
  return jnp.stack(out)


class GBlock(nnx.Module):
  def __init__(self, width, heads, mlp_ratio, rngs, attention="auto"):
    self.attn = T.Attention(width, heads, rngs, attention)
    self.mlp = T.SwiGLU(width, mlp_ratio, rngs)
    self.ada = T.linear(width, 4 * width, rngs, gain=0.1)

  def __call__(self, x, c_act, rope):
    s_a, g_a, s_m, g_m = jnp.split(self.ada(c_act)[:, None, :], 4, axis=-1)
    x = x + g_a * self.attn(T.rms_norm(x, 1e-6) * (1 + s_a), rope)
    return x + g_m * self.mlp(T.rms_norm(x, 1e-6) * (1 + s_m))


class Head(nnx.Module):
  """One level's output: Linear(rms(x) (1 + scale(c))) to p * p * C per token."""

  def __init__(self, width, out, rngs):
    self.ada = T.linear(width, width, rngs, gain=0.1)
    self.out = T.linear(width, out, rngs)

  def __call__(self, x, c_act):
    return self.out(T.rms_norm(x, 1e-6) * (1 + self.ada(c_act)[:, None, :]))


def _grid(image_shape, patch):
  return image_shape[0] // patch, image_shape[1] // patch


class GATGenerator(nnx.Module):
  truncates = True     # G(..., truncation=psi) pulls c towards w_avg (GAN.generate)

  def __init__(self, latent_dim: int, image_shape: Sequence[int], *, width, depth, heads,
               patch, mlp_ratio=4.0, levels=4, mng=True, class_dim=64, map_lr_mult=0.01,
               conditioning="none", num_classes=0, attention="auto", rngs: nnx.Rngs):
    self.patch, self.levels, self.mng = patch, levels, mng
    self.conditioning, self.channels = conditioning, image_shape[2]
    self.gh, self.gw = _grid(image_shape, patch)
    self.rgb_every = depth // levels
    conditional = conditioning != "none"
    self.embed = nnx.Embed(num_classes, class_dim, embedding_init=jax.nn.initializers.normal(
        0.02), rngs=rngs) if conditional else None
    self.map1 = T.EqualLinear(latent_dim + (class_dim if conditional else 0), width,
                              map_lr_mult, rngs)
    self.map2 = T.EqualLinear(width, width, map_lr_mult, rngs)
    self.blocks = nnx.List([GBlock(width, heads, mlp_ratio, rngs, attention)
                            for _ in range(depth)])
    out = patch * patch * image_shape[2]
    self.heads = nnx.List([Head(width, out, rngs) for _ in range(levels)])
    self.w_avg = nnx.BatchStat(jnp.zeros((max(num_classes, 1), width), jnp.float32))
    self.width, self.head_dim = width, width // heads

  def mapping(self, z, labels):
    L.check_labels(labels, self.conditioning, "generator")
    parts = [T.rms_norm(z, 1e-8)]
    if self.embed is not None:
      parts.insert(0, T.rms_norm(self.embed(labels).astype(z.dtype), 1e-8))
    return self.map2(jax.nn.silu(self.map1(jnp.concatenate(parts, axis=-1))))

  def _track(self, c, labels):
    """w_avg[k] <- beta w_avg[k] + (1 - beta) mean(c | y = k) for the classes present."""
    k = self.w_avg.shape[0]
    onehot = (jnp.zeros((c.shape[0],), jnp.int32) if labels is None else labels)
    onehot = jax.nn.one_hot(onehot, k, dtype=jnp.float32)                   # (B, K)
    count = onehot.sum(0)[:, None]
    mean = onehot.T @ jax.lax.stop_gradient(c).astype(jnp.float32) / jnp.maximum(count, 1)
    old = self.w_avg[...]
    self.w_avg[...] = jnp.where(count > 0, W_AVG_BETA * old + (1 - W_AVG_BETA) * mean, old)

  def __call__(self, z, labels=None, *, train: bool, truncation: float = 1.0):
    c = self.mapping(z, labels)
    if train:
      self._track(c, labels)
    if truncation != 1.0:
      avg = self.w_avg[...][0 if labels is None else labels].astype(c.dtype)
      c = avg + truncation * (c - avg)
    c_act = jax.nn.silu(c)
    tokens = T.sincos_table(self.width, self.gh, self.gw)
    x = jnp.broadcast_to(jnp.asarray(tokens, c.dtype), (z.shape[0],) + tokens.shape)
    rope = T.rope_tables(self.head_dim, self.gh, self.gw)
    outs, level = [], None
    for i, block in enumerate(self.blocks):
      x = block(x, c_act, rope)
      k = (i + 1) // self.rgb_every - 1
      if (i + 1) % self.rgb_every == 0 and k < self.levels:
        y = T.unpatchify(self.heads[k](x, c_act), self.patch, self.gh, self.gw)
        level = y if level is None else level + y
        outs.append(level)
    if train and self.mng and self.levels > 1:
      return jnp.concatenate(outs, axis=-1)
    return outs[-1]


class DBlock(nnx.Module):
  def __init__(self, width, heads, mlp_ratio, layer_scale, rngs, attention="auto"):
    self.norm1, self.norm2 = T.RMSNorm(width), T.RMSNorm(width)
    self.attn = T.Attention(width, heads, rngs, attention)
    self.mlp = T.SwiGLU(width, mlp_ratio, rngs)
    self.ls1 = nnx.Param(jnp.full((width,), layer_scale, jnp.float32))
    self.ls2 = nnx.Param(jnp.full((width,), layer_scale, jnp.float32))

  def __call__(self, x, rope):
    x = x + self.ls1[...].astype(x.dtype) * self.attn(self.norm1(x), rope)
    return x + self.ls2[...].astype(x.dtype) * self.mlp(self.norm2(x))


class GATDiscriminator(nnx.Module):
  def __init__(self, image_shape: Sequence[int], *, width, depth, heads, patch,
               mlp_ratio=4.0, levels=4, mng=True, mng_t=MNG_T, cmap_dim=2048,
               map_lr_mult=0.01, layer_scale=0.1, repa_dim=0, repa_hidden=2048,
               conditioning="none", num_classes=0, attention="auto", rngs: nnx.Rngs):
    self.patch, self.conditioning, self.channels = patch, conditioning, image_shape[2]
    self.levels = levels if mng else 1
    self.mng_t = tuple(float(t) for t in mng_t)[-self.levels:] if mng else ()
    self.gh, self.gw = _grid(image_shape, patch)
    cin = self.levels * image_shape[2]
    self.embed_patches = T.linear(patch * patch * cin, width, rngs)
    self.cls = nnx.Param(0.02 * jax.random.normal(rngs.params(), (width,), jnp.float32))
    self.blocks = nnx.List([DBlock(width, heads, mlp_ratio, layer_scale, rngs, attention)
                            for _ in range(depth)])
    self.final_norm = T.RMSNorm(width)
    conditional = conditioning != "none"
    self.final = T.linear(width, cmap_dim if conditional else 1, rngs)
    if conditional:
      self.embed = nnx.Embed(num_classes, cmap_dim, embedding_init=jax.nn.initializers.normal(
          0.02), rngs=rngs)
      self.cmap1 = T.EqualLinear(cmap_dim, cmap_dim, map_lr_mult, rngs)
      self.cmap2 = T.EqualLinear(cmap_dim, cmap_dim, map_lr_mult, rngs)
    self.repa = nnx.List([T.linear(width, repa_hidden, rngs),
                          T.linear(repa_hidden, repa_hidden, rngs),
                          T.linear(repa_hidden, repa_dim, rngs)]) if repa_dim else None
    self.width, self.head_dim = width, width // heads

  def levels_of(self, x, key):
    """(B, H, W, levels * C) noised levels from an image (every level the same) or from
    G's levels; without MNG, x itself."""
    c = self.channels
    if not self.mng_t:
      return x
    if x.shape[-1] == c:
      x = jnp.concatenate([x] * self.levels, axis=-1)
    stack = jnp.moveaxis(x.reshape(*x.shape[:3], self.levels, c), 3, 0)
    key = jax.random.PRNGKey(0) if key is None else key
    noised = mng_noise(stack, self.mng_t, key)
    return jnp.moveaxis(noised, 0, 3).reshape(x.shape)

  def features(self, x, key=None):
    """The last block's tokens (B, 1 + T, H), cls first, of an image or G's levels."""
    return self.trunk(self.levels_of(x, key))

  def trunk(self, x):
    """The last block's tokens of D's (already noised) input."""
    tok = self.embed_patches(T.patchify(x, self.patch))
    tok = tok + jnp.asarray(T.sincos_table(self.width, self.gh, self.gw), tok.dtype)
    cls = jnp.broadcast_to(self.cls[...].astype(tok.dtype), (tok.shape[0], 1, tok.shape[2]))
    h = jnp.concatenate([cls, tok], axis=1)
    rope = T.rope_tables(self.head_dim, self.gh, self.gw)
    for block in self.blocks:
      h = block(h, rope)
    return h

  def logits(self, h, labels):
    L.check_labels(labels, self.conditioning, "discriminator")
    out = self.final(self.final_norm(h[:, 0].astype(jnp.float32)))
    if self.conditioning == "none":
      return out[:, 0]
    e = self.cmap2(jax.nn.silu(self.cmap1(self.embed(labels).astype(jnp.float32))))
    return jnp.sum(out * e.astype(out.dtype), axis=-1)

  def project(self, h):
    """REPA's projections of the tokens (cls and patches alike), (B, 1 + T, repa_dim)."""
    for i, layer in enumerate(self.repa):
      h = layer(h) if i == 0 else layer(jax.nn.silu(h))
    return h

  def represent(self, x, rngs: jax.Array | None = None):
    """REPA's view of an input, noised as __call__ noises it with the same `rngs`: the
    projected cls token (B, repa_dim) and patch tokens (B, H/p, W/p, repa_dim)."""
    z = self.project(self.features(x, rngs))
    return z[:, 0], z[:, 1:].reshape(z.shape[0], self.gh, self.gw, z.shape[-1])

  def freeze_units(self):
    """Freeze-D's units from the input: the blocks, the first with the patch embedding and
    the cls token."""
    return [("embed_patches", "cls", "blocks/0")] + [(f"blocks/{i}",)
                                                     for i in range(1, len(self.blocks))]

  def __call__(self, x, labels=None, *, train: bool, rngs: jax.Array | None = None):
    """Returns (logits [B], None); MNG's noise comes from `rngs` (without one, from a
    fixed key: the same noise on every call, as for the evaluation's D probe)."""
    del train
    return self.logits(self.features(x, rngs), labels), None


def _arch_kwargs(cfg, num_classes):
  m = cfg.gat
  return dict(width=int(m.width), depth=int(m.depth), heads=int(m.heads), patch=int(m.patch),
              mlp_ratio=float(m.mlp_ratio), levels=int(m.levels), mng=bool(m.mng),
              conditioning=cfg.conditioning, num_classes=num_classes,
              attention=str(m.attention))


def build(cfg, image_shape, num_classes, rngs):
  m, kw = cfg.gat, _arch_kwargs(cfg, num_classes)
  g = GATGenerator(cfg.latent_dim, image_shape, class_dim=int(m.g_class_dim),
                   map_lr_mult=float(m.map_lr_mult), rngs=rngs, **kw)
  d = GATDiscriminator(image_shape, mng_t=tuple(m.mng_t), cmap_dim=int(m.d_cmap_dim),
                       map_lr_mult=float(m.map_lr_mult), layer_scale=float(m.layer_scale),
                       repa_dim=int(m.repa_dim), repa_hidden=int(m.repa_hidden), rngs=rngs,
                       **kw)
  return g, d


def check(cfg, image_shape):
  m = cfg.gat
  L.check_square("gat", image_shape)
  h, w = image_shape[0], image_shape[1]
  if h % m.patch or w % m.patch:
    raise UserError(f"config.model.gat.patch={m.patch} does not divide the {h}x{w} images; "
                    "use a patch size that divides both sides.")
  if m.width % m.heads or (m.width // m.heads) % 4 or m.width % 4:
    raise UserError(f"config.model.gat.width={m.width} with heads={m.heads}: the width must "
                    "split into heads whose size is a multiple of 4 (2-D RoPE), and itself be "
                    "a multiple of 4 (the sin-cos table).")
  if m.levels < 1 or m.depth % m.levels:
    raise UserError(f"config.model.gat.depth={m.depth} must be a multiple of levels="
                    f"{m.levels} (G has an output head every depth/levels blocks).")
  if m.mng and not all(0 <= t < 1 for t in m.mng_t):
    raise UserError(f"config.model.gat.mng_t={tuple(m.mng_t)}: each noise std must be in "
                    "[0, 1) (the signal keeps 1 - t of the level).")
  if m.mng and len(m.mng_t) < m.levels:
    raise UserError(f"config.model.gat.mng_t={tuple(m.mng_t)} needs one noise level per "
                    f"output level ({m.levels}).")
  L.check_plain(cfg, "gat", "RMSNorm and QK-norm keep it stable", "G through its mapping "
                "and D by projection")


ARCHITECTURES.register("gat", Architecture(build, check=check, fields={
    "width": Field(384, "hidden width H of G and D (GAT-S 384, B 768, L 1024, XL 1152)",
                   rule=Range(4)),
    "depth": Field(12, "transformer blocks of G and of D", rule=Range(1)),
    "heads": Field(6, "attention heads (head size = width / heads)", rule=Range(1)),
    "patch": Field(2, "patch size p: tokens are p x p patches", rule=Range(1)),
    "mlp_ratio": Field(4.0, "SwiGLU hidden = int(2/3 int(width x mlp_ratio))", rule=Range(1)),
    "levels": Field(4, "G's output heads (cumulative levels), one every depth/levels blocks",
                    rule=Range(1)),
    "mng": Field(True, "multi-level noise: D sees G's levels, each noised (MNG)"),
    "mng_t": Field(MNG_T, "MNG noise std per level, earliest to last, each in [0, 1)"),
    "g_class_dim": Field(64, "G's class embedding (conditional)", rule=Range(1)),
    "d_cmap_dim": Field(2048, "D's projection embedding width (conditional)", rule=Range(1)),
    "map_lr_mult": Field(0.01, "learning-rate multiplier of the mapping layers",
                         rule=Range(0, lo_open=True)),
    "layer_scale": Field(0.1, "D's layer-scale start value"),
    "repa_dim": Field(0, "REPA projector output (the encoder's width); 0: no projector",
                      rule=Range(0)),
    "repa_hidden": Field(2048, "REPA projector's hidden width", rule=Range(1)),
    "attention": Field("auto", "attention kernel: auto (cuDNN's fused one on a GPU in "
                       "bfloat16/float16, else XLA's), xla or cudnn",
                       rule=OneOf(("auto", "xla", "cudnn"))),
}))
