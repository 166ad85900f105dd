"""XLA:CPU-only speed-ups: oneDNN convolutions as an XLA custom call (onednn.py), offered
to the core as a convolution provider (conv_provider.py), and the host allocator tuning
(allocator.py). Only jaxgan/run/platform.py imports this package, and only when the
default backend is the CPU: a GPU/TPU process never loads it."""
