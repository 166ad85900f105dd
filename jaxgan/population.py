"""Population training: several trials in one vmapped, jit-compiled program.

Trials that differ only in the seed and in scalar hyperparameters (POPULATION_FIELDS) have
identical shapes, so their states stack along a leading member axis and
`jax.vmap(train_step)` trains all of them in one compiled step on the same devices. The
optimizer hyperparameters live in the optimizer states (optax.inject_hyperparams) and the
others in `TrainState.hparams`, so every member really uses its own values. One data
pipeline holds the images; each member draws its own order from its own seed.

The population is checkpointed and resumed as one state (workdir/population/); at the
end every member is written as an ordinary run in workdir/<trial name>/ (config.json,
metrics.jsonl, samples, a checkpoint), so it can be sampled and evaluated as if it had
been trained alone.
"""
from __future__ import annotations

import json
import os
from typing import List

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import checkpoint as ckpt_lib
from jaxgan import data as data_lib
from jaxgan import rng, sampling, sharding, state as state_lib, train_step as ts, visualize
from jaxgan.sweep import Trial, apply, trial_name

POPULATION_FIELDS = frozenset({
    "seed", "optim.g.lr", "optim.d.lr", "optim.g.b1", "optim.d.b1", "optim.g.b2",
    "optim.d.b2", "optim.g.eps", "optim.d.eps", "optim.g.decay", "optim.d.decay",
    "penalty_weight", "ema_decay", "labels.noise", "labels.smoothing", "labels.flip"})


def check(trials: List[Trial]) -> None:
  bad = sorted({k for t in trials for k in t} - POPULATION_FIELDS)
  if bad:
    raise ValueError(
        f"--population trains trials that differ only in the seed and scalar "
        f"hyperparameters ({', '.join(sorted(POPULATION_FIELDS))}); these fields would change "
        f"the program: {', '.join(bad)}. Run the sweep without --population.")
  emas = {float(t.get("ema_decay", -1)) > 0 for t in trials if "ema_decay" in t}
  if len(emas) > 1:
    raise ValueError("--population: ema_decay must be > 0 for all members or for none.")


def stack(trees):
  return jax.tree.map(lambda *x: jnp.stack(x), *trees)


def unstack(tree, i):
  return jax.tree.map(lambda x: x[i], tree)


POPULATION_MODES = ("vmap", "unroll")


def population_step(step_fn, members: int, mode: str):
  """One train step over a stacked population of `members` states.

  "vmap" batches the members into one program: fastest where the step is made of matmuls
  (MLPs) and on accelerators. Vmapped convolutions with per-member kernels become grouped
  convolutions, which XLA:CPU runs slowly, so "unroll" instead traces the step once per
  member inside the same compiled program (compile time grows with the population; XLA may
  run independent members concurrently). Both give the same values."""
  if mode == "vmap":
    return jax.vmap(step_fn)
  if mode != "unroll":
    raise ValueError(f"Unknown train.population_mode {mode!r}; valid: "
                     f"{', '.join(POPULATION_MODES)}.")

  def unrolled(states, batches):
    outs = [step_fn(unstack(states, i), unstack(batches, i)) for i in range(members)]
    return stack([o[0] for o in outs]), stack([o[1] for o in outs])
  return unrolled


def train_population(config, trials: List[Trial], workdir: str, log=print):
  """Trains all `trials` together; returns the stacked final state."""
  check(trials)
  members = [apply(config, t) for t in trials]
  names = [trial_name(t) for t in trials]
  os.makedirs(workdir, exist_ok=True)
  mesh = sharding.make_mesh(config.num_devices)
  sharding.check_batch_size(config.data.batch_size, mesh)
  data = data_lib.load(config.data)
  from jaxgan import train  # pylint: disable=g-import-not-at-top
  built = [train.setup(c, data) for c in members]
  gan = built[0][0]
  for c in members:
    ts.validate(c, gan)
  state = stack([s for _, s in built])
  step_fn = ts.make_train_step(gan, members[0])
  batch_sh = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, None, "data"))
  repl = sharding.replicated(mesh)
  state = jax.device_put(state, repl)
  vstep = jax.jit(population_step(step_fn, len(trials), config.train.population_mode),
                  in_shardings=(repl, batch_sh),
                  out_shardings=(repl, repl), donate_argnums=0)
  streams = [data_lib.Batches(data, c.data.batch_size, c.train.n_critic, c.seed)
             for c in members]

  pop_dir = os.path.join(workdir, "population")
  ckpt = ckpt_lib.Checkpointer(os.path.join(pop_dir, "checkpoints"),
                               keep=config.checkpoint.keep,
                               async_save=config.checkpoint.async_save)
  meta = {"config": train.config_to_dict(config), "trials": trials,
          "image_shape": list(data.image_shape), "num_classes": gan.num_classes}
  if ckpt.latest_step() is not None:
    state, stored = ckpt.restore(state)
    if stored.get("trials") != json.loads(json.dumps(trials)):
      raise ValueError(f"{pop_dir} holds a population of other trials; use a new --workdir.")
    log(f"Resumed the population from step {int(state.step[0])}")
  for c, name in zip(members, names):
    os.makedirs(os.path.join(workdir, name), exist_ok=True)
    with open(os.path.join(workdir, name, "config.json"), "w") as f:
      f.write(c.to_json_best_effort(indent=2, sort_keys=True))

  start, total = int(state.step[0]), int(config.train.steps)
  window = []
  for step in range(start, total):
    host = [s.for_step(step) for s in streams]
    batch = {k: np.stack([h[k] for h in host]) for k in host[0]}
    batch = {k: jax.device_put(v, batch_sh) for k, v in batch.items()}
    state, metrics = vstep(state, batch)
    window.append(metrics)
    done = step + 1
    if done % config.train.log_every == 0 or done == total:
      host_m = jax.device_get(window)
      window = []
      for i, name in enumerate(names):
        row = {"step": done}
        for k in host_m[-1]:
          if k.startswith("hist_") or k == "params_finite":
            continue
          vals = [mm[k][i] for mm in host_m]
          if not np.all(np.isfinite(vals)):
            raise train.NonFiniteError(f"Non-finite {k} in population member {name} before "
                                       f"step {done}.")
          row[k] = float(np.mean(vals))
        with open(os.path.join(workdir, name, "metrics.jsonl"), "a") as f:
          f.write(json.dumps(row) + "\n")
      log(f"step {done}: " + ", ".join(
          f"{n}: g_loss {float(np.mean([mm['g_loss'][i] for mm in host_m])):.3f}"
          for i, n in enumerate(names)))
    if done % config.train.checkpoint_every == 0 or done == total:
      ckpt.save(done, state, {**meta, "step": done}, force=True)
  ckpt.close()
  export_members(gan, state, members, names, workdir, meta)
  return state


def export_members(gan, state, members, names, workdir, meta):
  """Each member as an ordinary run directory: a checkpoint and a sample grid."""
  from jaxgan import train  # pylint: disable=g-import-not-at-top
  gen = sampling.generator_fn(gan)
  for i, (c, name) in enumerate(zip(members, names)):
    member = unstack(state, i)
    step = int(member.step)
    wd = os.path.join(workdir, name)
    ck = ckpt_lib.Checkpointer(os.path.join(wd, "checkpoints"), async_save=False)
    if ck.latest_step() != step:
      ck.save(step, member, {**meta, "config": train.config_to_dict(c), "step": step,
                             "dataset": "", "class_names": []}, force=True)
    ck.close()
    z, labels = sampling.grid_inputs(gan, c.sample.grid_size,
                                     rng.stream(rng.root_key(c.seed), "fixed_noise"))
    imgs = visualize.to_uint8(gen(state_lib.sampling_params(member), member.g.stats, z, labels))
    visualize.save_grid(imgs, os.path.join(wd, "samples", f"step_{step:07d}.png"),
                        gan.num_classes if labels is not None else c.sample.grid_cols or None)
