"""The FID Inception: weights files read safely in both published formats, the network's
structure and pooling, the protocol's resize filters, and the extractor."""
import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from PIL import Image

import torch_format
from jaxgan.base.errors import UserError
from jaxgan.eval import inception, inception_extractor as ie, inception_weights as iw
from jaxgan.base import weights_file


def test_torch_files_of_both_formats_read_back_exactly(tmp_path):
  base = np.arange(12, dtype=np.float32).reshape(3, 4)
  storage = torch_format.Storage("shared", base)
  state = {"w": np.random.RandomState(0).randn(2, 3, 5).astype(np.float32),
           "n": np.asarray(7, np.int64), "h": np.arange(4, dtype=np.float16),
           # a transposed view and an offset row of one storage, as torch saves them
           "t": torch_format.Tensor(storage, 0, (4, 3), (1, 4)),
           "row": torch_format.Tensor(storage, 8, (4,), (1,))}
  for legacy in (False, True):
    obj, storages = torch_format.tensors(state)
    path = str(tmp_path / f"f{legacy}.pth")
    (torch_format.save_legacy if legacy else torch_format.save_zip)(
        obj, storages + [storage], path)
    got = weights_file.read_torch(path)
    assert sorted(got) == sorted(state)
    np.testing.assert_array_equal(got["w"], state["w"])
    assert got["n"] == 7 and got["n"].dtype == np.int64
    assert got["h"].dtype == np.float16 and got["h"].tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(got["t"], base.T)
    np.testing.assert_array_equal(got["row"], base[2])


def test_a_file_that_would_run_a_command_is_refused(tmp_path):
  marker = tmp_path / "pwned"
  payload = torch_format.malicious_pickle(f"touch {marker}")
  bad = tmp_path / "inception_v3_weights_fid.pickle"
  bad.write_bytes(payload)
  with pytest.raises(weights_file.UnsafeFileError, match=r"refused to unpickle os\.system"):
    weights_file.read_pickle(str(bad))
  import zipfile  # the same payload as the data.pkl of a torch zip file
  with zipfile.ZipFile(tmp_path / "bad.pth", "w") as z:
    z.writestr("archive/data.pkl", payload)
  with pytest.raises(weights_file.UnsafeFileError, match=str(tmp_path / "bad.pth")):
    weights_file.read_torch(str(tmp_path / "bad.pth"))
  assert not marker.exists()
  pickle.loads(payload)  # the control: plain pickle does run it
  assert marker.exists()


def test_parameter_count_is_pytorch_fids():
  # torchvision's inception_v3 has 27,161,264 parameters; without AuxLogits (3,326,696)
  # and with the 1008-class fc (+8 x 2049) that is pytorch-fid's FID network.
  model = inception.abstract_model()
  params = sum(int(np.prod(v.get_value().shape)) for _, v in inception.variables(model)
               if isinstance(v, nnx.Param))
  assert params == 27_161_264 - 3_326_696 + 8 * 2049 == 23_850_960
  convs = [p for p, _ in inception.variables(model) if p.endswith("conv/kernel")]
  assert len(convs) == 94 and all(p.replace("/conv/kernel", "/bn/var") in
                                  dict(inception.variables(model)) for p in convs)


def _nested(flat):
  out = {}
  for k, v in flat.items():
    d = out
    *parents, leaf = k.split("/")
    for p in parents:
      d = d.setdefault(p, {})
    d[leaf] = v
  return out


def test_pth_and_pickle_convert_to_the_same_network_and_cache(tmp_path):
  sd = torch_format.random_inception_state()
  torch_format.save(sd, str(tmp_path / "w.pth"))
  g, state, info = iw.load(str(tmp_path / "w.pth"), str(tmp_path / "cache"), expected="any")
  assert info["weights_format"] == "torch" and info["weights_check"] == "other weights"
  assert os.path.exists(tmp_path / "cache" / "inception" / f"{info['weights_sha256']}.npz")
  model = nnx.merge(g, state)
  got = dict(inception.variables(model))
  k = "Mixed_6b/branch7x7_2/conv/kernel"   # a (1, 7) kernel: OIHW -> HWIO
  np.testing.assert_array_equal(got[k].get_value(),
                                sd["Mixed_6b.branch7x7_2.conv.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(got["fc/kernel"].get_value(), sd["fc.weight"].T)
  np.testing.assert_array_equal(got["Mixed_7c/branch_pool/bn/var"].get_value(),
                                sd["Mixed_7c.branch_pool.bn.running_var"])
  # the JAX ports' pickle of the same weights (Flax layout, nested dicts)
  flat = {p: np.asarray(v.get_value()) for p, v in got.items()}
  with open(tmp_path / "w.pickle", "wb") as f:
    pickle.dump(_nested(flat), f)
  g2, state2, info2 = iw.load(str(tmp_path / "w.pickle"), str(tmp_path / "cache"))
  assert info2["weights_format"] == "pickle" and info2["weights_check"] == "no published hash"
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(state2)):
    np.testing.assert_array_equal(a, b)
  # a second load reads the cache (the source may even be gone)
  os.replace(tmp_path / "w.pth", tmp_path / "w2.pth")
  g3, state3, _ = iw.load(str(tmp_path / "w2.pth"), str(tmp_path / "cache"), expected="any")
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(state3)):
    np.testing.assert_array_equal(a, b)


def test_missing_wrong_and_foreign_files_get_one_line_errors(tmp_path):
  with pytest.raises(UserError) as e:
    iw.load(str(tmp_path / "nope.pth"), str(tmp_path))
  msg = str(e.value)
  for part in ("nope.pth", "6726825d", iw.PUBLISHED_URL, "--config.eval.inception_weights"):
    assert part in msg
  torch_format.save({"fc.weight": np.zeros((2, 2), "f4")}, str(tmp_path / "x.pth"))
  with pytest.raises(UserError, match=r"does not start with '6726825d'.*inception_sha256=any"):
    iw.load(str(tmp_path / "x.pth"), str(tmp_path))
  with pytest.raises(UserError, match=r"not the FID InceptionV3 \(.*weights missing"):
    iw.load(str(tmp_path / "x.pth"), str(tmp_path), expected="any")
  digest = iw.sha256(str(tmp_path / "x.pth"))
  assert iw.check_hash("x", digest, digest[:10], "torch") == "pinned"
  (tmp_path / "junk.pth").write_bytes(b"PK\x03\x04 not really a zip")
  with pytest.raises(UserError, match="junk.pth: cannot be read as a weights file"):
    iw.load(str(tmp_path / "junk.pth"), str(tmp_path), expected="any")


def test_pools_against_loops():
  x = np.random.RandomState(1).randn(1, 4, 5, 2).astype(np.float32)
  avg = np.asarray(inception.avg_pool_valid_mean(jnp.asarray(x)))
  mx = np.asarray(inception.max_pool(jnp.asarray(x), 1, pad=1))
  for i in range(4):
    for j in range(5):
      win = x[0, max(i - 1, 0):i + 2, max(j - 1, 0):j + 2]
      np.testing.assert_allclose(avg[0, i, j], win.mean(axis=(0, 1)), rtol=1e-6)
      np.testing.assert_array_equal(mx[0, i, j], win.max(axis=(0, 1)))
  assert inception.max_pool(jnp.zeros((1, 35, 35, 1)), 2).shape == (1, 17, 17, 1)


def test_resize_filters_match_their_references():
  rs = np.random.RandomState(2)
  img = rs.rand(28, 28).astype(np.float32) * 255
  m = ie.bilinear_matrix(28, 299)
  np.testing.assert_allclose(m.sum(1), 1.0, atol=1e-12)
  # upsampling: jax.image.resize's linear filter without antialiasing is the same map
  ref = jax.image.resize(jnp.asarray(img, jnp.float64) if jax.config.x64_enabled else
                         jnp.asarray(img), (299, 299), "linear", antialias=False)
  np.testing.assert_allclose(m @ img @ m.T, np.asarray(ref), rtol=1e-5, atol=1e-3)
  # PyTorch's formula at two points: out[20] reads source 20.5 * 28/299 - 0.5 = 1.42,
  # out[1] a negative source, clamped to in[0]
  src = 20.5 * 28 / 299 - 0.5
  np.testing.assert_allclose(m[20, 1:3], [2 - src, src - 1], rtol=1e-12)
  assert m[20].sum() == pytest.approx(1.0) and m[1, 0] == 1.0
  mb = ie.bicubic_matrix(40, 299)
  pil = np.asarray(Image.fromarray(img[:, :].repeat(2, 0)[:40, :], mode="F")
                   .resize((299, 299), Image.BICUBIC))
  ours = mb @ img.repeat(2, 0)[:40, :] @ ie.bicubic_matrix(28, 299).T
  np.testing.assert_allclose(ours, pil, rtol=1e-4, atol=1e-2)


def test_extractor_features_logits_and_batching(tmp_path, monkeypatch):
  monkeypatch.setattr(inception, "SIZE", 75)   # the smallest input, to save CPU time
  sd = torch_format.random_inception_state(3)
  torch_format.save(sd, str(tmp_path / "w.pth"), legacy=True)
  g, s, info = iw.load(str(tmp_path / "w.pth"), str(tmp_path), expected="any")
  ex = ie.InceptionExtractor(g, s, info, resize="bilinear", batch_size=2)
  imgs = np.random.RandomState(4).randint(0, 256, (3, 28, 28, 1)).astype(np.uint8)
  f, l = ex.features_and_logits(imgs)
  assert f.shape == (3, inception.POOL_DIM) and l.shape == (3, inception.NUM_LOGITS)
  assert np.all(np.isfinite(f)) and np.all(f >= 0) and f.std() > 0   # post-ReLU means
  f1, l1 = ex.features_and_logits(imgs[2:])   # a batch of one, padded, gives the same
  np.testing.assert_allclose(f1[0], f[2], rtol=1e-4, atol=1e-5)   # another batch shape:
  np.testing.assert_allclose(l1[0], l[2], rtol=1e-4, atol=1e-4)   # float32 rounding only
  # logits are the fc of the features
  fc_w = sd["fc.weight"].astype(np.float64)
  np.testing.assert_allclose(l, f @ fc_w.T + sd["fc.bias"], rtol=1e-4, atol=1e-3)
  # grayscale is the same image as its RGB repetition
  f3, _ = ex.features_and_logits(np.repeat(imgs[:1], 3, -1))
  np.testing.assert_allclose(f3[0], f[0], rtol=1e-4, atol=1e-5)
  assert ex.name.startswith("inception-" + info["weights_sha256"][:12])
  assert ex.info["input_size"] == 75 and ex.info["resize"] == "bilinear"
