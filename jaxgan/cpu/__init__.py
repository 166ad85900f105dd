"""XLA:CPU-only speed-ups: oneDNN convolutions as an XLA custom call (onednn.py) and the
host allocator tuning (allocator.py). Nothing here runs on a GPU or TPU."""
