"""``pepcurr train``: a new run from options, a run forked from a shared prefix, or a resume.

A new run's ``RunConfig`` comes from ``options.resolve_run_config``; a resumed
run keeps its own (options that disagree are reported and ignored). Under
``torchrun`` every process calls ``run_training``: ``--batch-size`` is per
process (the run's batch is that times the world size), rank 0 indexes the
data files and copies a forked run's directory, the others use them.
"""

from __future__ import annotations

from pathlib import Path

from curriculum_cli.devices import resolve_device
from curriculum_cli.training.config import read_run_config
from curriculum_cli.training.distributed import Distributed
from curriculum_cli.training.fork import fork_run
from curriculum_cli.training.loop import Reporter, SilentReporter, TrainResult, train
from curriculum_cli.training.options import (
    DEFAULTS,
    TrainOptions,
    resolve_run_config,
    resume_conflicts,
)


def run_training(
    run_dir: Path | str,
    options: TrainOptions,
    resume: bool = False,
    max_steps: int | None = None,
    reporter: Reporter | None = None,
    tensorboard: bool = False,
    fork_from: Path | str | None = None,
) -> TrainResult:
    """Train a new run in ``run_dir`` as ``options`` ask, or continue it (``resume``).

    ``fork_from``: a run stopped within the steps it shares with this one
    (``fork.shared_prefix``, as ``ab --plan`` prints it); this run starts as a
    copy of it and trains on from its checkpoint.
    """
    reporter = reporter or SilentReporter()
    run_dir = Path(run_dir)
    ranks = Distributed.from_env()
    if not ranks.is_main:
        reporter = SilentReporter()
    if resume:
        for warning in resume_conflicts(read_run_config(run_dir), options):
            reporter.message(warning)
        return train(None, run_dir, resume=True, max_steps=max_steps, reporter=reporter,
                     tensorboard=tensorboard)  # fmt: skip
    if ranks.active:
        per_rank = options.batch_size or DEFAULTS["batch_size"]
        options = options.model_copy(update={"batch_size": per_rank * ranks.world_size})
        # rank 0 indexes --train-data/--val-data; the others use its stores
        ranks.init(ranks.device(resolve_device(str(options.device or "auto"))))
    config = ranks.on_main(
        lambda: resolve_run_config(options, message=reporter.message, world_size=ranks.world_size)
    )
    if fork_from is not None:
        ranks.init(ranks.device(resolve_device(config.device)))  # train() keeps this group
        ranks.on_main(lambda: fork_run(Path(fork_from), run_dir, config))
    return train(config, run_dir, resume=fork_from is not None, max_steps=max_steps,
                 reporter=reporter, tensorboard=tensorboard)  # fmt: skip
