"""``pepcurr ab``: train every curriculum x seed, then compare the arms.

Run directories are ``OUT/<curriculum name>-s<seed>``. Re-running the same
command is safe and cheap: a finished run is reused, an interrupted or
stopped one is resumed from its checkpoint, and a directory holding a
*different* run (another curriculum, scale, seed or model) is an error rather
than silently mixed in. Runs train one after another; all settings are
checked before the first one starts, so a typo in the second arm does not
surface after the first arm has trained for ten minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from curriculum_cli.compare import DEFAULT_METRIC, DEFAULT_TARGET, Comparison, compare_runs
from curriculum_cli.errors import PepcurrError, RunError
from curriculum_cli.runlog import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    RUN_FILE,
    read_records,
    read_run_config,
)

# Settings a reused run must share with the command line.
_MUST_MATCH = ("curriculum", "scale", "seed", "model", "batch_size", "lr")


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


def _state(run_dir: Path, config_dict: dict) -> str:
    """``new``, ``finished`` or ``resume``; a ``RunError`` if the directory holds another run."""
    if not (run_dir / RUN_FILE).is_file():
        return "new"
    stored = read_run_config(run_dir)
    for key in _MUST_MATCH:
        if stored.get(key) != config_dict.get(key):
            raise RunError(
                f"{run_dir} holds a run with another {key} than asked for; use another --out, "
                "or delete that directory to train it again"
            )
    records = []
    if (run_dir / METRICS_FILE).is_file():
        records, _ = read_records(run_dir / METRICS_FILE)
    ends = [r for r in records if r["event"] == "end"]
    if ends and ends[-1].get("status") == "finished":
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
) -> AbResult:
    """Train each curriculum with seeds ``base_seed .. base_seed + seeds - 1``, then compare.

    ``curricula``: two or more preset names or JSON paths, as ``train`` takes
    them. ``options``: further ``train`` options (``model``, ``batch_size``,
    ``lr``, ``device``, ``val_every``, ``grad_every``; None = default).
    ``at``/``metric``/``target`` go to ``compare_runs``; ``plot`` (default
    ``OUT/curves.png``) receives the curves. ``reporter`` (the engine's
    ``Reporter``) shows training progress and one message per run.
    """
    from curriculum_cli.curriculum import load_curriculum
    from curriculum_cli.engine import build_train_config, run_training

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
            config = build_train_config(run_options)
            plan.append((run_dir, run_options, _state(run_dir, _comparable(config))))

    result = AbResult(run_dirs=[run_dir for run_dir, _, _ in plan], actions={})
    for number, (run_dir, run_options, state) in enumerate(plan, start=1):
        prefix = f"[{number}/{len(plan)}] {run_dir.name}"
        if state == "finished":
            result.actions[str(run_dir)] = "reused"
            _tell(reporter, result, f"{prefix}: finished already, reused")
            continue
        _tell(reporter, result, f"{prefix}: {'resuming' if state == 'resume' else 'training'}")
        trained = run_training(
            run_dir, {} if state == "resume" else run_options, resume=state == "resume",
            reporter=reporter,
        )  # fmt: skip
        result.actions[str(run_dir)] = "resumed" if state == "resume" else "trained"
        if trained.status == "interrupted":
            result.interrupted = True
            _tell(reporter, result, f"{prefix}: interrupted; run the same command to resume")
            return result

    result.comparison = compare_runs(result.run_dirs, at=at, metric=metric, target=target)
    from curriculum_cli.plots import plot_curves

    result.plot = plot_curves(result.comparison, Path(plot) if plot else out_dir / "curves.png")
    return result


def _comparable(config) -> dict:
    """The ``run.json`` values of ``_MUST_MATCH`` that a ``TrainConfig`` would write."""
    data = config.to_dict()
    return {key: data.get(key) for key in _MUST_MATCH}


def _tell(reporter, result: AbResult, message: str) -> None:
    result.messages.append(message)
    if reporter is not None:
        reporter.message(message)
