"""Frozen networks read from the files people have: diffusers' AutoencoderKL (SD-VAE,
FLUX.1, FLUX.2 layouts; autoencoder_kl.py) and its directories (autoencoder_files.py).
Below jaxgan.data, whose preparation encodes datasets into latents with them; imports
only jaxgan.ops and jaxgan.base."""
