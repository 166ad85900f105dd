"""KL autoencoders (diffusers' AutoencoderKL family, jaxgan/run/autoencoder.py) to train
latent GANs behind: `config.task='autoencoder'`.

  --config configs/autoencoder.py:fashion   Fashion-MNIST at 32x32 from
                                            ../shared/data/tensorflow_datasets: 3 levels
                                            (16, 32, 64 wide), 8x8x4 latents (a quarter of
                                            the pixels), about ten minutes on the 2-core CPU
  --config configs/autoencoder.py:sd        SD-VAE's network (128, 256, 512, 512; 8x down,
                                            4 channels) for the user's own images
                                            (--config.data.folder=...)

The run writes WORKDIR/autoencoder/ in diffusers' format (config.json and
diffusion_pytorch_model.safetensors, with the shift and scaling factors of its latents):
`python -m jaxgan.data.prepare SRC OUT --encoder WORKDIR/autoencoder` and
`--config.model.decoder=WORKDIR/autoencoder` read it as they read a downloaded VAE.
Loss: L1 (+ L2) reconstruction and LDM's KL weight 1e-6; Adam 1e-3 with betas (0.5, 0.9)
for the small network (LDM trains its autoencoders with Adam betas (0.5, 0.9)).
"""
from configs import default
from configs.default import SHARED_TFDS

VARIANTS = ("fashion", "sd")


def get_config(variant: str = "fashion"):
  variant, steps = default.split_variant(variant, "autoencoder.py", VARIANTS)
  c = default.get_config()
  c.task = "autoencoder"
  c.optim.g.lr, c.optim.g.b1, c.optim.g.b2 = 1e-3, 0.5, 0.9
  a = c.autoencoder
  if variant == "fashion":
    c.data.name, c.data.data_dir, c.data.channels = "fashion_mnist", SHARED_TFDS, 1
    c.data.image_size, c.data.batch_size = 32, 64
    # the 32 px level sets the cost on the CPU: 16 channels there, 64 at the latents
    a.block_out_channels, a.layers_per_block, a.latent_channels = (16, 32, 64), 1, 4
    a.norm_num_groups = 8
    a.l1_weight, a.l2_weight = 1.0, 1.0
    # about 2 steps/s on the 2-core Zen 5 CPU: 1,300 steps are about ten minutes
    c.train.steps = steps or 1_300
    c.train.log_every, c.train.checkpoint_every = 100, 1_000
  else:
    c.data.name, c.data.channels, c.data.image_size, c.data.batch_size = "", 3, 256, 8
    c.optim.g.lr = 4.5e-6 * c.data.batch_size   # LDM's base rate times the batch
    c.train.steps = steps or 200_000
    c.train.log_every, c.train.checkpoint_every = 100, 5_000
  return c
