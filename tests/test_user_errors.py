"""Every mistake gets a one-line answer (issue 21): bad inputs and faults, table-driven.

Each case runs launch.py as a user would and asserts the exit code, that stderr is one
`error:` line without a traceback, and that the message names the field or file and the
fix. Cases run two at a time (each is a fresh process: absl flags are process-global).
"""
import concurrent.futures
import os
import shutil
import subprocess
import sys

import pytest

from jaxgan.run import train
from tests.conftest import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--config", "configs/gan.py", "--config.model.latent_dim=8",
        "--config.model.mlp.g_widths=(32,)", "--config.model.mlp.d_widths=(32,)",
        "--config.data.batch_size=16", "--config.data.max_examples=64",
        "--config.train.steps=2", "--config.train.log_every=1",
        "--config.train.sample_every=0", "--config.train.checkpoint_every=2",
        "--config.train.progress=False", "--config.eval.every=0",
        "--config.train.tensorboard=False"]
WGP = ["--config", "configs/wgan_gp.py", "--config.train.steps=2"]
DC = ["--config", "configs/dcgan.py", "--config.train.steps=2"]

# (id, argv (RUN = a trained run's workdir, NEW = a fresh path), expected code, patterns
# that must all appear in the message)
CASES = [
    ("negative steps", TINY + ["--config.train.steps=-5"], 2, ["config.train.steps=-5", ">= 1"]),
    ("zero steps", TINY + ["--config.train.steps=0"], 2, ["config.train.steps=0", ">= 1"]),
    ("negative lr", TINY + ["--config.optim.d.lr=-1e-4"], 2, ["config.optim.d.lr", "> 0"]),
    ("zero lr", TINY + ["--config.optim.g.lr=0"], 2, ["config.optim.g.lr", "> 0"]),
    ("infinite lr", TINY + ["--config.optim.g.lr=inf"], 2, ["config.optim.g.lr", "finite"]),
    ("ema decay above 1", TINY + ["--config.ema_decay=1.5"], 2, ["config.ema_decay=1.5", "< 1"]),
    ("zero batch", TINY + ["--config.data.batch_size=0"], 2, ["config.data.batch_size=0", ">= 1"]),
    ("zero log_every", TINY + ["--config.train.log_every=0"], 2, ["train.log_every", ">= 1"]),
    ("zero checkpoint_every", TINY + ["--config.train.checkpoint_every=0"], 2,
     ["train.checkpoint_every", ">= 1"]),
    ("keep 0", TINY + ["--config.checkpoint.keep=0"], 2, ["config.checkpoint.keep=0", ">= 1"]),
    ("misspelt field", TINY + ["--config.train.stepz=5"], 2,
     ["--config.train.stepz", "Did you mean 'train.steps'", "configs/default.py"]),
    ("moved field", TINY[:2] + ["--config.model.g_widths=(8,)"], 2,
     ["--config.model.g_widths", "model.mlp.g_widths"]),
    ("int field gets text", TINY + ["--config.train.steps=abc"], 2,
     ["--config.train.steps='abc'", "integer"]),
    ("float field gets text", TINY + ["--config.optim.d.lr=fast"], 2,
     ["--config.optim.d.lr='fast'", "number"]),
    ("bool field gets text", TINY + ["--config.train.progress=maybe"], 2,
     ["--config.train.progress='maybe'", "True or False"]),
    ("unknown loss", TINY + ["--config.loss=hinj"], 2,
     ["config.loss='hinj'", "Did you mean 'hinge'", "Valid:"]),
    ("unknown penalty", TINY + ["--config.penalty=gp2"], 2, ["config.penalty='gp2'", "Valid:"]),
    ("unknown arch", TINY + ["--config.model.arch=stylegan9"], 2,
     ["config.model.arch='stylegan9'", "Valid: biggan, dcgan, gat, mlp, r3gan, r3gan2, resnet"]),
    ("unknown optimizer", TINY + ["--config.optim.d.name=adamx"], 2,
     ["config.optim.d.name='adamx'", "Did you mean 'adam'"]),
    ("unknown augmentation", TINY + ["--config.augment.policy=flip"], 2,
     ["config.augment.policy='flip'", "Did you mean 'xflip'"]),
    ("unknown metric", TINY + ["--config.eval.metrics=fd,fid"], 2,
     ["config.eval.metrics='fd,fid'", "'fid'", "Valid:"]),
    ("unknown regularizer", TINY + ["--config.regularizers=({'name':'r3'},)"], 2,
     ["config.regularizers", "unknown regularizer 'r3'", "valid:"]),
    ("regularizer on the wrong side", TINY + ["--config.regularizers=({'name':'r1','side':'g'},)"],
     2, ["config.regularizers", "acts on side(s) d, not 'g'"]),
    ("regularizer option misspelt", TINY + ["--config.regularizers=({'name':'r1','wieght':1},)"],
     2, ["config.regularizers", "wieght", "valid keys"]),
    ("label noise with hinge", TINY + ["--config.loss=hinge", "--config.labels.noise=0.1"], 2,
     ["config.labels", "config.loss='hinge'", "set them to 0"]),
    ("two channels", TINY + ["--config.data.channels=2"], 2, ["config.data.channels=2", "1, 3"]),
    ("flip probability above 1", TINY + ["--config.labels.flip=1.5"], 2, ["labels.flip", "<= 1"]),
    ("dropout 1", TINY + ["--config.model.d_dropout=1.0"], 2, ["model.d_dropout", "< 1"]),
    ("best metric not computed", TINY + ["--config.eval.every=1",
                                         "--config.eval.best_metric=precision"], 2,
     ["config.eval.best_metric='precision'", "fd"]),
    ("gradient penalty with BatchNorm critic", WGP + ["--config.model.d_norm=batch"], 2,
     ["'gp'", "config.model.d_norm='batch'", "'layer' or 'none'"]),
    ("dcgan size not start*2^n", DC + ["--config.data.image_size=30"], 2,
     ["image_size = start_size * 2**n", "config.model.dcgan.start_size"]),
    ("image size not a size", TINY + ["--config.data.image_size=32,64,8"], 2,
     ["config.data.image_size=[32, 64, 8]", "is not a size", "height,width (32,64)"]),
    ("non-square for a square-only arch", TINY + ["--config.model.arch=r3gan2",
                                                  "--config.data.image_size=32,64"], 2,
     ["config.data.image_size=32,64", "r3gan2 architecture builds square images only",
      "dcgan, resnet, biggan, stylegan2, r3gan, mlp"]),
    ("fewer examples than a batch", TINY + ["--config.data.max_examples=10"], 2,
     ["config.data.max_examples=10", "config.data.batch_size=16"]),
    ("missing config file", ["--config", "configs/nope.py"], 2,
     ["configs/nope.py", "no such file", "configs/gan.py"]),
    ("syntax error in config", ["--config", "BADCFG"], 2, ["bad_config.py, line 1", "syntax"]),
    ("unknown config variant", ["--config", "configs/gan.py:bogus"], 2,
     ["configs/gan.py:bogus", "valid: fashion, mnist_a, mnist_b"]),
    ("missing image folder", TINY + ["--config.data.folder=/nonexistent/imgs"], 2,
     ["/nonexistent/imgs", "config.data.folder"]),
    ("unknown TFDS dataset", TINY + ["--config.data.name=not_a_dataset"], 2,
     ["not_a_dataset", "config.data.name"]),
    ("misspelt TFDS dataset", TINY + ["--config.data.name=fashoin_mnist"], 2,
     ["'fashoin_mnist'", "Did you mean 'fashion_mnist'"]),
    ("subset larger than the data", TINY + ["--config.data.subset=5000"], 2,
     ["config.data.subset=5000", "keeps 5000 of the 64 images"]),
    ("too many devices", TINY + ["--config.num_devices=64"], 2, ["config.num_devices=64"]),
    ("workdir is a file", TINY + ["--workdir", "FILE"], 2, ["is a file", "directory"]),
    ("workdir cannot be created", TINY + ["--workdir", "/proc/1/jaxgan_run"], 2,
     ["cannot be created", "--workdir"]),
    ("resume_step on a fresh workdir", TINY + ["--resume_step=5"], 2,
     ["--resume_step=5", "holds no checkpoint"]),
    ("changed width on resume", TINY + ["--workdir", "RUN", "--config.model.mlp.g_widths=(64,)"],
     2, ["different config", "model.mlp.g_widths", "new --workdir"]),
    ("keep 0 on an existing run", TINY + ["--workdir", "RUN", "--config.checkpoint.keep=0"], 2,
     ["config.checkpoint.keep=0"]),
    ("sample: missing workdir", ["--mode", "sample", "--workdir", "NEW"], 2,
     ["does not exist", "--workdir"]),
    ("sample: empty workdir", ["--mode", "sample", "--workdir", "EMPTY"], 2,
     ["holds no run", "train there first"]),
    ("sample: zero samples", ["--mode", "sample", "--workdir", "RUN", "--num_samples", "0"], 2,
     ["--num_samples=0", ">= 1"]),
    ("eval: truncation", ["--mode", "eval", "--workdir", "RUN", "--truncation", "0.5"], 2,
     ["--truncation=0.5", "--mode sample"]),
    ("sample: checkpoint 'last'", ["--mode", "sample", "--workdir", "RUN", "--checkpoint",
                                   "last"], 2, ["--checkpoint='last'", "'latest', 'best'"]),
    ("sample: missing step", ["--mode", "sample", "--workdir", "RUN", "--checkpoint", "999"], 2,
     ["--checkpoint='999'", "kept steps: [2]"]),
    ("sample: no best checkpoint", ["--mode", "sample", "--workdir", "RUN", "--checkpoint",
                                    "best"], 2, ["carries evaluation metrics", "eval.every"]),
    ("sample: labels on an unconditional model", ["--mode", "sample", "--workdir", "RUN",
                                                  "--labels", "3"], 2,
     ["--labels=3", "unconditional"]),
    ("latent: labels not a number", ["--mode", "latent", "--workdir", "RUN", "--labels", "abc"],
     2, ["--labels", "unconditional"]),
    ("duplicate seeds", TINY + ["--seeds", "0,0"], 2, ["--seeds", "seed=0", "twice"]),
    ("seeds not integers", TINY + ["--seeds", "a,b"], 2, ["--seeds", "integers"]),
    ("population without trials", TINY + ["--population"], 2, ["--population", "--seeds"]),
    ("sweep without sweep()", ["--config", "configs/wgan.py", "--sweep"], 2,
     ["configs/wgan.py", "sweep()", "--seeds"]),
    ("population of program-changing fields", ["--config", "WIDTHSWEEP", "--sweep",
                                               "--population"], 2,
     ["--population", "model.latent_dim", "without --population"]),
    ("seeds and sweep together", TINY + ["--seeds", "0,1", "--sweep"], 2,
     ["--sweep and --seeds together", "give one"]),
    ("trial index past the sweep", TINY + ["--seeds", "0,1,2", "--trial_index", "3"], 2,
     ["--trial_index=3", "3 trials", "0..2"]),
    ("shard index past the shards", TINY + ["--seeds", "0,1", "--num_shards", "3",
                                            "--shard_index", "3"], 2,
     ["--shard_index=3", "0..2", "--num_shards=3"]),
    ("trial index without a sweep", TINY + ["--trial_index", "0"], 2,
     ["--trial_index", "--sweep"]),
    ("shards of a population", TINY + ["--seeds", "0,1", "--population", "--num_shards", "2"],
     2, ["--population", "--num_shards", "drop"]),
    ("negative regularizer weight", TINY + ["--config.regularizers=({'name':'r1','weight':-1},)"],
     2, ["config.regularizers", "'weight' of 'r1' must be >= 0"]),
    ("config without get_config", ["--config", "NOGET"], 2,
     ["no_get.py", "defines no get_config()"]),
    ("get_config returns a dict", ["--config", "DICTCFG"], 2,
     ["get_config() returned a dict", "configs/default.py"]),
    ("positional argument", TINY + ["extra"], 2, ["Unexpected arguments: extra"]),
    ("unknown mode", ["--mode", "bogus"], 2, ["--mode", "bogus"]),
    ("missing --workdir", ["--config", "configs/gan.py", "--workdir="], 2, ["--workdir"]),
]


@pytest.fixture(scope="module")
def places(tmp_path_factory):
  base = tmp_path_factory.mktemp("errors")
  run = str(base / "run")
  train.train_and_evaluate(tiny_config(**{"train.steps": 2, "train.checkpoint_every": 2,
                                          "data.max_examples": 64,
                                          "train.tensorboard": False}), run)
  (base / "empty").mkdir()
  (base / "file").write_text("not a directory")
  (base / "bad_config.py").write_text("def get_config(:\n  return 1\n")
  (base / "no_get.py").write_text("X = 1\n")
  (base / "dict_config.py").write_text("def get_config():\n  return {'loss': 'hinge'}\n")
  (base / "width_sweep.py").write_text(
      "from configs import gan\n\ndef get_config():\n  return gan.get_config()\n\n"
      "def sweep():\n  return [{'model.latent_dim': 8}, {'model.latent_dim': 16}]\n")
  return {"RUN": run, "EMPTY": str(base / "empty"), "FILE": str(base / "file"),
          "BADCFG": str(base / "bad_config.py"), "NOGET": str(base / "no_get.py"),
          "DICTCFG": str(base / "dict_config.py"),
          "WIDTHSWEEP": str(base / "width_sweep.py"), "base": base}


def run_case(argv, workdir):
  if "--workdir" not in argv and not any(a.startswith("--workdir=") for a in argv):
    argv = argv + ["--workdir", workdir]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  p = subprocess.run([sys.executable, "launch.py", *argv], cwd=ROOT, env=env,
                     capture_output=True, text=True, timeout=300)
  return p.returncode, p.stderr


@pytest.fixture(scope="module")
def results(places):
  def one(i_case):
    i, (name, argv, _, _) = i_case
    argv = [places.get(a, a) for a in argv]
    new = str(places["base"] / f"new{i}")
    argv = [new if a == "NEW" else a for a in argv]
    return name, run_case(argv, new), new
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    out = {name: (out, new) for name, out, new in pool.map(one, enumerate(CASES))}
  if os.environ.get("JAXGAN_ERROR_TABLE"):  # the table of messages, for a review or a note
    write_table(os.environ["JAXGAN_ERROR_TABLE"], out, places)
  return out


def write_table(path, results, places):
  """A Markdown table: case, command, exit code, the message's last line."""
  rows = ["| case | arguments | exit | message |", "|---|---|---:|---|"]
  for name, argv, _, _ in CASES:
    (rc, err), _ = results[name]
    shown = " ".join(a for a in argv if a not in TINY or a == "--config.train.steps=2")
    last = (err.strip().splitlines() or [""])[-1]
    for k, v in places.items():
      last = last.replace(str(v), k)
    rows.append(f"| {name} | `{shown}` | {rc} | {last.replace('|', '/')} |")
  with open(path, "w") as f:
    f.write("\n".join(rows) + "\n")


def test_there_are_at_least_40_cases():
  assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("name,argv,code,patterns", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_line(results, name, argv, code, patterns):
  (rc, err), _ = results[name]
  lines = [l for l in err.strip().splitlines() if l.startswith("error:")]
  assert rc == code, err[-2000:]
  assert "Traceback" not in err, err[-2000:]
  assert len(lines) == 1, err[-2000:]
  assert err.strip().splitlines()[-1] == lines[0], err[-2000:]   # one line, nothing after it
  for pat in patterns:
    assert pat in lines[0], (pat, lines[0])


def test_reading_modes_create_nothing_and_keep_0_deletes_nothing(results, places):
  _, new = results["sample: missing workdir"]
  assert not os.path.exists(new)
  assert sorted(os.listdir(os.path.join(places["RUN"], "checkpoints"))) == ["2"]
