"""Every config field jaxgan reads, with its default and meaning.

`configs/default.py` exposes it as the base config; variants import and override it. A
run's stored config is read back on top of these defaults, so checkpoints written before
a field existed still load.
"""
import ml_collections


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.num_devices = 0            # 0: every device of every process

  c.data = ml_collections.ConfigDict()
  c.data.name = ""             # TFDS name (mnist, fashion_mnist, cifar10, celeb_a, ...);
                               # "" with no folder: the embedded Fashion-MNIST (offline)
  c.data.split = "train"
  c.data.data_dir = ""         # TFDS data_dir ("" = TFDS default / $TFDS_DATA_DIR)
  c.data.download = False      # let TFDS download and prepare the dataset
  c.data.folder = ""           # a folder of PNG/JPEG images instead (sub-folders = classes)
  c.data.image_key = "image"
  c.data.label_key = "label"   # "" for no labels; "attributes/Blond_Hair" style for celeb_a
  c.data.image_size = 28
  c.data.channels = 1
  c.data.batch_size = 64       # global batch, split over all devices
  c.data.max_examples = 0      # 0 = all; a small number for quick tests

  c.model = ml_collections.ConfigDict()
  c.model.arch = "mlp"         # mlp | dcgan
  c.model.latent_dim = 64
  c.model.conditioning = "none"  # none | concat | projection | acgan
  c.model.embed_dim = 32       # class embedding size of a projection-conditioned G
  c.model.acgan_weight = 1.0   # weight of the auxiliary classification losses (acgan)
  c.model.init = "pytorch"     # pytorch | lecun | glorot | dcgan (weight initialisation)
  c.model.g_act = "relu"
  c.model.d_act = "leaky_relu"
  c.model.g_norm = "none"      # batch | layer | none
  c.model.d_norm = "none"
  c.model.d_dropout = 0.0
  c.model.d_spectral_norm = False
  # mlp
  c.model.g_widths = (256, 512, 1024)
  c.model.d_widths = (1024, 512, 256)
  # dcgan
  c.model.g_base_features = 64
  c.model.d_base_features = 64
  c.model.start_size = 4       # image_size = start_size * 2**n (use 7 for 28 px)
  c.model.g_stem = "convt"     # convt (1x1 -> start_size) | dense
  c.model.d_head = "conv"      # conv (k=start_size, valid) | dense
  c.model.upsample = "transpose"  # transpose | resize (nearest x2 + conv)

  c.loss = "non_saturating"    # minimax | non_saturating | lsgan | hinge | wgan | ragan
  c.penalty = "none"           # none | clip | gp | r1 | r2 | dragan
  c.penalty_weight = 10.0      # lambda (gp, dragan) or gamma (r1, r2)
  c.clip_value = 0.01          # penalty="clip": critic weights in [-c, c]
  c.d_loss_average = False     # D loss = (real term + fake term) / 2 instead of the sum
  c.labels = ml_collections.ConfigDict()
  c.labels.smoothing = 0.0     # one-sided: real target 1 - smoothing
  c.labels.noise = 0.0         # real 1 + noise*U(0,1), fake -noise*U(0,1)
  c.labels.flip = 0.0          # probability of swapping an example's targets
  c.ema_decay = 0.0            # > 0: sample and evaluate with an EMA of G's weights

  c.optim = ml_collections.ConfigDict()
  for net in ("g", "d"):
    o = ml_collections.ConfigDict()
    o.name = "adam"            # adam | rmsprop | sgd
    o.lr = 2e-4
    o.b1 = 0.5
    o.b2 = 0.999
    o.eps = 1e-8
    o.decay = 0.99             # rmsprop
    o.momentum = 0.0           # sgd
    c.optim[net] = o

  c.train = ml_collections.ConfigDict()
  c.train.steps = 10_000       # generator updates
  c.train.n_critic = 1         # discriminator updates per generator update
  c.train.critic_loop = "unroll"  # unroll | scan
  c.train.population_mode = "vmap"  # --population: vmap (one batched step) | unroll (members
                                    # one after another inside one compiled program)
  c.train.cpu_conv = "auto"    # CPU float32 convolutions: auto (oneDNN when it builds, else
                               # XLA) | onednn (required) | xla  (jaxgan/native)
  c.train.log_every = 100
  c.train.sample_every = 1000
  c.train.checkpoint_every = 1000
  c.train.progress = True
  c.train.tensorboard = True   # also write TensorBoard event files (DIR/tensorboard)

  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.keep = 3
  c.checkpoint.async_save = True

  c.eval = ml_collections.ConfigDict()
  c.eval.every = 0             # > 0: FD/KID/class coverage every N steps (in-domain classifier)
  c.eval.num_samples = 2000    # generated images per evaluation during training
  c.eval.best_metric = "fd"    # the checkpoint with the lowest value is kept apart
  c.eval.cache_dir = "~/.cache/jaxgan"  # trained classifiers and real-data statistics
  c.eval.classifier_steps = 2000
  c.eval.test_split = "test"   # TFDS split for the classifier's accuracy and memorisation
  c.eval.max_real_features = 10000
  c.eval.memorization_samples = 16

  c.sample = ml_collections.ConfigDict()
  c.sample.grid_size = 64
  c.sample.grid_cols = 8
  return c
