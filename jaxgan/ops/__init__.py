"""Numerical primitives every network shares, below the networks themselves: convolutions
whose backward maps of any order are convolutions again, computed by the convolution
provider in scope (convs.py). Imports only jaxgan.base."""
