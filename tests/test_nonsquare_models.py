"""Non-square images (config.data.image_size=H,W): the convolutional architectures whose
papers allow it build H x W images from a first layer at the image's aspect ratio
(layers.start_grid), the others refuse them in one line. Square networks are unchanged:
the parameter-count tests of each architecture (test_models.py, test_resnet.py, ...)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import default
from jaxgan.base.errors import UserError
from jaxgan.core import models
from jaxgan.core.models import layers as L
from tests.conftest import set_fields

B, CLASSES = 2, 3


def build(model_cfg, shape, classes):
  """(G, D) with abstract parameters: shapes only, nothing initialised or compiled."""
  return nnx.eval_shape(lambda: models.build(model_cfg, shape, classes, 0))


def run(module, *args, **kw):
  """The shapes of module(*args, **kw), traced, not run (seconds on a busy 2-core CPU)."""
  graphdef, state = nnx.split(module)
  return jax.eval_shape(lambda st, *a: nnx.merge(graphdef, st)(*a, **kw), state, *args)


def cfg(arch, **over):
  c = default.get_config()
  c.model.arch, c.model.latent_dim = arch, 8
  return set_fields(c, over).model


TINY = {
    "dcgan": lambda: cfg("dcgan", **{"model.dcgan.g_base_features": 4,
                                     "model.dcgan.d_base_features": 4}),
    "resnet": lambda: cfg("resnet", **{"model.resnet.g_base_features": 1,
                                       "model.resnet.d_base_features": 1,
                                       "model.g_norm": "batch", "model.init": "ortho"}),
    "biggan": lambda: cfg("biggan", **{"model.latent_dim": 8, "model.biggan.g_base_features": 2,
                                       "model.biggan.d_base_features": 4,
                                       "model.biggan.shared_dim": 4, "model.g_norm": "batch",
                                       "model.init": "ortho"}),
    "stylegan2": lambda: cfg("stylegan2", **{"model.stylegan2.w_dim": 8,
                                             "model.stylegan2.mapping_layers": 1,
                                             "model.stylegan2.channel_base": 64,
                                             "model.stylegan2.channel_max": 8}),
    "r3gan": lambda: cfg("r3gan", **{"model.r3gan.widths": (8, 8), "model.r3gan.blocks": (1, 1),
                                     "model.r3gan.cardinality": (2, 2)}),
    "mlp": lambda: cfg("mlp", **{"model.mlp.g_widths": (8,), "model.mlp.d_widths": (8,)}),
}

# arch -> (a small non-square image it builds, its first layer's grid; None: no grid)
SHAPES = {"dcgan": ((32, 64), (4, 8)), "resnet": ((32, 64), (4, 8)),
          "biggan": ((32, 64), (4, 8)), "stylegan2": ((16, 32), (4, 8)),
          "r3gan": ((8, 16), (4, 8)), "mlp": ((4, 8), None)}


def first_grids(arch, g, d):
  """The (h, w) of G's first layer and of D's last spatial layer."""
  if arch == "dcgan":
    return g.stem_layer.kernel.shape[:2], d.out.kernel.shape[:2]
  if arch in ("resnet", "biggan"):
    return g.grid, g.grid      # D ends in a sum over H and W
  if arch == "stylegan2":
    c4 = d.conv.weight.shape[-1]
    area = d.fc.weight.shape[0] // c4
    return g.blocks[0].const.shape[:2], (area,)
  return g.basis.shape[:2], d.basis.shape[:2]


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("arch", sorted(SHAPES))
def test_generators_and_discriminators_take_height_by_width(arch, transpose):
  (h, w), grid = SHAPES[arch]
  if transpose:
    h, w, grid = w, h, grid and grid[::-1]
  c = TINY[arch]()
  c.conditioning = "none" if arch in ("r3gan", "mlp") else "projection"
  classes = CLASSES if c.conditioning != "none" else 0
  check = models.ARCHITECTURES.get(arch).check
  if check is not None:
    check(c, (h, w, 1))
  g, d = build(c, (h, w, 1), classes)
  y = jnp.arange(B) % CLASSES if classes else None
  x = run(g, jnp.zeros((B, c.latent_dim)), y, train=True)
  assert x.shape == (B, h, w, 1)
  logits, cls = run(d, jnp.zeros(x.shape), y, train=True, rngs=jax.random.PRNGKey(1))
  assert logits.shape == (B,) and cls is None
  if grid is not None:
    g_grid, d_grid = first_grids(arch, g, d)
    assert tuple(g_grid) == grid
    assert tuple(d_grid) in (grid, (grid[0] * grid[1],))


def test_dcgan_dense_stem_and_head_acgan_and_resize():
  c = TINY["dcgan"]()
  c.dcgan.g_stem, c.dcgan.d_head, c.dcgan.upsample = "dense", "dense", "resize"
  c.conditioning = "acgan"
  g, d = build(c, (16, 8, 1), CLASSES)     # start 4: 8 = 4 * 2, grid 8x4
  y = jnp.arange(B) % CLASSES
  x = run(g, jnp.ones((B, c.latent_dim)), y, train=True)
  logits, cls = run(d, jnp.zeros(x.shape), None, train=True)
  assert x.shape == (B, 16, 8, 1) and logits.shape == (B,) and cls.shape == (B, CLASSES)
  assert d.out.kernel.shape[0] == 8 * 4 * 4


def test_stylegan2_orig_discriminator_and_noise_images():
  c = TINY["stylegan2"]()
  c.stylegan2.d_architecture = "orig"
  g, d = build(c, (32, 16, 1), 0)
  assert [b.conv1.noise_const.shape for b in g.blocks] == [(8, 4), (16, 8), (32, 16)]
  x = run(g, jnp.ones((B, c.latent_dim)), train=False)     # the noise images themselves
  assert x.shape == (B, 32, 16, 1) and run(d, jnp.zeros(x.shape), train=False)[0].shape == (B,)


def test_a_non_square_dcgan_runs_and_its_logits_are_finite():
  """One real forward (the others trace shapes only): the 4x8 stem and head compute. Random
  weights filled in with numpy and one jitted program, as eager initialisation compiles
  each op (seconds on a busy CPU)."""
  rng = np.random.default_rng(0)
  fill = lambda s: (0.2 * rng.standard_normal(s.shape)).astype(s.dtype)
  (g_def, g_st), (d_def, d_st) = (
      (graphdef, jax.tree.map(fill, state))
      for graphdef, state in map(nnx.split, build(TINY["dcgan"](), (16, 32, 1), 0)))

  @jax.jit
  def forward(g_st, d_st, z):
    x = nnx.merge(g_def, g_st)(z, train=True)
    return x, nnx.merge(d_def, d_st)(x, train=True)[0]
  x, logits = forward(g_st, d_st, rng.standard_normal((B, 8)).astype(np.float32))
  assert x.shape == (B, 16, 32, 1) and bool(jnp.all(jnp.isfinite(logits)))
  assert float(jnp.abs(logits[0] - logits[1])) > 0


def test_square_grids_are_the_square_networks():
  assert L.start_grid("x", (32, 32, 3), 3, "", "") == (4, 4)
  assert L.start_grid("x", (256, 512, 3), 6, "", "") == (4, 8)


@pytest.mark.parametrize("arch,shape,match", [
    ("r3gan2", (16, 32, 1), "config.data.image_size=16,32: the r3gan2 architecture builds "
     "square images only"),
    ("gat", (16, 32, 1), "config.data.image_size=16,32: the gat architecture builds square"),
    ("dcgan", (30, 64, 1), r"config.data.image_size=30,64: the dcgan .*image_size = "
     r"start_size \* 2\*\*n.*; use e.g. 32 or 32,64"),
    ("dcgan", (32, 60, 1), r"config.data.image_size=32,60: .*divisible by 2\*\*3 = 8.*"
     "use e.g. 32,56"),
    ("resnet", (48, 96, 1), "config.data.image_size=48,96: the resnet architecture builds "
     "images whose short side is one of 32, 64"),
    ("biggan", (36, 32, 1), r"config.data.image_size=36,32: .*divisible.*use e.g. 32\.$"),
    ("stylegan2", (24, 48, 1), "config.data.image_size=24,48: .*power-of-two size from 16 up"),
    ("stylegan2", (32, 44, 1), r"config.data.image_size=32,44: .*divisible by 2\*\*3 = 8"),
    ("r3gan", (16, 32, 1), "config.data.image_size=16,32: .*2 stages, which build 8 px"),
])
def test_sizes_an_architecture_cannot_build_are_refused_in_one_line(arch, shape, match):
  c = TINY[arch]() if arch in TINY else cfg(arch)
  with pytest.raises(UserError, match=match) as e:
    models.ARCHITECTURES.get(arch).check(c, shape)
  assert "\n" not in str(e.value) and "config.data.image_size" in str(e.value)
