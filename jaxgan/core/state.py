"""The training state as explicit pytrees, and the functional use of the Flax modules.

A `TrainState` holds everything that changes during training: for G and for D their
parameters, their other variables (BatchNorm running statistics, spectral-norm vectors)
and their optimizer states; the EMA of G's parameters; the regularizers' states; the
step; the adaptive augmentation's probability (ADA's p); and the root key. The module structure (`nnx.GraphDef`), the optimizers and the
resolved regularizer list are static and live in `GAN`, so the train step is a pure
function of (state, batch).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Tuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from jaxgan.core import latent_space, models, optim, precision, regularizers, schedules
from jaxgan.base import rng
from jaxgan.base.errors import UserError
from jaxgan.core.augment import adaptive
from jaxgan.base.schema import get_field


@struct.dataclass
class NetState:
  params: Any          # nnx.State of nnx.Param
  stats: Any           # nnx.State of everything else (BatchStat, spectral-norm u, sigma)
  opt_state: Any


@struct.dataclass
class TrainState:
  step: jax.Array      # generator updates done
  key: jax.Array       # root PRNG key (uint32[2]); per-step keys are fold_in(key, step)
  g: NetState
  d: NetState
  ema: Optional[Any]   # EMA of g.params (Yazici et al. 2019) or None
  hparams: Any = None  # scalar hyperparameters the step reads (see hparams_of), as arrays
  reg: Any = None      # {regularizer name: its state} (path-length mean, ...)
  augment: Any = None  # ADA's {p, signs, count, rt} (jaxgan/core/augment/adaptive.py) or None
  phema: Any = None    # post-hoc EMA: one power-function EMA of g.params per
                       # config.phema.sigma_rels (jaxgan/core/phema.py), a tuple, or None


@dataclasses.dataclass(frozen=True)
class GAN:
  """Static description of a GAN: module graphs, optimizers, shapes."""
  g_graph: Any
  d_graph: Any
  tx_g: optax.GradientTransformation
  tx_d: optax.GradientTransformation
  latent_dim: int
  num_classes: int                 # > 0 for a conditional model
  image_shape: Tuple[int, int, int]
  conditioning: str = "none"
  regularizers: Tuple[regularizers.Entry, ...] = ()
  project_d: Optional[Callable] = None   # D's weight projection (WGAN clipping) or None
  project_g: Optional[Callable] = None
  # G takes a key (noise inputs, style mixing): its class sets `uses_key = True` and
  # accepts G(z, labels, train=, rngs=key); a style-based G (StyleGAN2, class attribute
  # `style_based = True`) also truncates in W: G(..., truncation=psi), and has W tools
  style_based: bool = False
  g_takes_key: bool = False
  # G truncates towards a tracked mean of its mapping's output (GAT's w_avg): class
  # attribute `truncates = True`, G(..., truncation=psi); no other W tools
  truncates: bool = False
  # config.train.dtype: the dtype G and D compute in (mixed precision: jaxgan/core/precision.py)
  compute_dtype: Any = jnp.float32
  # a latent GAN: how G/D's inputs relate to the autoencoder (jaxgan/core/latent_space.py)
  latent: Optional[latent_space.LatentSpace] = None
  remat: bool = False   # config.train.remat: G and D under jax.checkpoint
  # Freeze-D (config.model.freeze_d): D's updates -> the same with its frozen blocks' zero
  freeze_d: Optional[Callable] = None

  def real_input(self, images):
    """A real batch as D sees it without noise: uint8 images in [-1, 1], or latent means
    normalised (the D probe; the train step draws mean + std * eps itself)."""
    if self.latent is None:
      return images.astype(jnp.float32) / 127.5 - 1.0
    return self.latent.normalize(images.astype(jnp.float32))

  def generate(self, params, stats, z, labels=None, *, train: bool, key=None,
               truncation: float = 1.0):
    """G(z) as a pure function: returns (images, new_stats). `key` and `truncation` (psi
    in W) reach style-based generators only (`truncation` also a G that `truncates`);
    others draw no randomness in G."""
    def run(params, stats, z, labels, key):
      params, z = precision.cast((params, z), self.compute_dtype)
      g = nnx.merge(self.g_graph, params, stats, copy=True)
      if self.style_based:
        x = g(z, labels, train=train, rngs=key, truncation=truncation)
      elif self.g_takes_key:
        x = g(z, labels, train=train, rngs=key)
      elif self.truncates:
        x = g(z, labels, train=train, truncation=truncation)
      else:
        x = g(z, labels, train=train)
      return precision.to_float32(x), precision.like(nnx.state(g, nnx.Not(nnx.Param)), stats)
    return self._maybe_remat(run)(params, stats, z, labels, key)

  def _maybe_remat(self, fn):
    """fn, or with config.train.remat fn under jax.checkpoint: its activations are
    recomputed in the backward pass instead of kept (memory for one more forward)."""
    return jax.checkpoint(fn) if self.remat else fn

  def apply_g(self, params, stats, fn):
    """fn(G) with G at `params`/`stats` (its other methods: StyleGAN2's map, synthesize)."""
    return fn(nnx.merge(self.g_graph, params, stats, copy=True))

  def discriminate(self, params, stats, x, labels=None, *, train: bool, key=None):
    """D(x) as a pure function: returns (logits[B], class logits or None, new_stats)."""
    def run(params, stats, x, labels, key):
      params, x = precision.cast((params, x), self.compute_dtype)
      d = nnx.merge(self.d_graph, params, stats, copy=True)
      logits, class_logits = d(x, labels, train=train, rngs=key)
      return (precision.to_float32(logits), precision.to_float32(class_logits),
              precision.like(nnx.state(d, nnx.Not(nnx.Param)), stats))
    return self._maybe_remat(run)(params, stats, x, labels, key)

  def represent(self, params, stats, x, *, key=None):
    """D's representation of x for an alignment term (GAT's REPA projections: a cls vector
    and a grid of token vectors, float32), with D's randomness from `key` as in
    `discriminate`; only for a D that has one (`represent`)."""
    params, x = precision.cast((params, x), self.compute_dtype)
    d = nnx.merge(self.d_graph, params, stats, copy=True)
    return precision.to_float32(d.represent(x, key))

  def sample_latents(self, key, n: int, truncation: float = 0.0):
    """z ~ N(0, I); with `truncation` t > 0, the truncation trick of BigGAN (Brock et al.
    2019, sec. 3.1): every component drawn from N(0, 1) restricted to [-t, t]. (A
    style-based G truncates in W instead: `generate(..., truncation=psi)`.)"""
    shape = (n, self.latent_dim)
    if truncation > 0 and not (self.style_based or self.truncates):
      return jax.random.truncated_normal(key, -truncation, truncation, shape, jnp.float32)
    return jax.random.normal(key, shape, jnp.float32)

  def sample_labels(self, key, n: int):
    if self.num_classes <= 0:
      return None
    return jax.random.randint(key, (n,), 0, self.num_classes, jnp.int32)


# Scalar hyperparameters kept in the state as float32 arrays rather than baked into the
# compiled step, so members of a population can differ in them (with the optimizer
# hyperparameters, which optax.inject_hyperparams keeps in the optimizer states, and the
# regularizer weights, "reg/<name>"). Config field -> key in TrainState.hparams.
HPARAMS = {
    "ema_decay": "ema_decay",
    "labels.smoothing": "label_smoothing",
    "labels.noise": "label_noise",
    "labels.flip": "label_flip",
}


def hparams_of(config, entries=None) -> dict:
  """The hparams of `config`: the fields of HPARAMS and each regularizer's weight (where
  `config.penalty_weight` lands for the penalty shorthand)."""
  entries = regularizers.resolve(config) if entries is None else entries
  out = {key: jnp.asarray(get_field(config, field), jnp.float32)
         for field, key in HPARAMS.items()}
  out.update({e.hparam: jnp.asarray(e.weight, jnp.float32) for e in entries})
  out.update(schedules.start_values(config, schedules.resolve(config)))
  return out


def _model_projection(module) -> Optional[Callable]:
  """What a network asks to be applied to its parameters after every optimizer update
  (its class's `weight_projection()`: R3GAN2's forced weight normalisation), or None."""
  make = getattr(module, "weight_projection", None)
  return make() if make is not None else None


def _then(first: Optional[Callable], second: Optional[Callable]) -> Optional[Callable]:
  if first is None or second is None:
    return first or second
  return lambda params: second(first(params))


def _freezer(d, d_params, model_cfg) -> Optional[Callable]:
  """Freeze-D's map of D's updates (its first model.freeze_d blocks' set to 0), or None."""
  k = int(model_cfg.get("freeze_d", 0))
  if not k:
    return None
  mask = models.freeze_mask(d, d_params, k, model_cfg.arch)
  return lambda updates: jax.tree.map(lambda u, m: jnp.zeros_like(u) if m else u,
                                      updates, mask)


def create(config, image_shape, num_classes: int, latent=None) -> Tuple[GAN, TrainState]:
  """Builds the modules and the initial state from `config` (seeded by config.seed);
  `latent`: the LatentSpace of a latent GAN."""
  num_classes = num_classes if config.model.conditioning != "none" else 0

  # a latent GAN's G ends without tanh: normalised latents are not bounded
  g, d = models.build(config.model, image_shape, num_classes, config.seed,
                      linear_output=latent is not None)
  g_graph, g_params, g_stats = nnx.split(g, nnx.Param, ...)
  d_graph, d_params, d_stats = nnx.split(d, nnx.Param, ...)
  tx_g, tx_d = optim.make(config.optim.g), optim.make(config.optim.d)
  entries = regularizers.resolve(config)
  gan = GAN(g_graph, d_graph, tx_g, tx_d, config.model.latent_dim, num_classes,
            tuple(image_shape), config.model.conditioning, tuple(entries),
            project_d=_then(_model_projection(d), optim.projection(
                config.optim.d, config.penalty, config.clip_value)),
            project_g=_then(_model_projection(g), optim.projection(config.optim.g)),
            style_based=bool(getattr(g, "style_based", False)),
            g_takes_key=bool(getattr(g, "uses_key", False)),
            truncates=bool(getattr(g, "truncates", False)),
            compute_dtype=precision.dtype_of(config), latent=latent,
            remat=bool(config.train.get("remat", False)),
            freeze_d=_freezer(d, d_params, config.model))
  with_ema = config.ema_decay > 0 or schedules.uses_halflife(config, schedules.resolve(config))
  ema = jax.tree.map(jnp.copy, g_params) if with_ema else None
  state = TrainState(
      step=jnp.zeros((), jnp.int32), key=rng.root_key(config.seed),
      g=NetState(g_params, g_stats, tx_g.init(g_params)),
      d=NetState(d_params, d_stats, tx_d.init(d_params)), ema=ema,
      hparams=hparams_of(config, entries), reg=regularizers.init_states(entries),
      augment=adaptive.init_state(config),
      phema=tuple(jax.tree.map(jnp.copy, g_params) for _ in config.phema.sigma_rels) or None)
  return gan, state


def sampling_params(state: TrainState):
  """The generator parameters to sample and evaluate with: the EMA when enabled."""
  return state.ema if state.ema is not None else state.g.params


def count_params(params) -> int:
  return sum(int(p.size) for p in jax.tree.leaves(params))


def setup(config, data=None, image_shape=None, num_classes=None, latent=None):
  """(gan, initial state) for `config` and a dataset (an ImageData, or its image shape,
  class count and, for latent data, its description as a run's metadata stores it)."""
  if latent is not None:
    latent = latent_space.from_description(latent, config.data.latent_norm,
                                           config.model.decoder)
  if data is not None:
    image_shape, num_classes = data.image_shape, data.num_classes
    latent = latent_space.of(data, config)
  if config.model.conditioning != "none" and not num_classes:
    raise UserError(
        f"config.model.conditioning={config.model.conditioning!r} needs labelled data, but "
        f"the dataset has no labels (config.data.label_key={config.data.label_key!r}). Set "
        "config.model.conditioning='none' or pick a labelled dataset.")
  return create(config, image_shape, num_classes, latent)
