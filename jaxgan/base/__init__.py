"""The bottom layer: what every other layer may use (user errors, registries, named random
streams, the device mesh, the allow-list reader of pickled weight files, image sizes, pytree
key paths as checkpoint names). It imports nothing from jaxgan."""
