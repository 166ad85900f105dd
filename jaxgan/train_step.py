"""The train step: one pure function (state, batch) -> (state, metrics), compiled once.

One call performs `config.train.n_critic` discriminator updates, each with its own real
batch (batch["images"][i]) and a fresh z, then one generator update. Only D's parameters
move in a D update and only G's in the G update. The critic loop is unrolled in Python:
on XLA:CPU convolutions inside a `lax.scan` body run 8-30x slower than the same
convolutions unrolled (../shared/docs/PERF_NOTES.md); `config.train.critic_loop="scan"`
keeps the scan form for accelerators and large n_critic.

Randomness: every draw comes from fold_in(root, step) and a named stream, so a step is
reproducible on its own, on any number of devices.
"""
from __future__ import annotations

from typing import Callable, Dict, Tuple

import jax
import jax.numpy as jnp
import optax

from jaxgan import rng
from jaxgan.losses import LOSSES, Loss, label_targets
from jaxgan.models import convs
from jaxgan.penalties import PENALTIES, Penalty
from jaxgan.state import GAN, NetState, TrainState

Batch = Dict[str, jax.Array]
Metrics = Dict[str, jax.Array]


def to_float(images: jax.Array) -> jax.Array:
  """uint8 [0, 255] -> float32 [-1, 1], i.e. (x/255 - 0.5) / 0.5."""
  return images.astype(jnp.float32) / 127.5 - 1.0


def metric_names(config) -> Tuple[str, str, str]:
  """(total, adversarial, penalty) metric names: c_* for a critic, d_* otherwise."""
  loss = LOSSES.get(config.loss)
  p = "c" if loss.critic else "d"
  adv = "c_wass_loss" if config.loss == "wgan" else f"{p}_adv_loss"
  return f"{p}_loss", adv, f"{p}_{config.penalty}"


def validate(config, gan: GAN) -> Tuple[Loss, Penalty]:
  """Rejects loss/penalty/model combinations that would silently train the wrong thing."""
  loss, penalty = LOSSES.get(config.loss), PENALTIES.get(config.penalty)
  lab = config.labels
  if not loss.uses_targets and (lab.smoothing or lab.noise or lab.flip):
    raise ValueError(
        f"Label smoothing/noise/flipping (config.labels) has no meaning for loss "
        f"{config.loss!r}; use it with one of: "
        f"{', '.join(n for n in LOSSES.names() if LOSSES.get(n).uses_targets)}.")
  if penalty.per_example and config.model.d_norm == "batch" and config.model.arch != "mlp":
    raise ValueError(
        f"Penalty {config.penalty!r} needs per-example input gradients, but the "
        "discriminator uses BatchNorm, which couples the examples of a batch. Set "
        "config.model.d_norm='layer' or 'none' (Gulrajani et al. 2017, sec. 4).")
  if config.train.n_critic < 1:
    raise ValueError(f"config.train.n_critic must be >= 1, got {config.train.n_critic}.")
  if config.train.critic_loop not in ("unroll", "scan"):
    raise ValueError(f"config.train.critic_loop must be 'unroll' or 'scan', got "
                     f"{config.train.critic_loop!r}.")
  del gan
  return loss, penalty


def _xent(class_logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(class_logits, labels).mean()


def _accuracy(logits, positive: bool, threshold: float):
  return jnp.mean((logits > threshold) if positive else (logits <= threshold))


def make_train_step(gan: GAN, config) -> Callable[[TrainState, Batch], Tuple[TrainState, Metrics]]:
  """Returns the (uncompiled) pure train step for `gan` under `config`. Applies
  `config.train.cpu_conv` (process-wide, read when the step is traced)."""
  loss, penalty = validate(config, gan)
  convs.set_cpu_conv(config.train.get("cpu_conv", "auto"))
  n_critic = config.train.n_critic
  clip_value = float(config.clip_value)
  average = bool(config.d_loss_average)
  threshold = 0.5 if config.loss == "lsgan" else 0.0
  conditional = gan.num_classes > 0
  acgan = gan.conditioning == "acgan"
  acgan_weight = float(config.model.acgan_weight)
  names = metric_names(config)

  def d_update(d: NetState, g: NetState, g_stats, real_u8, labels, key, hp):
    real = to_float(real_u8)
    d_labels = None if acgan else labels  # an AC-GAN discriminator does not see labels
    b = real.shape[0]
    z = gan.sample_latents(rng.stream(key, "z"), b)
    fake, g_stats = gan.generate(g.params, g_stats, z, labels, train=True)
    fake = jax.lax.stop_gradient(fake)
    t_real, t_fake = label_targets(rng.stream(key, "targets"), b,
                                   smoothing=hp["label_smoothing"], noise=hp["label_noise"],
                                   flip=hp["label_flip"])
    k_drop = rng.stream(key, "dropout")

    def loss_fn(params):
      real_logits, real_cls, stats = gan.discriminate(
          params, d.stats, real, d_labels, train=True, key=jax.random.fold_in(k_drop, 0))
      fake_logits, fake_cls, stats = gan.discriminate(
          params, stats, fake, d_labels, train=True, key=jax.random.fold_in(k_drop, 1))
      r_term, f_term = loss.d_terms(real_logits, fake_logits, t_real, t_fake)
      adv = (r_term + f_term) / 2 if average else r_term + f_term
      pen = jnp.zeros((), jnp.float32)
      if penalty.fn is not None:
        # The critic of the penalty sees the same labels; gradients are w.r.t. x only.
        critic = lambda v: gan.discriminate(params, stats, v, d_labels, train=True,
                                            key=jax.random.fold_in(k_drop, 2))[0]
        pen = penalty.fn(critic, real, fake, rng.stream(key, "penalty"))
      total = adv + hp["penalty_weight"] * pen
      cls = jnp.zeros((), jnp.float32)
      if acgan:  # Odena et al. 2017: D classifies real and generated images
        cls = (_xent(real_cls, labels) + _xent(fake_cls, labels)) / 2
        total = total + acgan_weight * cls
      return total, (stats, adv, pen, cls, real_logits, fake_logits)

    (total, (stats, adv, pen, cls, rl, fl)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(d.params)
    updates, opt_state = gan.tx_d.update(grads, d.opt_state, d.params)
    params = optax.apply_updates(d.params, updates)
    if penalty.project is not None:
      params = penalty.project(params, clip_value)
    m = {names[0]: total, names[1]: adv, "d_grad_norm": optax.global_norm(grads),
         "hist_d_real": rl, "hist_d_fake": fl,  # D outputs, for histograms
         "d_x": jnp.mean(jax.nn.sigmoid(rl) if loss.probabilistic else rl),
         "d_g_z": jnp.mean(jax.nn.sigmoid(fl) if loss.probabilistic else fl),
         "d_real_acc": _accuracy(rl, True, threshold),
         "d_fake_acc": _accuracy(fl, False, threshold)}
    if penalty.fn is not None:
      m[names[2]] = pen
    if acgan:
      m["d_cls_loss"] = cls
    return NetState(params, stats, opt_state), g_stats, m

  def g_update(g: NetState, d: NetState, real_u8, labels, key):
    b = real_u8.shape[0]
    z = gan.sample_latents(rng.stream(key, "z"), b)
    k_drop = rng.stream(key, "dropout")

    d_labels = None if acgan else labels

    def loss_fn(params):
      fake, g_stats = gan.generate(params, g.stats, z, labels, train=True)
      fake_logits, fake_cls, d_stats = gan.discriminate(
          d.params, d.stats, fake, d_labels, train=True, key=jax.random.fold_in(k_drop, 0))
      real_logits = None
      if loss.needs_real_in_g:
        real_logits, _, d_stats = gan.discriminate(
            d.params, d_stats, to_float(real_u8), d_labels, train=True,
            key=jax.random.fold_in(k_drop, 1))
      g_loss = loss.g_loss(fake_logits, real_logits)
      cls = jnp.zeros((), jnp.float32)
      if acgan:  # G makes images that D classifies as the requested class
        cls = _xent(fake_cls, labels)
      return g_loss + acgan_weight * cls, (g_stats, d_stats, fake_logits, g_loss, cls)

    (_, (g_stats, d_stats, fl, g_loss, cls)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(g.params)
    updates, opt_state = gan.tx_g.update(grads, g.opt_state, g.params)
    params = optax.apply_updates(g.params, updates)
    m = {"g_loss": g_loss, "g_grad_norm": optax.global_norm(grads),
         "g_acc": _accuracy(fl, True, threshold)}
    if acgan:
      m["g_cls_loss"] = cls
    return NetState(params, g_stats, opt_state), d_stats, m

  def train_step(state: TrainState, batch: Batch) -> Tuple[TrainState, Metrics]:
    images = batch["images"]
    if images.shape[0] != n_critic:
      raise ValueError(f"batch['images'] must stack n_critic={n_critic} real batches on "
                       f"axis 0; got shape {images.shape}.")
    labels = batch.get("labels") if conditional else None
    key = rng.step_key(state.key, state.step)
    g, d, hp = state.g, state.d, state.hparams

    def critic_iter(carry, i, x, y):
      d, g_stats = carry
      d, g_stats, m = d_update(d, g, g_stats, x, y, rng.stream(key, "critic", i), hp)
      return (d, g_stats), m

    if config.train.critic_loop == "unroll" or n_critic == 1:
      carry, ms = (d, g.stats), []
      for i in range(n_critic):
        carry, m = critic_iter(carry, i, images[i], None if labels is None else labels[i])
        ms.append(m)
      d_metrics = {k: ms[-1][k] if k.startswith("hist_")
                   else jnp.mean(jnp.stack([m[k] for m in ms])) for k in ms[0]}
    else:
      xs = (jnp.arange(n_critic), images, labels)
      carry, ms = jax.lax.scan(lambda c, a: critic_iter(c, *a), (d, g.stats), xs)
      d_metrics = {k: v[-1] if k.startswith("hist_") else jnp.mean(v) for k, v in ms.items()}
    d, g_stats = carry
    g = g.replace(stats=g_stats)
    g, d_stats, g_metrics = g_update(g, d, images[-1], None if labels is None else labels[-1],
                                     rng.stream(key, "generator"))
    d = d.replace(stats=d_stats)
    ema = state.ema
    if ema is not None:
      decay = hp["ema_decay"]
      ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, g.params)
    metrics = {**d_metrics, **g_metrics}
    metrics["d_acc"] = (metrics["d_real_acc"] + metrics["d_fake_acc"]) / 2
    metrics["params_finite"] = jnp.all(jnp.array(
        [jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves((g.params, d.params))]))
    new_state = state.replace(step=state.step + 1, g=g, d=d, ema=ema)
    return new_state, metrics

  return train_step
