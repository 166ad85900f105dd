"""Independent evaluation of exported samples (samples.npz), with no jaxgan code.

A PyTorch CNN classifier (conv32-conv32-pool-conv64-conv64-pool-fc256-fc10, about 92% on the
Fashion-MNIST test split) is trained once on the 60,000 Fashion-MNIST training images (IDX
files) and cached; then, for every samples.npz given:
  * label_accuracy: fraction of samples the classifier assigns to the class they were
    generated for (only when the file carries `labels`),
  * class_histogram / classes_covered,
  * fd_cnn: Frechet distance in the classifier's 256-d penultimate features against the
    10,000 test images (numpy + scipy.linalg.sqrtm),
  * fd_pca: Frechet distance in a 50-d PCA space of the test images (pixels only).
A reference line scores 10,000 real training images the same way.

  python tools/independent/torch_eval.py [--idx DIR] [--cache F] run1/samples.npz ...

Needs torch, numpy, scipy (e.g. python3 -m venv .venv-torch && .venv-torch/bin/pip install
torch numpy scipy); it is not part of requirements.txt.
"""
import argparse
import gzip
import json
import os

import numpy as np
import scipy.linalg
import torch
import torch.nn as nn


def read_idx(path):
  d = gzip.open(path).read()
  nd = d[3]
  dims = [int.from_bytes(d[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
  return np.frombuffer(d, np.uint8, offset=4 + 4 * nd).reshape(dims)


class Net(nn.Module):

  def __init__(self):
    super().__init__()
    self.body = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Dropout(0.3), nn.Linear(64 * 7 * 7, 256), nn.ReLU())
    self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(256, 10))

  def forward(self, x):
    return self.head(self.body(x))


def to_tensor(u8):
  x = torch.from_numpy(np.ascontiguousarray(u8.reshape(-1, 1, 28, 28))).float()
  return x / 127.5 - 1.0


def train(xtr, ytr, xte, yte, epochs=4, seed=0):
  torch.manual_seed(seed)
  net = Net()
  opt = torch.optim.Adam(net.parameters(), 1e-3)
  sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=epochs * (len(xtr) // 128))
  gen = np.random.default_rng(seed)
  for ep in range(epochs):
    net.train()
    perm = gen.permutation(len(xtr))
    for i in range(len(xtr) // 128):
      idx = perm[i * 128:(i + 1) * 128]
      loss = nn.functional.cross_entropy(net(to_tensor(xtr[idx])), torch.from_numpy(ytr[idx]).long())
      opt.zero_grad()
      loss.backward()
      opt.step()
      sched.step()
    acc = float((predict(net, xte)[0] == yte).mean())
    print(f"classifier epoch {ep + 1}: test accuracy {acc:.4f}", flush=True)
  return net, acc


@torch.no_grad()
def predict(net, u8, bs=1000):
  net.eval()
  preds, feats = [], []
  for i in range(0, len(u8), bs):
    f = net.body(to_tensor(u8[i:i + bs]))
    feats.append(f.double().numpy())
    preds.append(net.head(f).argmax(-1).numpy())
  return np.concatenate(preds), np.concatenate(feats)


def frechet(a, b):
  m1, m2 = a.mean(0), b.mean(0)
  s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  covmean = scipy.linalg.sqrtm(s1 @ s2).real
  return float(np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  here = os.path.dirname(os.path.abspath(__file__))
  p.add_argument("--idx", default=os.path.join(here, "..", "..", "..", "shared", "data", "fashion_mnist_idx"))
  p.add_argument("--cache", default=os.path.expanduser("~/.cache/jaxgan-independent/fmnist_cnn.pt"))
  p.add_argument("samples", nargs="*")
  a = p.parse_args()
  torch.set_num_threads(2)
  xtr = read_idx(os.path.join(a.idx, "train-images-idx3-ubyte.gz"))
  ytr = read_idx(os.path.join(a.idx, "train-labels-idx1-ubyte.gz"))
  xte = read_idx(os.path.join(a.idx, "t10k-images-idx3-ubyte.gz"))
  yte = read_idx(os.path.join(a.idx, "t10k-labels-idx1-ubyte.gz"))
  net = Net()
  if os.path.exists(a.cache):
    blob = torch.load(a.cache)
    net.load_state_dict(blob["state"])
    acc = blob["test_accuracy"]
  else:
    net, acc = train(xtr, ytr, xte, yte)
    os.makedirs(os.path.dirname(a.cache), exist_ok=True)
    torch.save({"state": net.state_dict(), "test_accuracy": acc}, a.cache + ".tmp")
    os.replace(a.cache + ".tmp", a.cache)
  test_pred, test_feat = predict(net, xte)
  flat_te = xte.reshape(len(xte), -1) / 255.0
  mu = flat_te.mean(0)
  proj = np.linalg.svd(flat_te - mu, full_matrices=False)[2][:50].T
  pca = lambda u8: (u8.reshape(len(u8), -1) / 255.0 - mu) @ proj

  def score(name, images, labels=None):
    pred, feat = predict(net, images)
    hist = np.bincount(pred, minlength=10)
    rec = {"samples": name, "n": len(images), "classifier_test_accuracy": round(acc, 4),
           "fd_cnn": round(frechet(feat, test_feat), 3),
           "fd_pca": round(frechet(pca(images), pca(xte)), 3),
           "classes_covered": int((hist > 0).sum()), "class_histogram": hist.tolist()}
    if labels is not None:
      rec["label_accuracy"] = round(float((pred == labels).mean()), 4)
      rec["per_class_accuracy"] = [round(float((pred[labels == k] == k).mean()), 3)
                                   for k in range(10) if (labels == k).any()]
    print(json.dumps(rec), flush=True)

  score("real train[:10000] (reference)", xtr[:10000], ytr[:10000].astype(np.int64))
  for path in a.samples:
    z = np.load(path)
    imgs = z["images"]
    if imgs.shape[1:] not in ((28, 28, 1), (28, 28)):
      raise SystemExit(f"{path}: images of shape {imgs.shape[1:]}; this evaluator expects 28x28x1")
    score(path, imgs, z["labels"].astype(np.int64) if "labels" in z.files else None)


if __name__ == "__main__":
  main()
