"""Evaluation in a run: the classifier extractor, cached statistics, eval during training,
the best checkpoint, --mode eval and the memorisation check."""
import json
import os

import jax
import numpy as np
import pytest
from flax import nnx

from jaxgan.run import train
from jaxgan.data import sources
from jaxgan.eval import classifier as clf
from jaxgan.eval import evaluate as E
from tests.conftest import tiny_config


def eval_config(tmp_path, **kw):
  return tiny_config(**{"eval.every": 3, "eval.num_samples": 64, "eval.classifier_steps": 30,
                        "eval.cache_dir": str(tmp_path / "cache"),
                        "eval.max_real_features": 200, "eval.memorization_samples": 4, **kw})


def test_classifier_is_trained_once_then_cached(tmp_path):
  data = sources.load_embedded(28, 1, max_examples=300)
  train_d, test_d = clf.split_for_classifier(data)
  assert len(train_d.images) == 240 and len(test_d.images) == 60
  said = []
  _, p1, info = clf.get_or_train(train_d, test_d, str(tmp_path), steps=20, log=said.append)
  assert len(said) == 2 and 0.0 <= info["test_accuracy"] <= 1.0
  assert info["test_examples"] == 60
  said.clear()
  _, p2, info2 = clf.get_or_train(train_d, test_d, str(tmp_path), steps=20, log=said.append)
  assert said == [] and info2 == info
  a, b = jax.tree.leaves(p1), jax.tree.leaves(p2)
  assert len(a) == len(b) == 10  # 5 layers x (kernel, bias)
  assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_classifier_learns_the_embedded_classes(tmp_path):
  data = sources.load_embedded(28, 1, max_examples=2000)
  train_d, test_d = clf.split_for_classifier(data)
  _, _, info = clf.get_or_train(train_d, test_d, str(tmp_path), steps=300, log=lambda m: None)
  assert info["test_accuracy"] > 0.6  # 10 classes: chance is 0.1


def test_unlabelled_data_cannot_train_a_classifier():
  d = sources.ImageData(np.zeros((10, 8, 8, 1), np.uint8), None, 0, "x")
  with pytest.raises(ValueError, match="no class labels"):
    clf.train_classifier(d, d, steps=1)


def test_any_flax_module_plugs_in_as_an_extractor():
  class Pix(nnx.Module):
    def features(self, x):
      return x.reshape(x.shape[0], -1)
    def __call__(self, x):
      return x.reshape(x.shape[0], -1)[:, :3]
  graph, params = nnx.split(Pix())
  ex = E.from_flax("pixels", graph, params, num_classes=3)
  imgs = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4, 1)
  f = ex.features(imgs)
  np.testing.assert_allclose(f, imgs.reshape(2, -1) / 127.5 - 1.0, rtol=1e-6)
  assert ex.predict(imgs).tolist() == [2, 2]


def test_collapsed_generator_is_flagged(tmp_path):
  c = eval_config(tmp_path, **{"data.max_examples": 600, "eval.classifier_steps": 300})
  data = sources.load_embedded(28, 1, max_examples=600)
  ev = E.Evaluator(c, data, log=lambda m: None)
  collapsed = np.repeat(data.images[:1], 500, axis=0)
  bad = ev(collapsed)
  good = ev(data.images[:500])
  assert bad["classes_covered"] <= 2 and good["classes_covered"] >= 8
  assert bad["fd"] > 10 * good["fd"] and bad["class_kl"] > good["class_kl"] + 1


def test_eval_during_training_keeps_the_best_checkpoint(tmp_path):
  wd = str(tmp_path / "run")
  c = eval_config(tmp_path, **{"train.steps": 9, "checkpoint.keep": 1,
                               "train.checkpoint_every": 100})
  train.train_and_evaluate(c, wd)
  rows = [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]
  evals = [r for r in rows if "eval/fd" in r]
  assert [r["step"] for r in evals] == [3, 6, 9]
  for r in evals:
    assert r["eval/fd"] >= 0 and "eval/kid_mean" in r and len(r["class_histogram"]) == 10
  best = min(evals, key=lambda r: r["eval/fd"])["step"]
  kept = sorted(int(d) for d in os.listdir(os.path.join(wd, "checkpoints")))
  assert kept == sorted({best, 9})  # last 1 plus the best by FD
  _, _, state = train.restore_for_sampling(wd, "best")
  assert int(state.step) == best


def test_mode_eval_writes_every_metric_and_the_memorisation_png(tmp_path):
  wd = str(tmp_path / "run")
  train.train_and_evaluate(eval_config(tmp_path), wd)
  result = train.evaluate_checkpoint(wd, "latest", num_samples=100)
  stored = json.load(open(os.path.join(wd, "eval.json")))
  assert stored["step"] == 6 and stored == json.loads(json.dumps(result))
  for k in ("fd", "kid_mean", "kid_std", "precision", "recall", "density", "coverage",
            "classes_covered", "class_kl", "classifier_test_accuracy", "nn_l1_generated_mean",
            "nn_l1_real_mean", "exact_copies"):
    assert k in stored, k
  assert len(stored["nn_l1_generated"]) == 4
  assert os.path.exists(os.path.join(wd, "memorization.png"))


def test_memorisation_check_finds_a_copy(tmp_path):
  train_imgs = np.random.RandomState(0).randint(0, 256, (30, 8, 8, 1)).astype(np.uint8)
  fake = np.concatenate([train_imgs[5:6], np.full((3, 8, 8, 1), 128, np.uint8)])
  out = E.memorization(fake, train_imgs, None, str(tmp_path / "m.png"), k=4)
  assert out["exact_copies"] == 1 and out["nn_train_index"][0] == 5
  assert out["nn_l1_generated"][0] == 0.0 and out["nn_l1_real_mean"] > 0
  assert out["nn_l1_baseline"].startswith("training images")
  assert os.path.exists(tmp_path / "m.png")


def test_real_statistics_are_cached(tmp_path):
  data = sources.load_embedded(28, 1, max_examples=200)
  calls = []
  ex = E.Extractor("pix", lambda im: (calls.append(len(im)),
                                      im.reshape(len(im), -1)[:, :5].astype(np.float64))[1])
  a = E.real_stats(data, ex, str(tmp_path), 100)
  n = len(calls)
  b = E.real_stats(data, ex, str(tmp_path), 100)
  assert len(calls) == n and np.array_equal(a.mean, b.mean) and a.features.shape == (100, 5)
  np.testing.assert_allclose(a.mean, data.images.reshape(200, -1)[:, :5].mean(0))


def test_label_accuracy_of_a_conditional_generator(tmp_path):
  c = eval_config(tmp_path, **{"data.max_examples": 600, "eval.classifier_steps": 300})
  data = sources.load_embedded(28, 1, max_examples=600)
  ev = E.Evaluator(c, data, log=lambda m: None)
  right = ev(data.images[:300], labels=data.labels[:300])
  wrong = ev(data.images[:300], labels=(data.labels[:300] + 1) % 10)
  assert right["label_accuracy"] > 0.6 and wrong["label_accuracy"] < 0.2
  assert "label_accuracy" not in ev(data.images[:300])


def test_population_members_are_evaluated_and_keep_their_best_checkpoint(tmp_path):
  c = eval_config(tmp_path, **{"train.steps": 6, "checkpoint.keep": 1,
                               "train.checkpoint_every": 100})
  trials = [{"seed": 0}, {"seed": 1, "optim.d.lr": 1e-3}]
  train.train_and_evaluate(c, str(tmp_path / "pop"), trials=trials)
  fds = []
  for name in ("seed=0", "seed=1,optim.d.lr=0.001"):
    wd = tmp_path / "pop" / name
    rows = [json.loads(l) for l in open(wd / "metrics.jsonl")]
    evals = [r for r in rows if "eval/fd" in r]
    assert [r["step"] for r in evals] == [3, 6] and [r["step"] for r in rows
                                                      if "d_loss" in r] == [2, 4, 6]
    fds.append([r["eval/fd"] for r in evals])
    best = min(evals, key=lambda r: r["eval/fd"])["step"]
    assert sorted(int(d) for d in os.listdir(wd / "checkpoints")) == sorted({best, 6})
    _, _, state = train.restore_for_sampling(str(wd), "best")
    assert int(state.step) == best
  assert fds[0] != fds[1]  # each member scored on its own samples


def test_eval_image_size_scores_a_32px_run_with_the_28px_runs_classifier(tmp_path):
  at28 = eval_config(tmp_path, **{"data.max_examples": 600})
  at32 = eval_config(tmp_path, **{"data.max_examples": 600, "data.image_size": 32,
                                  "eval.image_size": 28})
  ev28 = E.Evaluator(at28, sources.load(at28.data), log=lambda m: None)
  ev32 = E.Evaluator(at32, sources.load(at32.data), log=lambda m: None)
  # the reference is loaded at 28 from the source: the same classifier and real statistics
  assert ev32.extractor.name == ev28.extractor.name
  np.testing.assert_array_equal(ev32.real.mean, ev28.real.mean)
  fake32 = np.random.default_rng(0).integers(0, 256, (200, 32, 32, 1), dtype=np.uint8)
  down = jax.image.resize(fake32.astype(np.float32), (200, 28, 28, 1), "linear",
                          antialias=True)
  fake28 = np.clip(np.round(np.asarray(down)), 0, 255).astype(np.uint8)
  a, b = ev32(fake32, metrics="fd,classes"), ev28(fake28, metrics="fd,classes")
  assert a["fd"] == pytest.approx(b["fd"], rel=1e-9) and a["fd"] > 0
  assert a["classes_covered"] == b["classes_covered"]
  # the generated images are resized, a 28-px image at the eval size passes unchanged
  assert ev32(fake28, metrics="fd")["fd"] == pytest.approx(b["fd"], rel=1e-9)
