"""Numerical fixture for jaxgan's GAT port, made with the authors' own PyTorch code.

Reference: github.com/hse1032/GAT (Generative Adversarial Transformers). The script extracts
`models/` from a local bare-git mirror of that repository (the `fetch` tool puts it under
/work/.mirror/hse1032+GAT/repo) into a temporary directory and imports the reference classes
`models.generator.GAT` and `models.discriminator.GATD` from there. Nothing of jaxgan is
imported, so the fixture is independent of the port.

It writes two files (paths relative to the repository root):

* tests/data/gat/gat_reference_counts.json -- `sum(p.numel() for p in model.parameters())`
  of every reference preset (G and D, GAT-{S,B,L,XL}/{2,4,8}) at the ImageNet-256 latent
  setting exactly as train.py builds them (input_size 32, in_channels 4, num_classes 1000,
  z_dims [768], fused_attn, qk_norm), built on the meta device, plus sub-counts (frozen
  sin-cos pos table, x_embedder, D's REPA projector, ...). The commit read is recorded.
* tests/data/gat/gat_parity.npz -- a small G and a small D built with the reference classes,
  every parameter re-randomised (see `randomise`), their state dicts (`g/<name>`, `d/<name>`,
  torch layout, buffers included) and their outputs on fixed inputs, in float32 on CPU
  (eval mode, no autocast). float64 outputs of the same weights (`*_f64`) are added as a
  tighter ground truth. `meta` is a JSON string with the constructor arguments and versions.

Randomised values (weights and inputs) are rounded to bfloat16-representable float32 values:
they are still exact float32 numbers that the reference consumed, and the npz compresses
about 2x better (the fixture has to stay below 1.5 MB).

  nice -n 10 /work/venv-torch/bin/python tools/independent/gat_parity.py \
      [--mirror /work/.mirror/hse1032+GAT/repo]

Needs torch, timm, einops, numpy in a venv of their own (python3 -m venv /work/venv-torch &&
/work/venv-torch/bin/pip install torch timm einops numpy); not part of requirements.txt.
Made with torch 2.14.1 (CPU run), timm 1.0.31, einops 0.8.2, numpy 2.4.6, reference commit
21a2dd09fcee5b8b8849302dc2ac4dd66236d268.
"""
import argparse
import atexit
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

# The reference wraps the RoPE forward in @torch.compile; run it eagerly (no inductor/C++).
os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch._dynamo  # noqa: E402

torch._dynamo.config.disable = True

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "data", "gat")
DEFAULT_MIRROR = "/work/.mirror/hse1032+GAT/repo"

# Totals computed by hand in docs/reference_notes/gat.md (section 4.4), checked here.
NOTES_TOTALS = {
    "S/2": (29_361_344, 39_212_928), "S/4": (29_379_968, 39_212_928),
    "S/8": (29_730_944, 39_489_408), "B/2": (116_754_752, 104_676_864),
    "B/4": (116_791_808, 104_676_864), "B/8": (117_492_992, 105_229_824),
    "L/2": (408_748_576, 323_035_872), "L/4": (408_797_920, 323_035_872),
    "L/8": (409_732_576, 323_773_152), "XL/2": (602_251_136, 467_678_784),
    "XL/4": (602_306_624, 467_678_784), "XL/8": (603_358_016, 468_508_224),
}


def extract_reference(mirror):
    commit = subprocess.check_output(["git", "--git-dir", mirror, "rev-parse", "HEAD"],
                                     text=True).strip()
    tmp = tempfile.mkdtemp(prefix="gat_ref_")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    archive = subprocess.Popen(["git", "--git-dir", mirror, "archive", commit, "models"],
                               stdout=subprocess.PIPE)
    subprocess.check_call(["tar", "-x", "-C", tmp], stdin=archive.stdout)
    if archive.wait() != 0:
        raise RuntimeError("git archive failed")
    sys.path.insert(0, tmp)
    return commit, tmp


def numel(params):
    return int(sum(p.numel() for p in params))


def preset_counts(gen_mod, disc_mod):
    kw = dict(input_size=32, in_channels=4, num_classes=1000, z_dims=[768],
              fused_attn=True, qk_norm=True)
    print("preset call: GAT_models[name](%s) / GATD_models[name](same)" %
          ", ".join(f"{k}={v!r}" for k, v in kw.items()))
    out = {}
    for name in ["S/2", "S/4", "S/8", "B/2", "B/4", "B/8", "L/2", "L/4", "L/8",
                 "XL/2", "XL/4", "XL/8"]:
        with torch.device("meta"):
            g = gen_mod.GAT_models["GAT-" + name](**kw)
            d = disc_mod.GATD_models["GAT-" + name](**kw)
        row = {
            "g_total": numel(g.parameters()),
            "g_trainable": numel(p for p in g.parameters() if p.requires_grad),
            "g_pos_embed": g.pos_embed.numel(),
            "g_x_embedder": numel(g.x_embedder.parameters()),
            "g_blocks": numel(g.blocks.parameters()),
            "g_final_layers": numel(g.final_layers.parameters()),
            "g_mapping": numel(g.latent_embedder.parameters()),
            "g_class_embed": numel(g.y_embedder.parameters()),
            "d_total": numel(d.parameters()),
            "d_trainable": numel(p for p in d.parameters() if p.requires_grad),
            "d_pos_embed": d.pos_embed.numel(),
            "d_x_embedder": numel(d.x_embedder.parameters()),
            "d_repa_proj": numel(d.proj.parameters()),
            "d_blocks": numel(d.blocks.parameters()),
            "d_final_layer": numel(d.final_layer.parameters()),
            "d_class_embed_and_mapping": numel(d.y_embedder.parameters()),
            "d_cls_token": d.cls_token.numel(),
        }
        row["d_without_repa_proj"] = row["d_total"] - row["d_repa_proj"]
        exp = NOTES_TOTALS[name]
        row["matches_notes"] = (row["g_total"], row["d_total"]) == exp
        out[name] = row
        print(f"  {name:5s} G {row['g_total']:>12,d}  D {row['d_total']:>12,d}  "
              f"G pos {row['g_pos_embed']:>7,d}  G x_emb {row['g_x_embedder']:>6,d}  "
              f"D pos {row['d_pos_embed']:>7,d}  D x_emb {row['d_x_embedder']:>6,d}  "
              f"D REPA proj {row['d_repa_proj']:>9,d}  notes match: {row['matches_notes']}")
        del g, d
    return out


def bf16_exact(t):
    return t.to(torch.bfloat16).to(torch.float32)


EQUAL_LINEAR_LR = 0.01


def randomise(model, gen, equal_linear_names):
    """Overwrite every parameter (and w_avg) with random values; keep the sin-cos pos table
    and the RoPE tables as constructed. Scales keep activations O(1):
      RMSNorm gains 1 + 0.1 n; LayerScale 0.3 + 0.1 n; biases 0.05 n;
      Linear/conv weights n / sqrt(fan_in) (adaLN: 0.5 n / sqrt(fan_in));
      EqualLinear stored weights n / sqrt(fan_in) / lr_mult and biases 0.05 n / lr_mult
      (so the effective values match the plain layers); embeddings / cls token: n."""
    def n(shape):
        return torch.randn(shape, generator=gen)

    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "pos_embed":
                continue
            leaf = name.split(".")[-1]
            owner = name.rsplit(".", 1)[0] if "." in name else ""
            if owner in equal_linear_names:
                if leaf == "weight":
                    v = n(p.shape) / math.sqrt(p.shape[1]) / EQUAL_LINEAR_LR
                else:
                    v = 0.05 * n(p.shape) / EQUAL_LINEAR_LR
            elif leaf in ("ls_attn", "ls_mlp"):
                v = 0.3 + 0.1 * n(p.shape)
            elif name == "cls_token" or "embedding_table" in name:
                v = n(p.shape)
            elif leaf == "weight" and p.ndim == 1:  # RMSNorm gains (block, final, q/k norms)
                v = 1.0 + 0.1 * n(p.shape)
            elif leaf == "bias":
                v = 0.05 * n(p.shape)
            elif leaf == "weight":
                fan_in = int(np.prod(p.shape[1:]))
                s = 0.5 if "adaLN_modulation" in name else 1.0
                v = s * n(p.shape) / math.sqrt(fan_in)
            else:
                raise ValueError(f"unhandled parameter {name}")
            p.copy_(bf16_exact(v))
        if hasattr(model, "w_avg"):
            model.w_avg.copy_(bf16_exact(n(model.w_avg.shape)))


def equal_linear_names(model, cls):
    return {name for name, m in model.named_modules() if isinstance(m, cls)}


def check_tables(g, hd, grid, hidden):
    """Independent check of the fixed tables against the notes (sections 1.2, 1.3)."""
    f = 10000.0 ** (-4.0 * np.arange(hd // 4) / hd)
    i, j = np.divmod(np.arange(grid * grid), grid)
    ang = np.concatenate([np.repeat(i[:, None] * f, 2, axis=1),
                          np.repeat(j[:, None] * f, 2, axis=1)], axis=1)
    rope_err = max(np.abs(np.cos(ang) - g.feat_rope.freqs_cos.numpy()).max(),
                   np.abs(np.sin(ang) - g.feat_rope.freqs_sin.numpy()).max())
    w = 10000.0 ** (-np.arange(hidden // 4) / (hidden / 4))
    tab = np.concatenate([np.sin(j[:, None] * w), np.cos(j[:, None] * w),
                          np.sin(i[:, None] * w), np.cos(i[:, None] * w)], axis=1)
    pos_err = np.abs(tab - g.pos_embed[0].numpy()).max()
    print(f"notes check: RoPE table max err {rope_err:.2e}, sin-cos table max err {pos_err:.2e}")
    assert rope_err < 1e-5 and pos_err < 1e-6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mirror", default=DEFAULT_MIRROR)
    ap.add_argument("--out-dir", default=FIXTURES)
    args = ap.parse_args()

    commit, ref_dir = extract_reference(args.mirror)
    import timm
    from models import custom_layers
    from models import discriminator as disc_mod
    from models import generator as gen_mod

    versions = {"torch": torch.__version__, "timm": timm.__version__,
                "numpy": np.__version__}
    try:
        import einops
        versions["einops"] = einops.__version__
    except Exception:
        pass
    print("reference commit", commit, "extracted to", ref_dir)
    print("versions", versions)
    torch.set_num_threads(2)

    # ---- a. preset counts on the meta device -------------------------------------------
    counts = preset_counts(gen_mod, disc_mod)
    os.makedirs(args.out_dir, exist_ok=True)
    counts_doc = {"commit": commit, "source": "github.com/hse1032/GAT",
                  "setting": "input_size 32, in_channels 4, num_classes 1000, z_dims [768], "
                             "fused_attn True, qk_norm True (train.py L142-155)",
                  "versions": versions, **counts}
    with open(os.path.join(args.out_dir, "gat_reference_counts.json"), "w") as fh:
        json.dump(counts_doc, fh, indent=1)
        fh.write("\n")

    # ---- b. small models ----------------------------------------------------------------
    g_kwargs = dict(input_size=8, patch_size=2, in_channels=4, latent_size=64, hidden_size=64,
                    depth=4, num_heads=2, mlp_ratio=4.0, class_dropout_prob=0.0,
                    num_classes=10, z_dims=[32], projector_dim=2048,
                    fused_attn=True, qk_norm=True)
    d_kwargs = dict(input_size=8, patch_size=2, in_channels=4, hidden_size=64,
                    decoder_hidden_size=64, depth=4, num_heads=2, mlp_ratio=4.0,
                    class_dropout_prob=0.0, num_classes=10, use_cfg=False, z_dims=[32],
                    projector_dim=80, cmap_dim=48, fused_attn=True, qk_norm=True)
    print("small G: models.generator.GAT(%s)" %
          ", ".join(f"{k}={v!r}" for k, v in g_kwargs.items()))
    print("small D: models.discriminator.GATD(%s)" %
          ", ".join(f"{k}={v!r}" for k, v in d_kwargs.items()))
    torch.manual_seed(0)
    G = gen_mod.GAT(**g_kwargs)
    D = disc_mod.GATD(**d_kwargs)
    check_tables(G, hd=32, grid=4, hidden=64)
    assert torch.equal(G.pos_embed, D.pos_embed)
    gen = torch.Generator().manual_seed(1)
    randomise(G, gen, equal_linear_names(G, custom_layers.EqualLinear))
    randomise(D, gen, equal_linear_names(D, custom_layers.EqualLinear))
    G.eval()
    D.eval()

    B = 3
    g_in_z = bf16_exact(torch.randn(B, 64, generator=gen))
    g_in_y = torch.tensor([3, 7, 3], dtype=torch.long)
    g_in_x = torch.zeros(B, 4, 8, 8)
    d_in_x = bf16_exact(torch.randn(4, B, 4, 8, 8, generator=gen))
    d_in_y = torch.tensor([1, 9, 4], dtype=torch.long)

    def run(dtype):
        Gd = G.to(dtype)
        Dd = D.to(dtype)
        with torch.no_grad():
            z, x, dx = g_in_z.to(dtype), g_in_x.to(dtype), d_in_x.to(dtype)
            o = {}
            o["g_out_multiscale"] = Gd(x, g_in_y, z, truncation_psi=0.0, update_ema=False,
                                       multiscale=True)
            o["g_out"] = Gd(x, g_in_y, z, truncation_psi=0.0, update_ema=False)
            o["g_out_psi0p3"] = Gd(x, g_in_y, z, truncation_psi=0.3, update_ema=False)
            logit, aux = Dd(dx, d_in_y, return_aux=True)
            o["d_out_logit"] = logit
            o["d_out_proj_cls"], o["d_out_proj_tokens"] = aux["x_feat"]
            o["d_out_logit_noaux"] = Dd(dx, d_in_y)
        return {k: v.numpy().copy() for k, v in o.items()}

    out32 = run(torch.float32)
    out64 = run(torch.float64)
    G.float()
    D.float()
    assert np.array_equal(out32["g_out"], out32["g_out_multiscale"][-1])
    assert np.array_equal(out32["d_out_logit"], out32["d_out_logit_noaux"])
    for k in out32:
        a, b = out32[k], out64[k]
        rel = np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)
        print(f"  {k:20s} {str(a.shape):18s} std {b.std():.4f}  max|f32-f64|/max|f64| {rel:.2e}")
    ms = out64["g_out_multiscale"]
    print("  G per-level head std:", [float((ms[k] - (ms[k - 1] if k else 0)).std())
                                     for k in range(4)])

    # ---- c. save ------------------------------------------------------------------------
    arrays = {}
    for prefix, m in (("g", G), ("d", D)):
        for name, t in m.state_dict().items():
            arrays[f"{prefix}/{name}"] = t.detach().to(torch.float32).numpy().copy()
    arrays["g_in_z"] = g_in_z.numpy()
    arrays["g_in_y"] = g_in_y.numpy().astype(np.int32)
    arrays["g_in_x"] = g_in_x.numpy()
    arrays["d_in_x"] = d_in_x.numpy()
    arrays["d_in_y"] = d_in_y.numpy().astype(np.int32)
    for k, v in out32.items():
        if k == "d_out_logit_noaux":
            continue
        arrays[k] = v.astype(np.float32)
        arrays[k + "_f64"] = out64[k].astype(np.float64)
    meta = {
        "commit": commit, "source": "github.com/hse1032/GAT",
        "g_ctor": "models.generator.GAT", "g_kwargs": g_kwargs,
        "d_ctor": "models.discriminator.GATD", "d_kwargs": d_kwargs,
        "g_call": "G(g_in_x, g_in_y, g_in_z, truncation_psi=0.0, update_ema=False, "
                  "multiscale=True|False); g_out_psi0p3: truncation_psi=0.3 with the "
                  "randomised w_avg",
        "d_call": "D(d_in_x, d_in_y, return_aux=True) -> (logit (B,1), "
                  "{'x_feat': [proj_cls (B,1,z), proj_tokens (B,T,z)]})",
        "dtype": "float32 CPU eval, no autocast; *_f64: same weights run in float64",
        "randomisation": randomise.__doc__.strip(),
        "values": "weights and inputs rounded to bfloat16-representable float32",
        "torch_compile": "disabled (RoPE forward run eagerly)",
        "versions": versions,
    }
    arrays["meta"] = np.array(json.dumps(meta))
    path = os.path.join(args.out_dir, "gat_parity.npz")
    np.savez_compressed(path, **arrays)
    print(f"wrote {path} ({os.path.getsize(path):,d} bytes), "
          f"{sum(v.size for k, v in arrays.items() if k[:2] in ('g/', 'd/')):,d} values")
    print("G state_dict:", [k for k in G.state_dict()])
    print("D state_dict:", [k for k in D.state_dict()])


if __name__ == "__main__":
    main()
