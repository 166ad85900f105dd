"""A plain PyTorch WGAN-GP (Gulrajani et al. 2017) of the `wgan_gp28` architecture
(../shared/bench/MODELS.md), the reference that configs/wgan_gp.py is compared against.

Same data (the 60,000 Fashion-MNIST training images), same model, batch 64, latent 64,
Adam 2e-4 betas (0.5, 0.999) for both nets, 5 critic updates (fresh real batch and z each)
per generator update, lambda = 10 on uniform interpolates. No jaxgan code. Writes
`samples.npz` (uint8 NHWC images, G in eval mode) and `losses.jsonl` into OUT.

  python tools/independent/torch_wgan_gp.py --steps 2000 --out /tmp/torch_wgp
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn


def read_idx(path):
  d = gzip.open(path).read()
  nd = d[3]
  dims = [int.from_bytes(d[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
  return np.frombuffer(d, np.uint8, offset=4 + 4 * nd).reshape(dims)


def build():
  G = nn.Sequential(
      nn.Linear(64, 7 * 7 * 128, bias=False), nn.BatchNorm1d(7 * 7 * 128), nn.ReLU(),
      nn.Unflatten(1, (128, 7, 7)),
      nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
      nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh())
  D = nn.Sequential(
      nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(64, 128, 4, 2, 1),
      nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(7 * 7 * 128, 1))
  return G, D


def main():
  here = os.path.dirname(os.path.abspath(__file__))
  p = argparse.ArgumentParser()
  p.add_argument("--idx", default=os.path.join(here, "..", "..", "..", "shared", "data", "fashion_mnist_idx"))
  p.add_argument("--steps", type=int, default=2000, help="generator updates")
  p.add_argument("--n_critic", type=int, default=5)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--num_samples", type=int, default=10000)
  p.add_argument("--threads", type=int, default=2)
  p.add_argument("--out", required=True)
  a = p.parse_args()
  torch.manual_seed(a.seed)
  torch.set_num_threads(a.threads)
  os.makedirs(a.out, exist_ok=True)
  x = read_idx(os.path.join(a.idx, "train-images-idx3-ubyte.gz")).astype(np.float32)
  x = torch.from_numpy(x[:, None] / 127.5 - 1.0)
  G, D = build()
  og = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
  od = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
  B, lam = 64, 10.0
  perm, pos = torch.randperm(len(x)), 0

  def real_batch():
    nonlocal perm, pos
    if pos + B > len(x):
      perm, pos = torch.randperm(len(x)), 0
    pos += B
    return x[perm[pos - B:pos]]

  log = open(os.path.join(a.out, "losses.jsonl"), "w")
  t0 = time.time()
  for step in range(a.steps):
    for _ in range(a.n_critic):
      real = real_batch()
      with torch.no_grad():
        fake = G(torch.randn(B, 64))
      eps = torch.rand(B, 1, 1, 1)
      x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
      (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
      gp = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
      wass = D(fake).mean() - D(real).mean()
      loss_d = wass + lam * gp
      od.zero_grad(set_to_none=True)
      loss_d.backward()
      od.step()
    for q in D.parameters():
      q.requires_grad_(False)
    loss_g = -D(G(torch.randn(B, 64))).mean()
    og.zero_grad(set_to_none=True)
    loss_g.backward()
    og.step()
    for q in D.parameters():
      q.requires_grad_(True)
    if step % 50 == 0 or step == a.steps - 1:
      rec = {"step": step, "c_loss": float(loss_d), "c_wass_loss": float(wass),
             "c_gp": float(gp), "g_loss": float(loss_g), "elapsed_s": round(time.time() - t0, 1)}
      log.write(json.dumps(rec) + "\n")
      log.flush()
      if step % 500 == 0:
        print(rec, flush=True)
  train_s = time.time() - t0
  G.eval()
  with torch.no_grad():
    imgs = torch.cat([G(torch.randn(1000, 64)) for _ in range(a.num_samples // 1000)])
  u8 = np.clip(np.rint((imgs.numpy() + 1) * 127.5), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
  np.savez_compressed(os.path.join(a.out, "samples.npz"), images=u8)
  print(json.dumps({"train_s": round(train_s, 1), "s_per_step": round(train_s / a.steps, 4),
                    "samples": u8.shape}), flush=True)


if __name__ == "__main__":
  main()
