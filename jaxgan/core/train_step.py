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

import functools
from typing import Callable, Dict, Tuple

import jax
import jax.numpy as jnp
import optax

from jaxgan.core import augment, phema, regularizers, schedules
from jaxgan.base import rng
from jaxgan.core.augment import adaptive
from jaxgan.core.losses import LOSSES, Loss, label_targets
from jaxgan.core.state import GAN, NetState, TrainState

Batch = Dict[str, jax.Array]
Metrics = Dict[str, jax.Array]


def to_float(images: jax.Array) -> jax.Array:
  """uint8 [0, 255] -> float32 [-1, 1], i.e. (x/255 - 0.5) / 0.5; a latent batch (float,
  already drawn and normalised: latent_space.py) passes through."""
  if images.dtype != jnp.uint8:
    return images.astype(jnp.float32)
  return images.astype(jnp.float32) / 127.5 - 1.0


def metric_prefix(loss: Loss) -> str:
  """c_* metrics for an unbounded critic, d_* for a discriminator."""
  return "c" if loss.critic else "d"


def discriminator_path(gan: GAN, policy: str, settings=None):
  """The one function every D evaluation of the step goes through (real and generated
  batches, regularizer inputs, the G update): D(augment(x)) in training mode.

  `key` seeds D's dropout (as before augmentation existed) and, through its own stream,
  the augmentation pipeline; with no augmentation nothing is drawn and no bit changes.
  `p` is an adaptive augmentation's probability (ADA), read from the state each step."""
  aug = augment.pipeline(policy, settings)

  def run_d(params, stats, x, labels, key, p=None):
    x = aug(rng.stream(key, "augment"), x, p)
    return gan.discriminate(params, stats, x, labels, train=True, key=key)
  return run_d


def _xent(class_logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(class_logits, labels).mean()


def _accuracy(logits, positive: bool, threshold: float):
  return jnp.mean((logits > threshold) if positive else (logits <= threshold))


def _with_hyperparams(net: NetState, values) -> NetState:
  """`net` with these injected optimizer hyperparameters (scheduled lr / b2) set."""
  if not values:
    return net
  hyper = dict(net.opt_state.hyperparams)
  hyper.update({k: jnp.asarray(v, hyper[k].dtype) for k, v in values.items()})
  return net.replace(opt_state=net.opt_state._replace(hyperparams=hyper))


def _apply(tx, project, net: NetState, grads, stats, freeze=None) -> NetState:
  """One optimizer update of a network, then its weight projection (if any); `freeze`
  (Freeze-D) zeroes the updates of the blocks it holds fixed."""
  updates, opt_state = tx.update(grads, net.opt_state, net.params)
  if freeze is not None:
    updates = freeze(updates)
  params = optax.apply_updates(net.params, updates)
  if project is not None:
    params = project(params)
  return NetState(params, stats, opt_state)


def make_train_step(gan: GAN, config) -> Callable[[TrainState, Batch], Tuple[TrainState, Metrics]]:
  """Returns the (uncompiled) pure train step for `gan` under `config`. Plain JAX: the
  platform's convolution provider in scope when it is traced (jaxgan/run/platform.py)
  runs its convolutions."""
  return TrainStep(gan, config).__call__


class TrainStep:
  """The step's static settings, and its three parts: a D update, a G update, and the
  whole step (n_critic D updates, then one G update). Everything it changes is in the
  TrainState it is given and returns."""

  def __init__(self, gan: GAN, config):
    # The config was validated (jaxgan/run/validate.py) before anything was built.
    self.gan, self.loss = gan, LOSSES.get(config.loss)
    self.run_d = discriminator_path(gan, config.augment.policy, config.augment)
    self.augment = augment.pipeline(config.augment.policy, config.augment)
    self.geometry = (augment.geometry(config.augment.policy)
                     if not augment.uses_p(config.augment.policy) else None)
    self.ada = adaptive.schedule_of(config)
    self.schedules = schedules.resolve(config)
    self.halflife = schedules.uses_halflife(config, self.schedules)
    self.batch = int(config.data.batch_size)
    self.accum = int(config.train.get("grad_accum", 1))
    self.ema_start = int(config.ema_start)
    self.rampup = float(config.ema_rampup)
    self.phema_gammas = tuple(phema.sigma_rel_to_gamma(s) for s in config.phema.sigma_rels)
    self.entries = list(gan.regularizers)
    self.n_critic = int(config.train.n_critic)
    self.scan = config.train.critic_loop == "scan" and self.n_critic > 1
    self.average = bool(config.d_loss_average)
    self.acgan = gan.conditioning == "acgan"
    self.acgan_weight = float(config.model.acgan_weight)
    self.p = metric_prefix(self.loss)

  def lazy_pattern(self, step: int):
    """The lazy regularizers that run in host step `step`, as a hashable static argument
    of __call__: (("d", i, name), ...) per critic update i and (("g", 0, name), ...);
    None when nothing is lazy or the critic updates are a lax.scan (then lax.cond)."""
    lazy = [e for e in self.entries if e.every > 1]
    if not lazy or self.scan:
      return None
    return tuple(("d", i, e.name) for i in range(self.n_critic) for e in lazy
                 if e.side == "d" and (step * self.n_critic + i) % e.every == 0) + tuple(
                     ("g", 0, e.name) for e in lazy if e.side == "g" and step % e.every == 0)

  @staticmethod
  def _active(pattern, side: str, i: int = 0):
    if pattern is None:
      return None
    return {name for s, j, name in pattern if s == side and j == i}

  def _d_loss(self, params, d: NetState, real, fake, d_labels, labels, reg, counter, key, hp,
              z=None, generate=None, active=None):
    """D's total loss and (stats, regularizer states, metrics) for one critic update.
    `z` and `generate` (G at its current, fixed weights) serve latent-space terms (zCR)."""
    loss, run_d, k_drop = self.loss, self.run_d, rng.stream(key, "dropout")
    t_real, t_fake = label_targets(rng.stream(key, "targets"), real.shape[0],
                                   smoothing=hp["label_smoothing"], noise=hp["label_noise"],
                                   flip=hp["label_flip"])
    p = hp.get("augment_p")
    rl, rc, stats_r = run_d(params, d.stats, real, d_labels, jax.random.fold_in(k_drop, 0), p)
    fl, fc, stats = run_d(params, stats_r, fake, d_labels, jax.random.fold_in(k_drop, 1), p)
    r_term, f_term = loss.d_terms(rl, fl, t_real, t_fake)
    adv = (r_term + f_term) / 2 if self.average else r_term + f_term
    # Regularizers see D through the same path, with the same labels; gradients are
    # taken w.r.t. the images they pass in.
    # critic_real / critic_fake replay the evaluations above (their key and D state), so a
    # finite-difference term sees only the change of its input
    critic_at = lambda i, st: lambda v: run_d(params, st, v, d_labels,
                                              jax.random.fold_in(k_drop, i), p)[0]
    k_real = jax.random.fold_in(k_drop, 0)
    ctx = lambda e, st: regularizers.Context(
        key=rng.stream(key, e.stream), options=e.options, state=st,
        critic=critic_at(2, stats), real=real, fake=fake, real_logits=rl, fake_logits=fl,
        z=z, generate=generate, params=params, critic_real=critic_at(0, d.stats),
        critic_fake=critic_at(1, stats_r),
        represent_real=lambda: self.gan.represent(
            params, d.stats, self.augment(rng.stream(k_real, "augment"), real, p), key=k_real),
        real_images=lambda: real if self.gan.latent is None else jnp.clip(
            self.gan.latent.decode(real), -1.0, 1.0),
        replay_geometry=lambda v: self.geometry(rng.stream(k_real, "augment"), v, real.shape))
    reg_total, reg, reg_m = regularizers.apply(self.entries, "d", counter, hp, reg, ctx,
                                               active)
    total = adv + reg_total
    m = {f"{self.p}_{loss.adv_name}_loss": adv,
         "hist_d_real": rl, "hist_d_fake": fl,  # D outputs, for histograms
         "d_x": jnp.mean(jax.nn.sigmoid(rl) if loss.probabilistic else rl),
         "d_g_z": jnp.mean(jax.nn.sigmoid(fl) if loss.probabilistic else fl),
         "d_real_sign": jnp.mean(jnp.sign(rl)),   # ADA's overfitting heuristic r_t
         "d_real_acc": _accuracy(rl, True, loss.threshold),
         "d_fake_acc": _accuracy(fl, False, loss.threshold),
         **{f"{self.p}_{k}": v for k, v in reg_m.items()}}
    if self.acgan:  # Odena et al. 2017: D classifies real and generated images
      cls = (_xent(rc, labels) + _xent(fc, labels)) / 2
      m["d_cls_loss"] = cls
      total = total + self.acgan_weight * cls
    m[f"{self.p}_loss"] = total
    return total, (stats, reg, m)

  def d_update(self, d: NetState, g: NetState, g_stats, reg, real_u8, labels, counter, key, hp,
               active=None):
    real = to_float(real_u8)
    d_labels = None if self.acgan else labels  # an AC-GAN discriminator does not see labels
    z = self.gan.sample_latents(rng.stream(key, "z"), real.shape[0])
    k_g = rng.stream(key, "g_noise")   # G's own randomness (StyleGAN2's noise, mixing)
    fake, new_g_stats = self.gan.generate(g.params, g_stats, z, labels, train=True, key=k_g)
    # a G that truncates (GAT) tracks its w_avg in its own update only, as the reference's
    # step_gen (update_ema=True) does; BatchNorm statistics follow every training call
    g_stats = g_stats if self.gan.truncates else new_g_stats
    fake = jax.lax.stop_gradient(fake)
    generator = lambda lab: lambda zz: jax.lax.stop_gradient(self.gan.generate(
        g.params, g_stats, zz, lab, train=True, key=jax.random.fold_in(k_g, 1))[0])
    generate = generator(labels)
    if self.accum == 1:
      loss_fn = functools.partial(self._d_loss, z=z, generate=generate, active=active)
      (_, (stats, reg, m)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
          d.params, d, real, fake, d_labels, labels, reg, counter, key, hp)
    else:
      def one(carry, xs):
        stats, reg = carry
        r, f, dl, lab, zz, j = xs
        fn = functools.partial(self._d_loss, z=zz, generate=generator(lab), active=active)
        (_, (stats, reg, m)), g = jax.value_and_grad(fn, has_aux=True)(
            d.params, d.replace(stats=stats), r, f, dl, lab, reg, counter,
            jax.random.fold_in(key, j), hp)
        return (stats, reg), (g, m)
      grads, (stats, reg), m = self._accumulate(one, d.params, (d.stats, reg),
                                                (real, fake, d_labels, labels, z))
    if self.gan.freeze_d is not None:   # Freeze-D: frozen blocks neither move nor count
      grads = self.gan.freeze_d(grads)   # in the gradient clipping's norm
    m["d_grad_norm"] = optax.tree.norm(grads)
    return (_apply(self.gan.tx_d, self.gan.project_d, d, grads, stats, self.gan.freeze_d),
            g_stats, reg, m)

  def _g_loss(self, params, g: NetState, d: NetState, z, real_u8, labels, reg, counter, key,
              hp, active=None):
    gan, loss, k_drop = self.gan, self.loss, rng.stream(key, "dropout")
    d_labels = None if self.acgan else labels
    k_g = rng.stream(key, "g_noise")
    fake, g_stats = gan.generate(params, g.stats, z, labels, train=True, key=k_g)
    p = hp.get("augment_p")
    fl, fc, d_stats = self.run_d(d.params, d.stats, fake, d_labels,
                                 jax.random.fold_in(k_drop, 0), p)
    rl = None
    if loss.needs_real_in_g:
      rl, _, d_stats = self.run_d(d.params, d_stats, to_float(real_u8), d_labels,
                                  jax.random.fold_in(k_drop, 1), p)
    g_loss = loss.g_loss(fl, rl)
    generate = lambda zz: gan.generate(params, g.stats, zz,
                                       None if labels is None else labels[:zz.shape[0]],
                                       train=True, key=jax.random.fold_in(k_g, 1))[0]
    apply_g = lambda fn: gan.apply_g(params, g.stats, fn)
    ctx = lambda e, st: regularizers.Context(
        key=rng.stream(key, e.stream), options=e.options, state=st, generate=generate,
        z=z, fake=fake, fake_logits=fl, params=params, labels=labels, apply_g=apply_g)
    reg_total, reg, reg_m = regularizers.apply(self.entries, "g", counter, hp, reg, ctx,
                                               active)
    m = {"g_loss": g_loss, "g_acc": _accuracy(fl, True, loss.threshold),
         **{f"g_{k}": v for k, v in reg_m.items()}}
    total = g_loss + reg_total
    if self.acgan:  # G makes images that D classifies as the requested class
      m["g_cls_loss"] = _xent(fc, labels)
      total = total + self.acgan_weight * m["g_cls_loss"]
    return total, (g_stats, d_stats, reg, m)

  def g_update(self, g: NetState, d: NetState, reg, real_u8, labels, counter, key, hp,
               active=None):
    z = self.gan.sample_latents(rng.stream(key, "z"), real_u8.shape[0])
    if self.accum == 1:
      (_, (g_stats, d_stats, reg, m)), grads = jax.value_and_grad(self._g_loss, has_aux=True)(
          g.params, g, d, z, real_u8, labels, reg, counter, key, hp, active)
    else:
      def one(carry, xs):
        g_stats, d_stats, reg = carry
        zz, r, lab, j = xs
        (_, (g_stats, d_stats, reg, m)), grads = jax.value_and_grad(
            self._g_loss, has_aux=True)(g.params, g.replace(stats=g_stats),
                                        d.replace(stats=d_stats), zz, r, lab, reg, counter,
                                        jax.random.fold_in(key, j), hp, active)
        return (g_stats, d_stats, reg), (grads, m)
      grads, (g_stats, d_stats, reg), m = self._accumulate(
          one, g.params, (g.stats, d.stats, reg), (z, real_u8, labels))
    m["g_grad_norm"] = optax.tree.norm(grads)
    return _apply(self.gan.tx_g, self.gan.project_g, g, grads, g_stats), d_stats, reg, m

  def _accumulate(self, one, params, carry, batch):
    """Gradient accumulation (config.train.grad_accum = n): `one(carry, micro)` -> (carry,
    (grads, metrics)) over n micro-batches in a lax.scan (one micro-batch's activations
    live at a time), threading `carry` (BatchNorm statistics, regularizer states) through
    them; returns the mean gradient, the last carry and the metrics (scalars averaged,
    per-example histograms joined). Micro-batch j holds rows j, j + n, j + 2n, ... of each
    array in `batch`, so a batch sharded over devices gives every micro-batch rows of
    every device; its randomness comes from fold_in(key, j).

    What equals the full batch (to float32 rounding): every loss and penalty that is a
    mean over examples, pairs included (RpGAN pairs real i with generated i in both); the
    gradient, hence the update. What does not: BatchNorm normalises with each micro-batch's
    statistics and updates its running ones n times; random draws (augmentation, dropout,
    penalties' noise) are per micro-batch (the same distribution, other numbers); stateful
    terms (LeCam's anchors, the path-length mean) move once per micro-batch; a minibatch
    standard deviation (StyleGAN2's D) sees its micro-batch."""
    n = self.accum
    micro = lambda x: None if x is None else jnp.swapaxes(
        x.reshape(x.shape[0] // n, n, *x.shape[1:]), 0, 1)
    xs = (*[micro(x) for x in batch], jnp.arange(n))

    def body(c, x):
      acc, carry = c
      carry, (grads, m) = one(carry, x)
      return (jax.tree.map(jnp.add, acc, grads), carry), m
    zeros = jax.tree.map(jnp.zeros_like, params)
    (total, carry), ms = jax.lax.scan(body, (zeros, carry), xs)
    grads = jax.tree.map(lambda t: t / n, total)
    m = {k: v.reshape(-1) if k.startswith("hist_") else jnp.mean(v, axis=0)
         for k, v in ms.items()}
    return grads, carry, m

  def _critic_updates(self, state: TrainState, hp, images, labels, key, pattern=None):
    """The n_critic D updates of one step (unrolled, or in a lax.scan)."""
    g, n = state.g, self.n_critic

    def one(carry, i, x, y):
      d, g_stats, reg = carry
      active = self._active(pattern, "d", i) if isinstance(i, int) else None
      d, g_stats, reg, m = self.d_update(d, g, g_stats, reg, x, y, state.step * n + i,
                                         rng.stream(key, "critic", i), hp, active)
      return (d, g_stats, reg), m

    carry = (state.d, g.stats, state.reg or {})
    if not self.scan:
      ms = []
      for i in range(n):
        carry, m = one(carry, i, images[i], None if labels is None else labels[i])
        ms.append(m)
      return carry, {k: ms[-1][k] if k.startswith("hist_")
                     else jnp.mean(jnp.stack([m[k] for m in ms])) for k in ms[0]}
    xs = (jnp.arange(n), images, labels)
    carry, ms = jax.lax.scan(lambda c, a: one(c, *a), carry, xs)
    return carry, {k: v[-1] if k.startswith("hist_") else jnp.mean(v) for k, v in ms.items()}

  def __call__(self, state: TrainState, batch: Batch, pattern=None
               ) -> Tuple[TrainState, Metrics]:
    """One step; `pattern` (static, `lazy_pattern(step)`) fixes which lazy regularizers
    run, else each is a lax.cond on the update counter (the same numbers either way)."""
    images = batch["images"]
    if images.shape[0] != self.n_critic:
      raise ValueError(f"batch['images'] must stack n_critic={self.n_critic} real batches "
                       f"on axis 0; got shape {images.shape}.")
    labels = batch.get("labels") if self.gan.num_classes > 0 else None
    key = rng.step_key(state.key, state.step)
    if self.gan.latent is not None:   # a latent dataset: this step's z = mean + std * eps
      images = self.gan.latent.draw(images, batch["stds"], rng.stream(key, "latent"))
    hp = schedules.at(self.schedules, state.hparams, state.step)
    if state.augment is not None:   # ADA: this step's p, the same for every D call
      hp["augment_p"] = hp.get("sched/augment.p", state.augment["p"])
    if self.schedules:
      state = state.replace(
          g=_with_hyperparams(state.g, schedules.optimizer_values(self.schedules, hp, "g")),
          d=_with_hyperparams(state.d, schedules.optimizer_values(self.schedules, hp, "d")))
    (d, g_stats, reg), d_metrics = self._critic_updates(state, hp, images, labels, key,
                                                        pattern)
    g, d_stats, reg, g_metrics = self.g_update(
        state.g.replace(stats=g_stats), d, reg, images[-1],
        None if labels is None else labels[-1], state.step, rng.stream(key, "generator"),
        hp, self._active(pattern, "g"))
    d = d.replace(stats=d_stats)
    ema = state.ema
    if ema is not None:  # EMA of G's weights: ema <- decay ema + (1 - decay) params
      decay = schedules.ema_decay(hp, self.batch, self.halflife, state.step, self.rampup)
      if self.ema_start:   # before it, the EMA is a copy of G (BigGAN's g_ema_start)
        decay = jnp.where(state.step < self.ema_start, 0.0, decay)
      ema = optax.incremental_update(g.params, ema, 1.0 - decay)
    profiles = state.phema
    if profiles is not None:   # post-hoc EMA profiles after G's update state.step + 1
      profiles = phema.update(profiles, g.params, state.step + 1, self.phema_gammas)
    metrics = {**d_metrics, **g_metrics, **schedules.metrics(self.schedules, hp)}
    metrics["d_acc"] = (metrics["d_real_acc"] + metrics["d_fake_acc"]) / 2
    metrics["params_finite"] = jnp.all(jnp.array(
        [jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves((g.params, d.params))]))
    aug_state = state.augment
    if self.ada is not None:
      metrics["augment_p"] = hp["augment_p"]   # the p of this step (adapted or scheduled)
      aug_state = adaptive.update(aug_state, metrics["d_real_sign"], state.step, self.ada)
      metrics["ada_rt"] = aug_state["rt"]
    new_state = state.replace(step=state.step + 1, g=g, d=d, ema=ema, reg=reg,
                              augment=aug_state, phema=profiles)
    return new_state, metrics
