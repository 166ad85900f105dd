"""The bottom layer: what every other layer may use (user errors, registries, named random
streams, the device mesh). It imports nothing from jaxgan."""
