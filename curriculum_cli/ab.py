"""``pepcurr ab``: train every curriculum x seed, then compare the arms.

Run directories are ``OUT/<curriculum name>-s<seed>``. Re-running the same
command is safe and cheap: a finished run is reused, an interrupted or
stopped one is resumed from its checkpoint, and a directory holding a
*different* run (any setting of ``run.json`` other than where the curriculum
was read from) is an error rather than silently mixed in. All settings are
checked before the first run starts, so a typo in the second arm does not
surface after the first arm has trained for ten minutes. On a CPU several
runs train at once, one thread each (``jobs``); on a GPU one after another.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from curriculum_cli.checkpoint import CHECKPOINT_FILE
from curriculum_cli.compare import DEFAULT_METRIC, DEFAULT_TARGET, Comparison, compare_runs
from curriculum_cli.config import (
    MEASUREMENT_FIELDS,
    RUN_FILE,
    RunConfig,
    build_run_config,
    read_run_config,
)
from curriculum_cli.errors import PepcurrError, RunError
from curriculum_cli.runlog import METRICS_FILE, last_end_record, read_records

# Settings a reused run may differ in: where the curriculum was read from, "auto"
# against the device it resolved to, and what is measured when (not the trained weights;
# compare shows differing validation settings).
_MAY_DIFFER = {"curriculum_source", "device", *MEASUREMENT_FIELDS}


@dataclass
class AbResult:
    """The runs of an A/B (``actions``: run directory -> trained, resumed or reused) and
    the comparison; ``interrupted`` when Ctrl-C stopped a run (re-run to resume)."""

    run_dirs: list[Path]
    actions: dict[str, str]
    comparison: Comparison | None = None
    plot: Path | None = None
    interrupted: bool = False
    messages: list[str] = field(default_factory=list)


def _arm_names(curricula) -> list[str]:
    names = [curriculum.name for curriculum in curricula]
    if len(set(names)) == len(names):
        return names
    return [f"{index}-{name}" for index, name in enumerate(names)]


def _state(run_dir: Path, asked: RunConfig) -> str:
    """``new``, ``finished`` or ``resume``; a ``RunError`` if the directory holds another run."""
    if not (run_dir / RUN_FILE).is_file():
        return "new"
    stored = read_run_config(run_dir)
    differing = [
        key
        for key in RunConfig.model_fields
        if key not in _MAY_DIFFER and getattr(stored, key) != getattr(asked, key)
    ]
    if differing:
        raise RunError(
            f"{run_dir} holds a run with another {', '.join(differing)} than asked for; use "
            "another --out, or delete that directory to train it again"
        )
    end = last_end_record(run_dir)
    if end is not None and end.get("status") == "finished":
        return "finished"
    if not (run_dir / CHECKPOINT_FILE).is_file():
        raise RunError(
            f"{run_dir}: a run started there but left no checkpoint; delete the directory to "
            "train it again"
        )
    return "resume"


def run_ab(
    curricula: list[str],
    out_dir: Path | str,
    seeds: int = 2,
    base_seed: int = 0,
    scale: float | None = None,
    options: dict | None = None,
    at: int | None = None,
    metric: str = DEFAULT_METRIC,
    target: float = DEFAULT_TARGET,
    plot: Path | str | None = None,
    reporter=None,
    jobs: int = 1,
) -> AbResult:
    """Train each curriculum with seeds ``base_seed .. base_seed + seeds - 1``, then compare.

    ``curricula``: two or more preset names or JSON paths, as ``train`` takes
    them. ``options``: further ``train`` options (``model``, ``batch_size``,
    ``lr``, ``device``, ``val_every``, ``grad_every``; None = default).
    ``at``/``metric``/``target`` go to ``compare_runs``; ``plot`` (default
    ``OUT/curves.png``) receives the curves. ``reporter`` (the engine's
    ``Reporter``) shows training progress and one message per run.

    ``jobs`` > 1 trains that many runs at once in worker processes, each with
    one intra-op thread: on a CPU, two single-threaded runs side by side do
    more steps per second together than one run using both cores (measured in
    docs/performance.md). Results are deterministic for a given ``jobs``
    setting (thread count changes float summation order, so a run trained
    with ``jobs=2`` may differ in the last bits from one trained alone).
    ``jobs`` = 0 picks: the number of CPU cores on a CPU, 1 on a GPU.
    """
    from curriculum_cli.presets import load_curriculum

    if len(curricula) < 2:
        raise PepcurrError("an A/B needs at least two curricula")
    if seeds < 1:
        raise PepcurrError(f"--seeds must be >= 1, got {seeds}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise PepcurrError(f"{out_dir}: exists and is not a directory")
    options = {k: v for k, v in (options or {}).items() if v is not None}
    names = _arm_names([load_curriculum(source) for source in curricula])

    plan = []  # (run directory, train options, state), checked before anything trains
    for source, name in zip(curricula, names, strict=True):
        for seed in range(base_seed, base_seed + seeds):
            run_options = {**options, "curriculum": source, "scale": scale, "seed": seed}
            run_dir = out_dir / f"{name}-s{seed}"
            config = build_run_config(**run_options)
            plan.append((run_dir, run_options, _state(run_dir, config)))

    result = AbResult(run_dirs=[run_dir for run_dir, _, _ in plan], actions={})
    todo = []
    for number, (run_dir, run_options, state) in enumerate(plan, start=1):
        prefix = f"[{number}/{len(plan)}] {run_dir.name}"
        if state == "finished":
            result.actions[str(run_dir)] = "reused"
            _tell(reporter, result, f"{prefix}: finished already, reused")
        else:
            todo.append((prefix, run_dir, run_options, state))
    if jobs <= 0:  # auto: one single-threaded run per core on a CPU, one run on a GPU
        from curriculum_cli.config import resolve_device

        on_cpu = resolve_device(options.get("device", "auto")).type == "cpu"
        jobs = (os.cpu_count() or 1) if on_cpu else 1
    if jobs > 1 and len(todo) > 1:
        _train_in_parallel(todo, jobs, result, reporter)
    else:
        for prefix, run_dir, run_options, state in todo:
            verb = "resuming" if state == "resume" else "training"
            _tell(reporter, result, f"{prefix}: {verb}")
            trained = _train_one(run_dir, run_options, state, reporter=reporter)
            _record(result, reporter, prefix, run_dir, state, trained)
            if result.interrupted:
                break
    if result.interrupted:
        _tell(reporter, result, "interrupted; run the same command to resume")
        return result

    result.comparison = compare_runs(result.run_dirs, at=at, metric=metric, target=target)
    from curriculum_cli.plots import plot_curves

    result.plot = plot_curves(result.comparison, Path(plot) if plot else out_dir / "curves.png")
    return result


def _train_one(run_dir: Path, run_options: dict, state: str, reporter=None, threads: int = 0):
    """Train or resume one run; ``threads`` > 0 sets torch's intra-op threads first."""
    from curriculum_cli.engine import run_training

    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    resume = state == "resume"
    return run_training(run_dir, {} if resume else run_options, resume=resume, reporter=reporter)


def _train_in_parallel(todo: list, jobs: int, result: AbResult, reporter) -> None:
    """Train runs in ``jobs`` worker processes (one thread each).

    Every 30 s the step each running run has reached is reported. Ctrl-C
    reaches every worker: each stops after its step in flight with a
    checkpoint, and runs not started yet are cancelled.
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {}
        for prefix, run_dir, run_options, state in todo:
            future = pool.submit(_train_one, run_dir, run_options, state, None, 1)
            futures[future] = (prefix, run_dir, state)
        _tell(reporter, result, f"training {len(todo)} runs, {jobs} at a time (one thread each)")
        pending = set(futures)
        while pending:
            try:
                done, pending = wait(pending, timeout=30, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                result.interrupted = True
                for future in pending:
                    future.cancel()
                continue
            for future in done:
                if future.cancelled():
                    continue
                prefix, run_dir, state = futures[future]
                _record(result, reporter, prefix, run_dir, state, future.result())
            if pending and reporter is not None and not result.interrupted:
                reporter.message(_progress_line([futures[f][1] for f in pending]))


def _progress_line(run_dirs: list[Path]) -> str:
    """``name step N/total`` of each run, from the last train record of its metrics."""
    parts = []
    for run_dir in sorted(run_dirs):
        step = "starting"
        if (run_dir / METRICS_FILE).is_file():
            records, _ = read_records(run_dir / METRICS_FILE)
            train = [r for r in records if r["event"] == "train"]
            if train:
                total_steps = read_run_config(run_dir).total_steps
                step = f"step {train[-1]['step']}/{total_steps}"
        parts.append(f"{run_dir.name} {step}")
    return "  ".join(parts)


def _record(result: AbResult, reporter, prefix: str, run_dir: Path, state: str, trained) -> None:
    result.actions[str(run_dir)] = "resumed" if state == "resume" else "trained"
    if trained.status == "interrupted":
        result.interrupted = True
        _tell(reporter, result, f"{prefix}: interrupted at step {trained.step}")
        return
    _tell(
        reporter,
        result,
        f"{prefix}: {trained.status} at step {trained.step} in {trained.elapsed_s:.0f} s",
    )


def _tell(reporter, result: AbResult, message: str) -> None:
    result.messages.append(message)
    if reporter is not None:
        reporter.message(message)
