"""``pepcurr train``: a new run from options, a run forked from a shared prefix, or a resume.

A new run first reads what its options point at (``read_run_inputs``: the
``--init-from`` checkpoint, the vocabulary, the data files indexed into stores);
its ``RunConfig`` then comes from ``resolve.resolve_run_config``. A resumed
run keeps its own (options that disagree are reported and ignored). Under
``torchrun`` every process calls ``run_training``: ``--batch-size`` is per
process (the run's batch is that times the world size), rank 0 indexes the
data files and copies a forked run's directory, the others use them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from curriculum_cli.devices import resolve_device
from curriculum_cli.errors import RunError
from curriculum_cli.model.factory import recorded_factory
from curriculum_cli.spectra.chemistry import MAX_CHARGE
from curriculum_cli.spectra.vocabulary import Vocabulary, vocabulary_label
from curriculum_cli.training.checkpoint import init_source
from curriculum_cli.training.config import VocabularyChange, read_provenance, read_run_config
from curriculum_cli.training.distributed import Distributed
from curriculum_cli.training.fork import fork_run
from curriculum_cli.training.loop import Reporter, SilentReporter, TrainResult, train
from curriculum_cli.training.resolve import (
    RunData,
    RunInputs,
    resolve_run_config,
    resume_conflicts,
    run_vocabulary,
)
from curriculum_cli.training.settings import DEFAULTS, TrainOptions


def read_run_inputs(
    options: TrainOptions, message: Callable[[str], None] | None = None
) -> RunInputs:
    """Read what a new run's options point at, once: the ``--init-from`` checkpoint (its
    record and its run's config), the vocabulary, the data files (``index_run_data``).

    ``message(text)`` hears which files are indexed, how many spectra were
    skipped, and how a ``--vocab`` other than the checkpoint's is fine-tuned into.
    """
    init = init_source(options.init_from) if options.init_from is not None else None
    vocab = run_vocabulary(options, init[1] if init else None)
    data = index_run_data(options, vocab, message)
    if init is not None and init[1].vocab != vocab and message:
        change = VocabularyChange.between(init[1].vocab, vocab)
        message(change.describe(vocabulary_label(init[1].vocab), vocabulary_label(vocab)))
    return RunInputs(vocab=vocab, init=init, data=data)


def index_run_data(
    options: TrainOptions, vocab: Vocabulary, message: Callable[[str], None] | None = None
) -> RunData:
    """Index (or find indexed) the options' MGF files with ``vocab``; ``message(text)``
    hears which files are indexed and how many spectra were skipped."""
    from curriculum_cli.spectra.store import index_files

    on_index = (lambda path: message(f"indexing {path} (once)")) if message else None
    indexed = {}
    for key in ("train", "val"):
        paths = getattr(options, f"{key}_data")
        records = index_files(paths, vocab, MAX_CHARGE, options.skip_invalid, options.store_dir,
                              on_index) if paths else []  # fmt: skip
        for record in records:
            if record.n_skipped and message:
                message(f"warning: {record.path}: {record.n_skipped} invalid spectra skipped "
                        f"(--skip-invalid), {record.n_spectra} used")  # fmt: skip
        indexed[key] = tuple(records)
    return RunData(**indexed)


def run_training(
    run_dir: Path | str,
    options: TrainOptions,
    resume: bool = False,
    max_steps: int | None = None,
    reporter: Reporter | None = None,
    tensorboard: bool = False,
    fork_from: Path | str | None = None,
    allow_changed_model: bool = False,
) -> TrainResult:
    """Train a new run in ``run_dir`` as ``options`` ask, or continue it (``resume``).

    ``fork_from``: a run stopped within the steps it shares with this one
    (``fork.shared_prefix``, as ``ab --plan`` prints it); this run starts as a
    copy of it and trains on from its checkpoint. ``allow_changed_model``: a resumed
    or forked run's factory file may have changed since the run recorded it.
    """
    reporter = reporter or SilentReporter()
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"--out {run_dir}: is a file; give a run directory")
    ranks = Distributed.from_env()
    if not ranks.is_main:
        reporter = SilentReporter()
    if resume:
        for warning in resume_conflicts(read_run_config(run_dir), options):
            reporter.message(warning)
        return train(None, run_dir, resume=True, max_steps=max_steps, reporter=reporter,
                     tensorboard=tensorboard, allow_changed_model=allow_changed_model)  # fmt: skip
    if ranks.active:
        per_rank = options.batch_size or DEFAULTS["batch_size"]
        options = options.model_copy(update={"batch_size": per_rank * ranks.world_size})
        # rank 0 indexes --train-data/--val-data; the others use its stores
        ranks.init(ranks.device(resolve_device(str(options.device or DEFAULTS["device"]))))
    config = ranks.on_main(
        lambda: resolve_run_config(
            options, read_run_inputs(options, reporter.message), world_size=ranks.world_size
        )
    )
    if fork_from is not None:
        # a changed model file is refused before the copy, which would then hold a run
        recorded_factory(config.model, read_provenance(Path(fork_from)), str(fork_from),
                         allow_changed_model)  # fmt: skip
        ranks.init(ranks.device(resolve_device(config.device)))  # train() keeps this group
        ranks.on_main(lambda: fork_run(Path(fork_from), run_dir, config))
    return train(config, run_dir, resume=fork_from is not None, max_steps=max_steps,
                 reporter=reporter, tensorboard=tensorboard,
                 allow_changed_model=allow_changed_model)  # fmt: skip
