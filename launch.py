"""jaxgan command line: train a GAN from a config, or sample from a trained one.

  python launch.py --config configs/gan.py --workdir runs/gan
  python launch.py --config configs/wgan_gp.py --workdir runs/wgan_gp --config.train.steps=500
  python launch.py --workdir runs/gan --mode sample --num_samples 10000

A mistake the user can fix (a bad config value, a missing file, a workdir in use) ends in
one line on stderr, `error: ...`, and exit code 2 (`--debug` shows the traceback); a run
stopped by SIGTERM/SIGINT saves a checkpoint and exits with 75 (jaxgan/base/errors.py).
"""
import ast
import json
import os
import sys

if sys.version_info < (3, 12):  # jax 0.12 needs 3.12; say so before any import fails
  print(f"error: jaxgan needs Python 3.12 or newer (this is {sys.version.split()[0]}): "
        "make the venv with python3.12 (README, Install).", file=sys.stderr)
  sys.exit(2)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow only reads data here

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Config file, optionally with an argument: configs/gan.py:fashion. "
    "Override any field with --config.FIELD=VALUE.", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and samples.")
flags.DEFINE_enum("mode", "train", ["train", "sample", "eval", "latent", "report",
                                    "posthoc_ema"],
                  "train (or resume); sample: export generated images; eval: all metrics; "
                  "latent: interpolations and class grids; report: DIR/report.html; "
                  "posthoc_ema: the metric against post-hoc EMA widths (--sigma_rels).")
flags.DEFINE_integer("num_samples", 10_000, "sample/eval modes: how many images to generate "
                     "(eval mode with Inception metrics: config.eval.inception_samples, "
                     "50,000, unless given).")
flags.DEFINE_string("checkpoint", "latest", "sample/eval modes: 'latest', 'best' (by the "
                    "evaluation metric) or a step number.")
flags.DEFINE_string("labels", "even", "sample mode, conditional models: 'even' (all classes "
                    "in turn) or a class index.")
flags.DEFINE_string("metrics", "all", "eval mode: comma-separated metric names "
                    "(jaxgan/eval/metrics: fd, kid, pr, dc, classes, ppl, fid_inception, is, "
                    "kid_inception, pr_inception) or 'all' (Inception ones when "
                    "--config.eval.inception_weights is set).")
flags.DEFINE_float("ema_sigma_rel", 0.0, "sample/eval/latent modes: sample with G's post-hoc "
                   "EMA of this relative width, reconstructed from the run's snapshots "
                   "(trained with --config.phema.sigma_rels); 0: the checkpoint's weights.")
flags.DEFINE_string("sigma_rels", "", "posthoc_ema mode: comma-separated widths to evaluate "
                    "(default 0.01,0.02,0.03,0.05,0.07,0.1,0.13,0.16,0.2,0.25).")
flags.DEFINE_integer("sample_seed", 0, "sample mode: seed of the exported latents.")
flags.DEFINE_bool("export_latents", False, "sample mode, a latent run: also store G's raw "
                  "outputs (normalised latents, before decoding) in samples.npz as 'latents'.")
flags.DEFINE_float("truncation", 0.0, "sample mode: > 0 draws each latent component from "
                   "N(0, 1) truncated to [-t, t] (BigGAN's truncation trick); for stylegan2 "
                   "and gat it is psi, w = w_avg + psi (w - w_avg) (1 = none); 0 = off.")
flags.DEFINE_bool("sweep", False, "train: run the trials of the config file's sweep() "
                  "function, one workdir each under --workdir, then write sweep.csv/.md.")
flags.DEFINE_string("seeds", "", "train: repeat the config over these seeds, e.g. 0,1,2,3.")
flags.DEFINE_bool("population", False, "with --sweep/--seeds: train all trials together in "
                  "one vmapped program (trials may differ only in seed and scalar "
                  "hyperparameters).")
flags.DEFINE_integer("trial_index", None, "with --sweep/--seeds: train only this trial (0-based), "
                     "e.g. $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX.")
flags.DEFINE_integer("num_shards", 1, "with --sweep/--seeds: split the trials round-robin "
                     "into this many parts ...")
flags.DEFINE_integer("shard_index", 0, "... and train part number shard_index (0-based).")
flags.DEFINE_bool("collect", False, "with --sweep/--seeds: train nothing; write sweep.csv/.md "
                  "from the trials that have metrics so far.")
flags.DEFINE_string("coordinator_address", None, "Multi-process runs: host:port of process 0 "
                    "(jax.distributed). Leave unset on SLURM/TPU/MPI clusters and pass "
                    "--distributed to let JAX detect them.")
flags.DEFINE_integer("num_processes", None, "Multi-process runs: number of processes.")
flags.DEFINE_integer("process_id", None, "Multi-process runs: this process's index.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() with the "
                  "cluster's auto-detected settings (SLURM, TPU pods, Open MPI, ...).")
flags.DEFINE_integer("resume_step", None, "train: resume from this checkpoint step instead "
                     "of the newest (e.g. when the newest cannot be restored); newer "
                     "checkpoints are moved to DIR/checkpoints_set_aside/, not deleted.")
flags.DEFINE_bool("debug", False, "Show the traceback of user errors too.")


def init_distributed():
  """jax.distributed.initialize from the flags or the cluster environment."""
  import jax  # pylint: disable=g-import-not-at-top
  if FLAGS.coordinator_address:
    kwargs = dict(coordinator_address=FLAGS.coordinator_address,
                  num_processes=FLAGS.num_processes, process_id=FLAGS.process_id)
  elif FLAGS.distributed:
    kwargs = {}
  else:
    return
  if jax.config.jax_platforms in (None, "", "cpu") and not os.environ.get("CUDA_VISIBLE_DEVICES"):
    # CPU processes exchange gradients through gloo (harmless on GPU/TPU backends).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(**kwargs)


def _fail(message: str, code: int = 2):
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(code)


def _config_path(argv):
  for i, a in enumerate(argv):
    if a.startswith("--config="):
      return a.split("=", 1)[1]
    if a == "--config" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _check_config_file(path: str):
  file = path.split(":", 1)[0]
  if not os.path.isfile(file):
    _fail(f"--config {path!r}: no such file; pass a config file such as configs/gan.py "
          f"(the files in configs/ are: {', '.join(sorted(f for f in os.listdir('configs') if f.endswith('.py') and not f.startswith('_')))}).")
  try:
    with open(file) as f:
      compile(f.read(), file, "exec")
  except SyntaxError as e:
    _fail(f"--config {file}, line {e.lineno}: {e.msg}; fix the file's Python syntax.")


def _check_overrides(argv):
  """Every --config.FIELD=VALUE names a schema field and parses as its type, before absl
  and ml_collections parse them (their errors are tracebacks)."""
  from jaxgan.config import all_fields  # pylint: disable=g-import-not-at-top
  from jaxgan.base.errors import did_you_mean  # pylint: disable=g-import-not-at-top
  fields = all_fields()
  for i, a in enumerate(argv):
    if not a.startswith("--config.") or a.startswith("--config.help"):
      continue
    key, has_value, value = a[len("--config."):].partition("=")
    if not has_value:
      value = argv[i + 1] if i + 1 < len(argv) else ""
    if key not in fields:
      _fail(f"--config.{key}: no such config field.{did_you_mean(key, fields)} "
            "configs/default.py lists every field.")
    problem = None if fields[key].literal else _parse_problem(fields[key].default, value)
    if problem:
      _fail(f"--config.{key}={value!r}: {problem} ({fields[key].doc}).")


def _parse_problem(default, text: str):
  if isinstance(default, bool):
    ok = text.lower() in ("true", "false", "1", "0")
    return None if ok else "takes True or False"
  try:
    if isinstance(default, int):
      int(text)
    elif isinstance(default, float):
      float(text)
    elif isinstance(default, tuple):
      ast.literal_eval(text)
  except (ValueError, SyntaxError):
    kind = {int: "an integer", float: "a number"}.get(type(default), "a Python literal tuple")
    return f"takes {kind}"
  return None


EVAL_OVERRIDES = []   # ("eval.FIELD", "text") of --config.eval.* flags in the reading modes


def _take_eval_overrides(argv):
  """Without --config (reading a run: --mode eval), --config.eval.FIELD=VALUE flags set
  fields of the run's stored config; they are taken out before absl sees them."""
  rest = []
  for a in argv:
    if a.startswith("--config.eval.") and "=" in a:
      key, value = a[len("--config."):].split("=", 1)
      EVAL_OVERRIDES.append((key, value))
    elif a.startswith("--config.eval."):
      _fail(f"{a}: write it as {a}=VALUE when reading a run.")
    else:
      rest.append(a)
  return rest


def parse_flags(argv):
  """absl flag parsing with one-line errors (exit 2) for bad flags and config files."""
  path = _config_path(argv)
  if path is not None:
    _check_config_file(path)
  else:
    argv = _take_eval_overrides(argv)
  _check_overrides(argv)
  try:
    return FLAGS(argv)
  except flags.Error as e:
    text = str(e)
    if "Traceback" in text and "--debug" not in argv:  # raised by the config file's code
      last = [l.strip() for l in text.splitlines() if l.strip() and not l.startswith(" ")]
      cause = next((l for l in reversed(last) if not l.startswith(".")), text)
      _fail(f"--config {path}: {cause}")
    _fail(f"{text.splitlines()[0]} See --helpshort.")
  except Exception as e:  # pylint: disable=broad-except  (raised by the config file's code)
    if "--debug" in argv:
      raise
    if isinstance(e, AttributeError) and "get_config" in str(e):
      _fail(f"--config {path}: defines no get_config(); add `def get_config():` returning "
            "the config, as configs/gan.py does.")
    _fail(f"--config {path}: {type(e).__name__}: {e}")


def main(argv):
  from jaxgan.base import errors  # pylint: disable=g-import-not-at-top
  try:
    return _main(argv)
  except errors.UserError as e:
    if FLAGS.debug:
      raise
    _fail(str(e))
  except errors.NonFiniteError as e:  # the run diverged: not a bug, not a user error
    if FLAGS.debug:
      raise
    _fail(str(e), 1)
  except KeyboardInterrupt:  # Ctrl-C at start-up, or a third one that abandons the save
    if FLAGS.debug:
      raise
    _fail("interrupted (Ctrl-C) without saving this point; run the same command again to "
          "resume from the last checkpoint, if one was written, or to start.", 130)
  except errors.Preempted as e:
    print(f"Stopped by signal {e.signum} at step {e.step}; the checkpoint is saved. Run the "
          "same command to resume.", flush=True)
    sys.exit(errors.EXIT_PREEMPTED)


def _checkpoint_choice(text: str) -> str:
  from jaxgan.base.errors import UserError  # pylint: disable=g-import-not-at-top
  if text in ("latest", "best") or text.isdigit():
    return text
  raise UserError(f"--checkpoint={text!r}: takes 'latest', 'best' or a step number.")


def _train_mode(workdir):
  """--mode train: one run, a sweep, seeds, a population, or a part of a sweep."""
  from jaxgan.run import train, validate  # pylint: disable=g-import-not-at-top
  from jaxgan.base.errors import UserError  # pylint: disable=g-import-not-at-top
  if FLAGS.config is None:
    raise UserError("--config is required to train, e.g. --config configs/gan.py")
  if FLAGS.sweep and FLAGS.seeds:
    raise UserError("--sweep and --seeds together: --seeds trains the config under several "
                    "seeds, --sweep trains the trials of its sweep(); give one (put seeds in "
                    "sweep() to combine them).")
  if FLAGS.population and not (FLAGS.sweep or FLAGS.seeds):
    raise UserError("--population needs --sweep or --seeds (the trials to train together).")
  validate.validate(FLAGS.config)
  if FLAGS.config.task == "autoencoder":
    _train_autoencoder(workdir)
    return
  parted = FLAGS.trial_index is not None or FLAGS.num_shards != 1 or FLAGS.shard_index
  trials = None
  if FLAGS.sweep or FLAGS.seeds:
    from jaxgan.run import sweep  # pylint: disable=g-import-not-at-top
    trials = (sweep.seeds(sweep.parse_seeds(FLAGS.seeds)) if FLAGS.seeds else
              sweep.load_trials(config_flags.get_config_filename(FLAGS["config"])))
    sweep.check_trials(FLAGS.config, trials)
    if FLAGS.population:
      from jaxgan.run import population  # pylint: disable=g-import-not-at-top
      population.check(trials)
  if trials is not None:
    if FLAGS.population:
      if parted or FLAGS.collect:
        raise UserError("--population trains every trial in one program: drop "
                        "--trial_index/--num_shards/--shard_index/--collect, or drop "
                        "--population to run a part of the sweep.")
      train.train_and_evaluate(FLAGS.config, workdir, trials=trials,
                               resume_step=FLAGS.resume_step)
      sweep.summarize(workdir, trials)
      return
    part = sweep.select(trials, FLAGS.trial_index, FLAGS.num_shards, FLAGS.shard_index)
    sweep.run(FLAGS.config, trials, workdir, collect=FLAGS.collect,
              indices=[i for i, _ in part] if parted else None)
    return
  if parted or FLAGS.collect:
    raise UserError("--trial_index/--num_shards/--shard_index/--collect choose trials of "
                    "a sweep: add --sweep (or --seeds 0,1,2).")
  state = train.train_and_evaluate(FLAGS.config, workdir, resume_step=FLAGS.resume_step)
  print(f"Trained to step {int(state.step)}: metrics, samples and checkpoints in {workdir}")


def _train_autoencoder(workdir):
  """--mode train with config.task=autoencoder: one run (jaxgan/run/autoencoder.py)."""
  from jaxgan.run import autoencoder  # pylint: disable=g-import-not-at-top
  from jaxgan.base.errors import UserError  # pylint: disable=g-import-not-at-top
  extra = [f for f in ("sweep", "seeds", "population", "collect", "resume_step", "trial_index")
           if FLAGS[f].present]
  if extra:
    raise UserError(f"--{extra[0]} trains GANs; config.task=autoencoder trains one "
                    "autoencoder per run: drop it (use --config.seed for another seed).")
  autoencoder.train(FLAGS.config, workdir)
  print(f"Trained the autoencoder: weights in {os.path.join(workdir, 'autoencoder')}")


def _run_setting(workdir: str, field: str) -> str:
  """config.<field> ("train.compile_cache", "task") of the config being trained, else of
  the stored run, else the schema's default."""
  from jaxgan.config import FIELDS  # pylint: disable=g-import-not-at-top
  *section, name = field.split(".")
  default = FIELDS[field].default
  if FLAGS.config is not None:
    # A get_config() that returned a plain dict is refused by validation, with its fix.
    cfg = getattr(FLAGS.config, section[0], None) if section else FLAGS.config
    return cfg.get(name, default) if cfg is not None else default
  try:
    with open(os.path.join(workdir, "config.json")) as f:
      stored = json.load(f)
    return (stored.get(section[0], {}) if section else stored).get(name, default)
  except (OSError, ValueError):
    return default


def _main(argv):
  from jaxgan.base.errors import UserError  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise UserError(f"Unexpected arguments: {' '.join(argv[1:])}; flags start with --.")
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Orbax logs every checkpoint step at INFO
  init_distributed()
  from jaxgan.run import platform  # pylint: disable=g-import-not-at-top
  platform.tune_host_allocator()  # before the first big host allocation
  from jaxgan.run import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  if not FLAGS.workdir:
    raise UserError("--workdir is required: the directory of the run (created when training).")
  workdir = os.path.abspath(os.path.expanduser(FLAGS.workdir))
  if EVAL_OVERRIDES and FLAGS.mode not in ("eval", "posthoc_ema"):
    raise UserError(f"--config.{EVAL_OVERRIDES[0][0]} without --config applies to --mode eval "
                    "and posthoc_ema only (it sets the evaluation of a stored run).")
  if FLAGS.ema_sigma_rel and (FLAGS.mode not in ("sample", "eval", "latent")
                              or not FLAGS.ema_sigma_rel > 0):
    raise UserError(f"--ema_sigma_rel={FLAGS.ema_sigma_rel}: takes a width > 0 (e.g. 0.05) "
                    "with --mode sample, eval or latent.")
  if FLAGS.sigma_rels and FLAGS.mode != "posthoc_ema":
    raise UserError(f"--sigma_rels={FLAGS.sigma_rels!r} applies to --mode posthoc_ema only "
                    "(--ema_sigma_rel picks one width for sample/eval/latent).")
  if not FLAGS.truncation >= 0 or (FLAGS.truncation and FLAGS.mode != "sample"):
    raise UserError(f"--truncation={FLAGS.truncation}: takes a threshold > 0 (e.g. 0.5) "
                    "with --mode sample, or 0 for none.")
  if FLAGS.mode != "train":
    workdir_lib.require_run(workdir)   # reading modes never create a workdir
    if _run_setting(workdir, "task") == "autoencoder":
      raise UserError(f"--workdir {workdir!r} holds an autoencoder run (config.task="
                      f"autoencoder): --mode {FLAGS.mode} reads GAN runs. Its weights are in "
                      f"{os.path.join(workdir, 'autoencoder')} (prepare --encoder and "
                      "model.decoder read them).")
    if FLAGS.num_samples < 1:
      raise UserError(f"--num_samples={FLAGS.num_samples}: must be >= 1.")
    _checkpoint_choice(FLAGS.checkpoint)
  from jaxgan.run import compile_cache  # pylint: disable=g-import-not-at-top
  compile_cache.enable(_run_setting(workdir, "train.compile_cache"))
  if FLAGS.mode == "train":
    _train_mode(workdir)   # each run installs its own config's speed-ups
  else:
    with platform.speedups(_run_setting(workdir, "train.cpu_conv")):
      _read_mode(workdir)


def _read_mode(workdir):
  """--mode sample | latent | report | eval | posthoc_ema: what a stored run gives."""
  from jaxgan.run import restore  # pylint: disable=g-import-not-at-top
  from jaxgan.eval import sampling  # pylint: disable=g-import-not-at-top
  from jaxgan.base.errors import UserError  # pylint: disable=g-import-not-at-top
  num = FLAGS.num_samples if FLAGS["num_samples"].present else 0
  metrics = FLAGS.metrics   # --config.eval.metrics=... alone picks the metrics too
  if not FLAGS["metrics"].present:
    metrics = dict(EVAL_OVERRIDES).get("eval.metrics", "" if FLAGS.mode == "posthoc_ema"
                                       else metrics)
  if FLAGS.mode == "posthoc_ema":
    from jaxgan.run import posthoc  # pylint: disable=g-import-not-at-top
    sigmas = (posthoc.parse_sigma_rels(FLAGS.sigma_rels) if FLAGS.sigma_rels
              else posthoc.DEFAULT_SIGMA_RELS)
    posthoc.sweep(workdir, sigmas, FLAGS.checkpoint, num, FLAGS.sample_seed, metrics,
                  overrides=EVAL_OVERRIDES)
    print(f"Wrote {os.path.join(workdir, posthoc.JSON)} and "
          f"{os.path.join(workdir, posthoc.PLOT)}")
  elif FLAGS.mode == "sample":
    _, gan, state = restore.restore_for_sampling(workdir, FLAGS.checkpoint,
                                                 FLAGS.ema_sigma_rel)
    if FLAGS.export_latents and gan.latent is None:
      raise UserError("--export_latents: this run trains on images, not latents; drop it.")
    out = sampling.export(gan, state, workdir, FLAGS.num_samples, FLAGS.sample_seed,
                          FLAGS.labels, truncation=FLAGS.truncation,
                          latents=FLAGS.export_latents)
    print(f"Wrote {out['num']} samples of step {int(state.step)} to {out['npz']} and "
          f"{out['png']}")
  elif FLAGS.mode == "latent":
    from jaxgan.eval import latent  # pylint: disable=g-import-not-at-top
    _, gan, state = restore.restore_for_sampling(workdir, FLAGS.checkpoint,
                                                 FLAGS.ema_sigma_rel)
    label = None
    if FLAGS.labels not in ("", "even", "all"):
      label = int(sampling.make_labels(gan.num_classes, 1, FLAGS.labels)[0])
    # Z pictures; for a style-based G also W: truncation strip, style mixing, interpolation
    paths = latent.explore(gan, state, workdir, seed=FLAGS.sample_seed, label=label)
    for path in paths.values():
      print(f"Wrote {path}")
  elif FLAGS.mode == "report":
    from jaxgan.eval import report  # pylint: disable=g-import-not-at-top
    print(f"Wrote {report.build(workdir)}")
  else:
    result = restore.evaluate_checkpoint(workdir, FLAGS.checkpoint, num, FLAGS.sample_seed,
                                         metrics, overrides=EVAL_OVERRIDES,
                                         ema_sigma_rel=FLAGS.ema_sigma_rel)
    for k, v in result.items():
      if not isinstance(v, list):
        print(f"{k:>28}: {v}")
    print(f"Wrote {os.path.join(workdir, 'eval.json')} and "
          f"{os.path.join(workdir, 'memorization.png')}")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
