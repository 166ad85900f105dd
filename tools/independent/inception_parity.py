"""Parity of jaxgan's FID Inception with pytorch-fid's, on the same weights file and images.

Without the published weights (no download here), a random state dict of pytorch-fid's
network is saved in both `torch.save` formats (zip, and the legacy stream the 2019 file
uses). pytorch-fid's own `InceptionV3` wrapper then loads that file (its download patched to
read it) and computes the pool features of real Fashion-MNIST images and of generated ones;
its `fc` gives the 1008 logits; its `calculate_frechet_distance` the FID between the sets.
jaxgan (run with its own Python, `--jaxgan-python`) reads the same file through its
allow-list reader and does the same. Printed: the largest absolute difference of features
and logits relative to their largest magnitude, and both FIDs.

  .venv-torch/bin/python tools/independent/inception_parity.py \
      --fake runs/gan/samples.npz [--weights pt_inception-2015-12-05-6726825d.pth]

Needs torch, torchvision, pytorch-fid, numpy, scipy in their own venv (python3 -m venv
.venv-torch && .venv-torch/bin/pip install torch torchvision pytorch-fid scipy); not part
of requirements.txt.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from pytorch_fid import fid_score
from pytorch_fid import inception as pf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EMBEDDED = os.path.join(ROOT, "jaxgan", "data", "embedded", "t10k-images-idx3-ubyte.gz")

JAXGAN_SIDE = """
import json, sys, numpy as np
from jaxgan.eval import inception_weights, inception_extractor
from jaxgan.eval import stats as metrics
weights, cache, real, fake, out = sys.argv[1:6]
g, s, info = inception_weights.load(weights, cache, expected="any")
ex = inception_extractor.InceptionExtractor(g, s, info, resize="bilinear", batch_size=50)
fr, lr = ex.features_and_logits(np.load(real))
ff, lf = ex.features_and_logits(np.load(fake))
st = lambda f: (f.mean(0), np.cov(f, rowvar=False))
fid = metrics.frechet_distance(*st(fr), *st(ff))
np.savez(out, feat_real=fr, logit_real=lr, feat_fake=ff, logit_fake=lf, fid=fid)
print(json.dumps(info))
"""


def read_idx(path):
  d = gzip.open(path).read()
  dims = [int.from_bytes(d[4 + 4 * i:8 + 4 * i], "big") for i in range(d[3])]
  return np.frombuffer(d, np.uint8, offset=4 + 4 * d[3]).reshape(dims)


def fid_structure():
  """pytorch-fid's fid_inception_v3() network, without its weight download."""
  net = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
  net.Mixed_5b = pf.FIDInceptionA(192, pool_features=32)
  net.Mixed_5c = pf.FIDInceptionA(256, pool_features=64)
  net.Mixed_5d = pf.FIDInceptionA(288, pool_features=64)
  net.Mixed_6b = pf.FIDInceptionC(768, channels_7x7=128)
  net.Mixed_6c = pf.FIDInceptionC(768, channels_7x7=160)
  net.Mixed_6d = pf.FIDInceptionC(768, channels_7x7=160)
  net.Mixed_6e = pf.FIDInceptionC(768, channels_7x7=192)
  net.Mixed_7b = pf.FIDInceptionE_1(1280)
  net.Mixed_7c = pf.FIDInceptionE_2(2048)
  return net


def random_state_dict(seed: int):
  """He-normal convolutions, non-trivial BatchNorm statistics, a random fc."""
  g = torch.Generator().manual_seed(seed)
  sd = fid_structure().state_dict()
  for k, v in sd.items():
    if k.endswith("num_batches_tracked"):
      continue
    if k.endswith("conv.weight"):
      fan_in = v[0].numel()
      v.copy_(torch.randn(v.shape, generator=g) * (2.0 / fan_in) ** 0.5)
    elif k.endswith("bn.weight") or k.endswith("running_var"):
      v.copy_(0.5 + torch.rand(v.shape, generator=g))
    elif k.endswith("bn.bias") or k.endswith("running_mean"):
      v.copy_(0.2 * torch.randn(v.shape, generator=g))
    elif k == "fc.weight":
      v.copy_(torch.randn(v.shape, generator=g) / v.shape[1] ** 0.5)
    elif k == "fc.bias":
      v.copy_(0.1 * torch.randn(v.shape, generator=g))
  return sd


def torch_side(weights: str, images: np.ndarray, batch: int = 50):
  """pytorch-fid's pool features (its InceptionV3 wrapper, resize and scaling included)
  and the logits of its fc."""
  sd = torch.load(weights, map_location="cpu", weights_only=True)
  pf.load_state_dict_from_url = lambda *a, **k: sd
  model = pf.InceptionV3([pf.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
  fc = pf.fid_inception_v3().fc.eval()
  feats, logits = [], []
  with torch.no_grad():
    for s in range(0, len(images), batch):
      x = torch.from_numpy(images[s:s + batch]).permute(0, 3, 1, 2).float() / 255.0
      if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
      f = model(x)[0].flatten(1)
      feats.append(f.double().numpy())
      logits.append(fc(f).double().numpy())
  return np.concatenate(feats), np.concatenate(logits)


def rel(a, b):
  return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--fake", required=True, help="samples.npz of launch.py --mode sample")
  ap.add_argument("--real", default=EMBEDDED, help="IDX images (default: embedded data)")
  ap.add_argument("--weights", default="", help="a weights file (default: random, both "
                  "torch.save formats)")
  ap.add_argument("--num", type=int, default=500)
  ap.add_argument("--jaxgan-python", default=os.path.join(ROOT, ".venv", "bin", "python"))
  args = ap.parse_args()
  real = read_idx(args.real)[:args.num, ..., None]
  fake = np.load(args.fake)["images"][:args.num]
  tmp = tempfile.mkdtemp(prefix="inception_parity_")
  np.save(f"{tmp}/real.npy", real)
  np.save(f"{tmp}/fake.npy", fake)
  files = [args.weights] if args.weights else []
  if not args.weights:
    sd = random_state_dict(0)
    files = [f"{tmp}/pt_inception_random_zip.pth", f"{tmp}/pt_inception_random_legacy.pth"]
    torch.save(sd, files[0])
    torch.save(sd, files[1], _use_new_zipfile_serialization=False)
  print(f"real {real.shape} from {args.real}; generated {fake.shape} from {args.fake}")
  ref_r, ref_rl = torch_side(files[0], real)
  ref_f, ref_fl = torch_side(files[0], fake)
  st = lambda f: (f.mean(0), np.cov(f, rowvar=False))
  fid_torch = fid_score.calculate_frechet_distance(*st(ref_r), *st(ref_f))
  results = []
  for w in files:
    out = f"{tmp}/jaxgan_{os.path.basename(w)}.npz"
    env = dict(os.environ, PYTHONPATH=ROOT)
    info = subprocess.run([args.jaxgan_python, "-c", JAXGAN_SIDE, w, f"{tmp}/cache",
                           f"{tmp}/real.npy", f"{tmp}/fake.npy", out], env=env, check=True,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]
    j = np.load(out)
    row = {"weights": os.path.basename(w), "format": json.loads(info)["weights_format"],
           "feat_real": rel(j["feat_real"], ref_r), "feat_fake": rel(j["feat_fake"], ref_f),
           "logit_real": rel(j["logit_real"], ref_rl),
           "logit_fake": rel(j["logit_fake"], ref_fl),
           "fid_pytorch_fid": float(fid_torch), "fid_jaxgan": float(j["fid"])}
    results.append(row)
    print(json.dumps(row))
  worst = max(max(r[k] for k in ("feat_real", "feat_fake", "logit_real", "logit_fake"))
              for r in results)
  print(f"max relative difference {worst:.2e} ({'within' if worst <= 1e-4 else 'ABOVE'} "
        "1e-4)")
  return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
  sys.exit(main())
