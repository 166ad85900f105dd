"""jaxgan command line: train a GAN from a config, or sample from a trained one.

  python launch.py --config configs/gan.py --workdir runs/gan
  python launch.py --config configs/wgan_gp.py --workdir runs/wgan_gp --config.train.steps=500
  python launch.py --workdir runs/gan --mode sample --num_samples 10000
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow only reads data here

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Config file, optionally with an argument: configs/gan.py:fashion. "
    "Override any field with --config.FIELD=VALUE.", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and samples.")
flags.DEFINE_enum("mode", "train", ["train", "sample", "eval", "latent", "report"],
                  "train (or resume); sample: export generated images; eval: all metrics; "
                  "latent: interpolations and class grids; report: DIR/report.html.")
flags.DEFINE_integer("num_samples", 10_000, "sample/eval modes: how many images to generate.")
flags.DEFINE_string("checkpoint", "latest", "sample/eval modes: 'latest', 'best' (by the "
                    "evaluation metric) or a step number.")
flags.DEFINE_string("labels", "even", "sample mode, conditional models: 'even' (all classes "
                    "in turn) or a class index.")
flags.DEFINE_string("metrics", "all", "eval mode: comma-separated metric names "
                    "(jaxgan/metrics: fd, kid, pr, dc, classes, ppl) or 'all'.")
flags.DEFINE_integer("sample_seed", 0, "sample mode: seed of the exported latents.")
flags.DEFINE_bool("sweep", False, "train: run the trials of the config file's sweep() "
                  "function, one workdir each under --workdir, then write sweep.csv/.md.")
flags.DEFINE_string("seeds", "", "train: repeat the config over these seeds, e.g. 0,1,2,3.")
flags.DEFINE_bool("population", False, "with --sweep/--seeds: train all trials together in "
                  "one vmapped program (trials may differ only in seed and scalar "
                  "hyperparameters).")
flags.DEFINE_string("coordinator_address", None, "Multi-process runs: host:port of process 0 "
                    "(jax.distributed). Leave unset on SLURM/TPU/MPI clusters and pass "
                    "--distributed to let JAX detect them.")
flags.DEFINE_integer("num_processes", None, "Multi-process runs: number of processes.")
flags.DEFINE_integer("process_id", None, "Multi-process runs: this process's index.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() with the "
                  "cluster's auto-detected settings (SLURM, TPU pods, Open MPI, ...).")
flags.mark_flags_as_required(["workdir"])


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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Orbax logs every checkpoint step at INFO
  from jaxgan import runtime  # pylint: disable=g-import-not-at-top
  runtime.tune_host_allocator()  # before the first big host allocation
  init_distributed()
  from jaxgan import sampling, train  # pylint: disable=g-import-not-at-top
  workdir = os.path.abspath(os.path.expanduser(FLAGS.workdir))
  if FLAGS.mode == "train":
    if FLAGS.config is None:
      raise app.UsageError("--config is required to train, e.g. --config configs/gan.py")
    if FLAGS.sweep or FLAGS.seeds:
      from jaxgan import sweep  # pylint: disable=g-import-not-at-top
      trials = (sweep.seeds(sweep.parse_seeds(FLAGS.seeds)) if FLAGS.seeds else
                sweep.load_trials(config_flags.get_config_filename(FLAGS["config"])))
      if FLAGS.population:
        train.train_and_evaluate(FLAGS.config, workdir, trials=trials)
      else:
        sweep.run_sequential(FLAGS.config, trials, workdir)
      sweep.summarize(workdir, trials)
      return
    if FLAGS.population:
      raise app.UsageError("--population needs --sweep or --seeds.")
    state = train.train_and_evaluate(FLAGS.config, workdir)
    print(f"Trained to step {int(state.step)}: metrics, samples and checkpoints in {workdir}")
  elif FLAGS.mode == "sample":
    _, gan, state = train.restore_for_sampling(workdir, FLAGS.checkpoint)
    out = sampling.export(gan, state, workdir, FLAGS.num_samples, FLAGS.sample_seed,
                          FLAGS.labels)
    print(f"Wrote {out['num']} samples of step {int(state.step)} to {out['npz']} and "
          f"{out['png']}")
  elif FLAGS.mode == "latent":
    from jaxgan import latent  # pylint: disable=g-import-not-at-top
    _, gan, state = train.restore_for_sampling(workdir, FLAGS.checkpoint)
    label = None if FLAGS.labels in ("", "even", "all") else int(FLAGS.labels)
    for path in latent.explore(gan, state, workdir, seed=FLAGS.sample_seed, label=label).values():
      print(f"Wrote {path}")
  elif FLAGS.mode == "report":
    from jaxgan import report  # pylint: disable=g-import-not-at-top
    print(f"Wrote {report.build(workdir)}")
  else:
    result = train.evaluate_checkpoint(workdir, FLAGS.checkpoint, FLAGS.num_samples,
                                       FLAGS.sample_seed, FLAGS.metrics)
    for k, v in result.items():
      if not isinstance(v, list):
        print(f"{k:>28}: {v}")
    print(f"Wrote {os.path.join(workdir, 'eval.json')} and "
          f"{os.path.join(workdir, 'memorization.png')}")


if __name__ == "__main__":
  app.run(main)
