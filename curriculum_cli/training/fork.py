"""Shared prefixes of an A/B: train the steps that arms have in common once, then fork.

Two runs are identical up to step ``P`` when everything but their curriculum
is the same (seed included), their curricula have the same length (the
learning-rate schedule depends on it), everything they log at a validation
is the same (``validation.validation_plan``: the first and last stage data
of the synthetic sets, the decoding length limit and the ``val_real`` length
range, both of which follow the *whole* curriculum's lengths, middle stages
included), and at every step before ``P`` the same stage is in force: same
position in the list, same name, data settings and loss weights (only
``steps`` may differ), and gradients are measured at the same steps (they are
measured more densely near each run's own introductions, which ends a prefix
a little before the first introduction that differs).
``current`` and ``revised`` share their first 8,000 nominal steps, for
example. An accuracy-gated stage (``start_when``) starts at a time only the
run knows, so a prefix stops at the earliest start of the first gated stage.

``plan_segments`` turns the runs of one seed into training segments: the
prefix is trained once in one run's directory and stopped at ``P`` with a
checkpoint; every other run continues from a copy of that directory (its own
``run.json``), exactly as ``--resume`` continues a run, so its records and
weights equal those of a run trained from scratch (bit for bit on the CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curriculum_cli.errors import RunError
from curriculum_cli.training.config import (
    RUN_FILE,
    RunConfig,
    read_provenance,
    read_run_config,
    run_json,
)
from curriculum_cli.training.gradients import measured_at
from curriculum_cli.training.validation import validation_plan

# Settings that may differ between two runs that share a prefix: what an arm is.
_ARM_FIELDS = {"curriculum", "curriculum_source"}


@dataclass(frozen=True)
class Segment:
    """Train ``run_dir`` from ``start`` to ``stop`` (None: the end of its curriculum).

    ``copy_from``: a directory whose checkpoint at ``start`` this run continues
    from (copied first); None with ``start`` > 0: the run's own checkpoint.
    """

    run_dir: Path
    config: RunConfig
    start: int
    stop: int | None
    copy_from: Path | None = None


def shared_prefix(a: RunConfig, b: RunConfig) -> int:
    """Steps from 0 over which runs ``a`` and ``b`` are identical (see the module docstring)."""
    for key in RunConfig.model_fields:
        if key not in _ARM_FIELDS and getattr(a, key) != getattr(b, key):
            return 0
    first, second = a.curriculum, b.curriculum
    if first.world != second.world:  # the spectra of every step differ
        return 0
    if first.total_steps != second.total_steps or validation_plan(a) != validation_plan(b):
        return 0
    return min(_same_stages(first, second), _same_measurements(a, b))


def _same_stages(first, second) -> int:
    """Steps from 0 during which the same stage (all but its length) is in force in both."""
    starts_a, starts_b = first.stage_starts(), second.stage_starts()
    step = 0
    for index, (stage_a, stage_b) in enumerate(zip(first.stages, second.stages, strict=False)):
        if getattr(stage_a, "start_when", None) is not None:
            return step  # both gated alike: identical until the gate's earliest start at most
        same = stage_a.model_dump(exclude={"steps"}) == stage_b.model_dump(exclude={"steps"})
        if not same or starts_a[index] != starts_b[index]:
            return step
        step = min(starts_a[index] + stage_a.steps, starts_b[index] + stage_b.steps)
        if stage_a.steps != stage_b.steps:
            return step
    return first.total_steps


def _same_measurements(a: RunConfig, b: RunConfig) -> int:
    """Steps from 0 during which both runs measure gradients at the same steps.

    Gradients are measured more densely around each run's own introductions,
    so two runs whose losses come on at different steps log different ``grad``
    records some steps before the first one does. A gated introduction is
    known to the loop only once it happens (its window is dense after it),
    so only introductions fixed in advance count: before the prefix ends (at
    the latest the first gated stage's earliest start) no gate has opened.
    """
    total = a.curriculum.total_steps
    planned = [
        [at for at in config.curriculum.fixed_introductions().values() if at is not None]
        for config in (a, b)
    ]
    for step in range(total):
        if measured_at(step, a.grad_every, planned[0], total) != measured_at(
            step, b.grad_every, planned[1], total
        ):
            return step
    return total


def plan_segments(runs: list[tuple[Path, RunConfig]]) -> list[Segment]:
    """Segments that train every run of ``runs`` (one seed's new runs), prefixes once.

    In execution order: a segment that copies a directory comes before the
    segment that trains that directory further.
    """
    segments: list[Segment] = []

    def grow(group: list[int], start: int, holder: int | None) -> None:
        """Train ``group`` from ``start``; ``holder`` holds the checkpoint at ``start``."""
        rep = group[0]
        source = runs[holder][0] if holder is not None and holder != rep else None
        if len(group) == 1:
            segments.append(Segment(runs[rep][0], runs[rep][1], start, None, source))
            return
        common = min(shared_prefix(runs[rep][1], runs[j][1]) for j in group[1:])
        if common > start:
            segments.append(Segment(runs[rep][0], runs[rep][1], start, common, source))
            start, holder = common, rep
        subgroups: list[list[int]] = []
        for j in group:
            for sub in subgroups:
                if shared_prefix(runs[sub[0]][1], runs[j][1]) > start:
                    sub.append(j)
                    break
            else:
                subgroups.append([j])
        # Copies of the holder's directory first; the holder's own subgroup trains it further.
        subgroups.sort(key=lambda sub: holder in sub)
        for sub in subgroups:
            grow(sub, start, holder)

    if runs:
        grow(list(range(len(runs))), 0, None)
    return segments


def steps_saved(segments: list[Segment]) -> int:
    """Optimizer steps the segments do not train, against training every run from scratch."""
    trained = sum((s.stop or s.config.total_steps) - s.start for s in segments)
    total = sum(s.config.total_steps for s in segments if s.stop is None)
    return total - trained


def fork_run(source: Path, run_dir: Path, config: RunConfig) -> None:
    """``run_dir`` as a copy of ``source`` (checkpoint and log) with ``config`` as its ``run.json``.

    ``--resume`` then continues it as ``config`` from ``source``'s checkpoint,
    which must lie within the steps the two runs share (``shared_prefix``);
    ``run_dir`` must not hold a run yet (a partial copy is replaced).
    """
    import shutil

    from curriculum_cli.training.checkpoint import CHECKPOINT_FILE, CKPT_STEP, load_checkpoint
    from curriculum_cli.training.runlock import LOCK_FILE
    from curriculum_cli.training.runlog import write_json_atomic

    source, run_dir = Path(source), Path(run_dir)
    if (run_dir / RUN_FILE).exists():
        raise RunError(f"{run_dir} already holds a run; use --resume to continue it")
    step = int(load_checkpoint(source / CHECKPOINT_FILE)[CKPT_STEP])
    shared = shared_prefix(read_run_config(source), config)
    if step > shared:
        raise RunError(
            f"{source} is at step {step}, past the {shared} steps it shares with this run; fork "
            f"from a run stopped at step {shared} or earlier (train it with --max-steps {shared})"
        )
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    for path in sorted(source.rglob("*")):  # copytree would hide a full disk's errno
        target = run_dir / path.relative_to(source)
        if path.is_dir():
            target.mkdir()
        elif path.name != LOCK_FILE:
            shutil.copy2(path, target)
    write_json_atomic(run_dir / RUN_FILE, run_json(config, read_provenance(source)))
