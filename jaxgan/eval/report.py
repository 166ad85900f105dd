"""A static HTML page for a run (DIR/report.html): config, curves, sample grids over time,
the evaluation table, memorisation pairs and latent walks. It opens from disk, needs no
server, and links only to files in the workdir."""
from __future__ import annotations

import glob
import html
import json
import os

from jaxgan.base import sizes
from jaxgan.eval.visualize import plot_metrics, read_jsonl

_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{margin-bottom:0}.sub{color:#666;margin-top:.2em}img{max-width:100%;border:1px solid #ddd}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f4f4f4}pre{background:#f7f7f7;padding:1em;overflow:auto;max-height:30em}
.grids{display:flex;flex-wrap:wrap;gap:12px}.grids figure{margin:0;width:250px}
figcaption{font-size:.85em;color:#555;text-align:center}"""


def _img(rel: str, caption: str = "") -> str:
  cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
  return f'<figure><img src="{html.escape(rel)}" alt="{html.escape(caption or rel)}">{cap}</figure>'


def _curves(wd: str, rows: list) -> list:
  """The training, evaluation and overfitting curves of metrics.jsonl, as page parts."""
  metrics = os.path.join(wd, "metrics.jsonl")
  parts = ["<h2>Training curves</h2>"]
  curves = plot_metrics(metrics, os.path.join(wd, "losses.png"))
  if curves:
    parts.append(_img("losses.png", "losses, mean D outputs, accuracies"))
  # Whatever metrics the run computed (config.eval.metrics), without bookkeeping values.
  eval_keys = sorted({k for r in rows for k, v in r.items() if k.startswith("eval/")
                      and isinstance(v, (int, float)) and k.split("/")[1] not in (
                          "num_samples", "classifier_test_accuracy", "kid_std")})
  if eval_keys:
    plot_metrics(metrics, os.path.join(wd, "eval_curves.png"), groups=[[k] for k in eval_keys])
    parts.append(_img("eval_curves.png", "evaluation during training"))
  # Issue 18's signals: D on training vs held-out reals (the gap ADA's paper plots), the
  # heuristic r_t = E[sign(D(real))] and ADA's probability p, each when the run logs it.
  logged = {k for r in rows for k in r}
  over = [[k for k in group if k in logged] for group in
          (("d_real_train", "d_real_heldout"), ("d_real_sign",), ("augment_p",))]
  if any(over):
    plot_metrics(metrics, os.path.join(wd, "overfitting.png"), groups=over)
    parts.append(_img("overfitting.png", "overfitting: D on training vs held-out reals, "
                      "r_t, augmentation p"))
  if not curves:
    parts.append("<p>No metrics logged yet.</p>")
  return parts


def _evaluation(wd: str) -> list:
  """eval.json (from --mode eval) as a table, with the class histogram, as page parts."""
  parts = []
  ev_path = os.path.join(wd, "eval.json")
  if os.path.exists(ev_path):
    with open(ev_path) as f:
      ev = json.load(f)
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{v:.5g}</td></tr>"
                    if isinstance(v, float) else
                    f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in ev.items() if not isinstance(v, (list, dict)))
    parts.append(f"<h2>Evaluation</h2><table>{cells}</table>")
    if "class_histogram" in ev:
      parts.append(f"<p>Class histogram of the samples: {ev['class_histogram']}</p>")
  return parts


def _posthoc_ema(wd: str) -> list:
  """posthoc_ema.json (--mode posthoc_ema, jaxgan/run/posthoc.py): the metric against the
  post-hoc EMA width, the best width and the checkpoint's own weights, as page parts."""
  path = os.path.join(wd, "posthoc_ema.json")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    ph = json.load(f)
  name, best, ref = ph["metric"], ph["best"], ph["reference"]
  cells = "".join(f"<tr><td>{r['sigma_rel']:.3f}</td><td>{r[name]:.5g}</td></tr>"
                  for r in ph["rows"])
  return [f"<h2>Post-hoc EMA</h2><p>Step {ph['step']}: best sigma_rel "
          f"<b>{best['sigma_rel']:.3f}</b> ({html.escape(name)} {best[name]:.5g}); the "
          f"checkpoint's {html.escape(ref['weights'])}: {ref[name]:.5g}.</p>",
          _img("posthoc_ema.png", f"{name} against sigma_rel"),
          f"<table><tr><th>sigma_rel</th><th>{html.escape(name)}</th></tr>{cells}</table>"]


def _latent(cfg: dict) -> list:
  """A latent run says so: what G and D see, and what decodes it."""
  folder = cfg.get("data", {}).get("folder", "")
  path = os.path.join(os.path.expanduser(folder), "manifest.json") if folder else ""
  if not path or not os.path.exists(path):
    return []
  with open(path) as f:
    m = json.load(f)
  if m.get("kind") != "latent":
    return []
  enc = m["encoder"]
  decoder = cfg.get("model", {}).get("decoder") or enc["directory"]
  shape = "x".join(str(d) for d in m["latent_shape"])
  norm = cfg.get("data", {}).get("latent_norm", "channel")
  return [f"<h2>Latent run</h2><p>G and D work on {shape} latents of {m['count']} images "
          f"({sizes.times(m['image_size'])}x{m['channels']}) encoded by "
          f"{html.escape(enc['directory'])} (weights sha256 {enc['weights_sha256'][:12]}), "
          f"normalised with data.latent_norm={html.escape(norm)}; every grid, sample and "
          f"metric here is of images decoded by {html.escape(decoder)}.</p>"]


def build(workdir: str) -> str:
  """Writes workdir/report.html from whatever the run has produced; returns its path."""
  wd = os.path.abspath(workdir)
  parts = []
  cfg = {}
  if os.path.exists(os.path.join(wd, "config.json")):
    with open(os.path.join(wd, "config.json")) as f:
      cfg = json.load(f)
  rows = read_jsonl(os.path.join(wd, "metrics.jsonl")) if os.path.exists(
      os.path.join(wd, "metrics.jsonl")) else []
  last_step = max((r.get("step", 0) for r in rows), default=0)
  parts.append(f"<h1>jaxgan run: {html.escape(os.path.basename(wd))}</h1>"
               f"<p class='sub'>{html.escape(wd)} &middot; last logged step {last_step} "
               f"&middot; loss {html.escape(str(cfg.get('loss', '?')))} &middot; penalty "
               f"{html.escape(str(cfg.get('penalty', '?')))} &middot; regularizers "
               f"{html.escape(str(cfg.get('regularizers', [])))} &middot; architecture "
               f"{html.escape(str(cfg.get('model', {}).get('arch', '?')))}</p>")

  parts += _latent(cfg)
  parts += _curves(wd, rows)

  grids = sorted(glob.glob(os.path.join(wd, "samples", "step_*.png")))
  if grids:
    pick = grids if len(grids) <= 12 else [grids[round(i * (len(grids) - 1) / 11)]
                                           for i in range(12)]
    parts.append("<h2>Fixed-noise samples over training</h2><div class='grids'>")
    parts += [_img(os.path.relpath(g, wd), "step " + str(int(os.path.basename(g)[5:12])))
              for g in pick]
    parts.append("</div>")

  parts += _evaluation(wd)
  parts += _posthoc_ema(wd)
  if os.path.exists(os.path.join(wd, "memorization.png")):
    parts.append("<h2>Memorisation check</h2><p>Each generated sample beside its nearest "
                 "training image (mean absolute difference).</p>"
                 + _img("memorization.png", "sample | nearest training image"))
  latent = [(n, c) for n, c in (("interp_linear.png", "linear interpolation"),
                                ("interp_spherical.png", "spherical interpolation"),
                                ("interp_linear.gif", "linear walk"),
                                ("class_grid.png", "z fixed along rows, label across columns"))
            if os.path.exists(os.path.join(wd, n))]
  if latent:
    parts.append("<h2>Latent space</h2><div class='grids'>")
    parts += [_img(n, c) for n, c in latent]
    parts.append("</div>")
  if os.path.exists(os.path.join(wd, "samples.png")):
    parts.append("<h2>Exported samples</h2>" + _img("samples.png", "samples.png"))
  parts.append("<h2>Config</h2><pre>" + html.escape(json.dumps(cfg, indent=2, sort_keys=True))
               + "</pre>")
  page = ("<!doctype html><html><head><meta charset='utf-8'><title>jaxgan report</title>"
          f"<style>{_CSS}</style></head><body>" + "\n".join(parts) + "</body></html>")
  path = os.path.join(wd, "report.html")
  with open(path + ".tmp", "w") as f:
    f.write(page)
  os.replace(path + ".tmp", path)
  return path
