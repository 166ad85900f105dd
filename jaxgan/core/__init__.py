"""The GAN core: models (Flax NNX), losses, regularizers, augmentations, optimizers,
schedules, the train state and the pure, jit-compiled train step. It knows nothing of the
training run, evaluation or the command line."""
