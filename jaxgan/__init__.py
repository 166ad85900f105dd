"""jaxgan: GAN research in pure JAX. The package is a stack of layers, each importing only
those below it (checked by import-linter: the `layers` contract in pyproject.toml):

  run/     the training run: loop, actions, checkpoints, resume, sweeps, populations,
           writers, config validation
  config   the config schema: every field, its default and rule, migrations of old runs
  eval/    evaluation: metrics, feature extractors, sampling, grids, latent tools, reports
  core/    the GAN: models, losses, regularizers, augmentations, optimizers, schedules,
           the train state and the pure train step
  data/    datasets and the deterministic batch stream
  cpu/     XLA:CPU-only speed-ups (oneDNN convolutions, host allocator tuning): imported
           only by run/platform.py, on CPU, and reaching the core through one hook
           (the convolution provider of ops/convs.py)
  pretrained/  frozen networks read from the files people have (diffusers' AutoencoderKL):
           below data, whose preparation encodes images into latents with them
  ops/     numerical primitives every network shares: convolutions with fast backward
           of any order and the provider hook
  base/    errors, registries, random streams, sharding, the schema's field types, the
           allow-list reader of pickled weight files

launch.py (the command line) sits on top; benchmarks/ and tools/ are outside the package.
"""
