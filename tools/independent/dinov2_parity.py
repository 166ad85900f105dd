"""Numerical fixture for jaxgan's DINOv2 encoder and REPA term, made with PyTorch and timm.

What GAT's REPA (hse1032/GAT@21a2dd09: utils.py load_encoders, losses/Rp_PT_loss.py) does
with its encoder, done here with the libraries it uses, on a small randomised DINOv2-shaped
ViT (timm's VisionTransformer with DINOv2's settings: patch 14, layer scale, 518-px
position table) so that the file stays small:

* the position table resampled to 16 x 16 by timm's resample_abs_pos_embed (as
  load_encoders does), loaded into the same ViT built for 224 px;
* raw images (0..255) -> / 255 -> ImageNet normalisation -> F.interpolate(224, bicubic)
  (preprocess_raw_image) -> forward_features -> normed cls and patch tokens;
* the alignment term of step_disc on random D projections (cosine_similarity, and
  resize_spatial's bicubic resize when D has fewer tokens);
* PyTorch's bicubic F.interpolate with and without antialias at a few sizes.

Nothing of jaxgan is imported. Writes tests/data/dinov2/dinov2_parity.npz (outputs and
inputs) and tests/data/dinov2/tiny_dinov2.pth (the ViT's state dict in the hub's names,
saved by torch.save: jaxgan must read it without PyTorch).

  nice -n 10 /work/venv-torch/bin/python tools/independent/dinov2_parity.py

Needs torch, timm, numpy in a venv of their own (not part of requirements.txt). Made with
torch 2.14.1 (CPU), timm 1.0.31, numpy 2.4.6.
"""
import json
import os

import numpy as np
import timm
import torch
import torch.nn.functional as F
from timm.layers.pos_embed import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "dinov2")
WIDTH, DEPTH, HEADS = 64, 2, 1       # head size 64, as every DINOv2 ViT
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def vit(img_size):
  return VisionTransformer(img_size=img_size, patch_size=14, embed_dim=WIDTH, depth=DEPTH,
                           num_heads=HEADS, mlp_ratio=4.0, init_values=1e-5, num_classes=0)


def randomise(model, g):
  with torch.no_grad():
    for name, p in model.named_parameters():
      if name.endswith("gamma"):
        p.copy_(0.5 + torch.rand(p.shape, generator=g))
      elif name.endswith("bias") or "norm" in name:
        p.copy_(0.1 * torch.randn(p.shape, generator=g) + ("weight" in name))
      else:
        fan_in = p[0].numel() if p.ndim > 1 else 1
        p.copy_(torch.randn(p.shape, generator=g) / max(fan_in, 1) ** 0.5)


def resize_spatial(t, h):
  """GAT's resize_spatial: (B, L, C) tokens on a square grid -> h x h, bicubic."""
  b, l, c = t.shape
  s = int(np.sqrt(l))
  x = t.transpose(1, 2).reshape(b, c, s, s)
  x = F.interpolate(x, size=(h, h), mode="bicubic", align_corners=False)
  return x.reshape(b, c, -1).transpose(1, 2)


def main():
  torch.manual_seed(0)
  g = torch.Generator().manual_seed(0)
  big = vit(518)
  randomise(big, g)
  sd = {k: v.clone() for k, v in big.state_dict().items()}
  sd["mask_token"] = torch.zeros(1, WIDTH)          # the hub's file carries it
  torch.save(sd, os.path.join(OUT, "tiny_dinov2.pth"))

  enc = vit(224).eval()
  sd224 = {k: v for k, v in sd.items() if k != "mask_token"}
  sd224["pos_embed"] = resample_abs_pos_embed(sd["pos_embed"], [16, 16])
  enc.load_state_dict(sd224)

  raw = torch.randint(0, 256, (2, 3, 32, 32), generator=g).float()
  x = raw / 255.0
  x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
  x = F.interpolate(x, 224, mode="bicubic")
  with torch.no_grad():
    tokens = enc.forward_features(x)
  cls, patches = tokens[:, 0], tokens[:, 1:]

  # the alignment term, D with an 8 x 8 grid: step_disc's z_cls_kd_loss + z_spatial_kd_loss
  d_cls = torch.randn(2, 1, WIDTH, generator=g)
  d_patches = torch.randn(2, 64, WIDTH, generator=g)
  target = resize_spatial(patches, 8)
  term_cls = 1 - F.cosine_similarity(d_cls.squeeze(1), cls, dim=-1)
  term_patch = (1 - F.cosine_similarity(d_patches, target, dim=-1)).sum(dim=1) / 64
  loss = (term_cls + term_patch).mean()

  out = {"raw": raw.permute(0, 2, 3, 1).numpy(), "pos_embed_16": sd224["pos_embed"].numpy(),
         "cls": cls.numpy(), "patches": patches.reshape(2, 16, 16, WIDTH).numpy(),
         "d_cls": d_cls[:, 0].numpy(), "d_patches": d_patches.reshape(2, 8, 8, WIDTH).numpy(),
         "alignment": np.float32(loss.item())}
  sizes = [(37, 16, True), (32, 224, False), (16, 8, False), (10, 7, True), (7, 10, True),
           (16, 12, False), (5, 9, False)]
  for n_in, n_out, aa in sizes:
    a = torch.randn(1, 2, n_in, n_in + 1, generator=g)
    b = F.interpolate(a, size=(n_out, n_out + 2), mode="bicubic", align_corners=False,
                      antialias=aa)
    out[f"resize_in_{n_in}_{n_out}_{int(aa)}"] = a.permute(0, 2, 3, 1).numpy()
    out[f"resize_out_{n_in}_{n_out}_{int(aa)}"] = b.permute(0, 2, 3, 1).numpy()
  out["meta"] = json.dumps({"width": WIDTH, "depth": DEPTH, "heads": HEADS, "patch": 14,
                            "sizes": sizes, "torch": torch.__version__,
                            "timm": timm.__version__, "numpy": np.__version__})
  np.savez_compressed(os.path.join(OUT, "dinov2_parity.npz"), **out)


if __name__ == "__main__":
  main()
