"""``pepcurr ab``: train every curriculum x seed, then compare the arms.

An A/B is one ``AbSpec``: its question (the arms, the metric, the step, the
target, the margin) and how its runs train (seeds, scale, ``TrainOptions``),
fixed before anything trains. Planning and running it are apart:

- ``plan_ab``: every run's config and state, checked before the first run
  starts (so a typo in the second arm does not surface after the first arm has
  trained for ten minutes), the question recorded in ``OUT/ab.json``, and what
  is left to train as chains of segments, one per seed (``fork``: a prefix the
  arms share is trained once), independent of one another;
- running a plan: ``run_ab`` trains its chains here (``train_locally``: on a CPU
  several at once, one thread each; on a GPU one after another), then compares;
  ``plan_commands`` prints each segment's ``pepcurr train`` command instead
  (``segment_command``), for a scheduler.

Run directories are ``OUT/<curriculum name>-s<seed>``. Re-running the same
command is safe and cheap: a finished run is reused, an interrupted or
stopped one is resumed from its checkpoint, and a directory holding a
*different* run (any setting of ``run.json`` other than where the curriculum
was read from) is an error rather than silently mixed in.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from curriculum_cli.analysis.compare import (
    DEFAULT_TARGET,
    Comparison,
    check_question,
    compare_runs,
)
from curriculum_cli.analysis.run_values import DEFAULT_METRIC
from curriculum_cli.curriculum.schema import Curriculum
from curriculum_cli.devices import resolve_device
from curriculum_cli.errors import PepcurrError, RunError, StorageError
from curriculum_cli.training.checkpoint import CHECKPOINT_FILE, checkpoint_step
from curriculum_cli.training.config import RUN_FILE, RunConfig, read_run_config
from curriculum_cli.training.fork import Segment, fork_run, plan_segments, steps_saved
from curriculum_cli.training.launch import read_run_inputs
from curriculum_cli.training.resolve import resolve_run_config
from curriculum_cli.training.runlock import RunLock
from curriculum_cli.training.runlock import holder as lock_holder
from curriculum_cli.training.runlog import (
    METRICS_FILE,
    last_end_record,
    read_records,
    write_json_atomic,
)
from curriculum_cli.training.settings import DEFAULTS, MEASUREMENT_FIELDS, TrainOptions
from curriculum_cli.training.storage import is_storage_problem, storage_error
from curriculum_cli.training.workers import StopRequest, WorkerPool
from curriculum_cli.training.workers import stop_request as worker_stop_request

# Settings a reused run may differ in: where the curriculum was read from, "auto"
# against the device it resolved to, and what is measured when (not the trained weights;
# compare shows differing validation settings).
_MAY_DIFFER = {"curriculum_source", "device", *MEASUREMENT_FIELDS}

PER_RUN_SETTINGS = ("curriculum", "seed", "scale")
"""The settings an A/B gives each run (from its arms, its seeds and its scale), never its
options."""

PLAN_FILE = "ab.json"
"""The A/B's question, written before any run trains: arms, seeds, scale, metric, step,
target and margin."""

AB_LOCK_FILE = "ab.lock"
"""``OUT``'s lock (``runlock``), held by the ``ab`` that plans and trains there."""


@dataclass(frozen=True)
class AbSpec:
    """One A/B: what it asks and how its runs train; checked when it is made.

    ``arms``: two or more curricula (preset names, JSON paths, or ``Curriculum``
    objects, which ``--plan`` cannot write as commands), the first the baseline
    of the verdict. Every arm trains with the seeds ``base_seed .. base_seed +
    seeds - 1`` at ``scale`` (None: 1), with ``options`` (``PER_RUN_SETTINGS``
    left unset: the A/B sets them per run), in ``out_dir``. ``at``, ``metric``,
    ``target`` and ``margin`` go to ``compare_runs``, are checked as it checks
    them (``metric``: a row of the comparison of the runs this A/B logs; a
    ``_real`` one needs ``--val-data``) and are recorded in ``OUT/ab.json``
    before anything trains: a later A/B on the same ``out_dir`` with another
    metric or step is refused (decide the question before seeing the answer;
    ``compare`` stays free for exploring).
    """

    arms: tuple[str | Curriculum, ...]
    out_dir: Path
    seeds: int = 2
    base_seed: int = 0
    scale: float | None = None
    options: TrainOptions = field(default_factory=TrainOptions)
    at: int | None = None
    metric: str = DEFAULT_METRIC
    target: float = DEFAULT_TARGET
    margin: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "arms", tuple(self.arms))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        if len(self.arms) < 2:
            raise PepcurrError("an A/B needs at least two curricula")
        if self.seeds < 1:
            raise PepcurrError(f"--seeds must be >= 1, got {self.seeds}")
        check_question(self.metric, self.target, self.at, self.margin,
                       real_validation=bool(self.options.val_data))  # fmt: skip
        per_run = [name for name in PER_RUN_SETTINGS if name in self.options.given()]
        if per_run:
            raise PepcurrError(f"an A/B sets {', '.join(per_run)} per run: give its arms, "
                               "seeds and scale instead of options")  # fmt: skip

    @property
    def seed_values(self) -> range:
        return range(self.base_seed, self.base_seed + self.seeds)

    def run_options(self, arm: str | Curriculum, seed: int) -> TrainOptions:
        """The options of the run of ``arm`` with ``seed``."""
        return self.options.model_copy(update={"curriculum": arm, "seed": seed,
                                               "scale": self.scale})  # fmt: skip


@dataclass(frozen=True)
class AbPlan:
    """What an A/B trains, decided before anything trains (``plan_ab``).

    ``run_dirs``: every run, arm after arm (as ``compare`` reads them);
    ``chains``: what is left to train, lists of segments each trained in order
    (one per seed, one per interrupted run), independent of one another;
    ``run_options``: each run directory's options; ``reused``: runs finished
    already; ``steps_saved`` of ``steps_total``: steps shared prefixes train
    once for several arms.
    """

    spec: AbSpec
    run_dirs: tuple[Path, ...]
    chains: tuple[tuple[Segment, ...], ...]
    run_options: dict[Path, TrainOptions]
    reused: tuple[Path, ...]
    steps_saved: int
    steps_total: int


@dataclass
class AbResult:
    """The runs of an A/B and the comparison.

    ``actions``: run directory -> ``trained``, ``forked at step N`` (continued
    from a shared prefix), ``resumed`` or ``reused``; ``steps_saved``: steps
    not trained thanks to shared prefixes; ``interrupted`` when Ctrl-C or SIGTERM
    stopped a run (re-run the same command to resume), ``stop_signal`` the signal
    (None for a run stopped by a signal to it alone).
    """

    run_dirs: list[Path]
    actions: dict[str, str]
    comparison: Comparison | None = None
    plot: Path | None = None
    interrupted: bool = False
    stop_signal: int | None = None
    steps_saved: int = 0
    steps_total: int = 0
    messages: list[str] = field(default_factory=list)


def _arm_names(curricula) -> list[str]:
    names = [curriculum.name for curriculum in curricula]
    if len(set(names)) == len(names):
        return names
    return [f"{index}-{name}" for index, name in enumerate(names)]


def _state(run_dir: Path, asked: RunConfig) -> str:
    """``new``, ``finished`` or ``resume``; a ``RunError`` if the directory holds another run
    or another process trains it."""
    training = lock_holder(run_dir)
    if training is not None:
        raise RunError(
            f"{run_dir} is being trained by another process (pid {training}); wait for it to "
            "finish or stop it, or use another --out"
        )
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


def run_ab(spec: AbSpec, plot: Path | str | None = None, jobs: int = 1,
           reporter=None) -> AbResult:  # fmt: skip
    """Train every arm of ``spec`` with every seed here (``train_locally``), then compare.

    ``plot`` (default ``OUT/curves.png``) receives the curves; ``reporter``
    (the training loop's ``Reporter``) shows progress. ``jobs``: chains trained
    at once (``train_locally``).
    """
    lock = RunLock(spec.out_dir, AB_LOCK_FILE)
    try:
        plan = plan_ab(spec, reporter.message if reporter else None, lock)
        result = AbResult(run_dirs=list(plan.run_dirs), actions={},
                          steps_saved=plan.steps_saved, steps_total=plan.steps_total)  # fmt: skip
        for run_dir in plan.reused:
            result.actions[str(run_dir)] = "reused"
            tell(reporter, result, f"{run_dir.name}: finished already, reused")
        if plan.steps_saved:
            saved = f"{plan.steps_saved:,} of {plan.steps_total:,}"
            tell(reporter, result, f"shared prefixes: {saved} steps trained once for several "
                                    "arms")  # fmt: skip
        device = spec.options.device or DEFAULTS["device"]
        train_locally(plan.chains, jobs, result, reporter, device)
    finally:
        lock.release()
    if result.interrupted:
        by = f" by {signal.Signals(result.stop_signal).name}" if result.stop_signal else ""
        tell(reporter, result, f"interrupted{by}; run the same command to resume")
        return result

    result.comparison = compare_runs(result.run_dirs, at=spec.at, metric=spec.metric,
                                     target=spec.target, margin=spec.margin)  # fmt: skip
    from curriculum_cli.analysis.plots import plot_curves

    plot = Path(plot) if plot else spec.out_dir / "curves.png"
    result.plot = plot_curves(result.comparison, plot)
    return result


def plan_commands(spec: AbSpec) -> list[str]:
    """``pepcurr ab --plan``: the shell command of every training segment ``run_ab`` would run.

    In an order that runs them one after another (a shared prefix, then the
    runs forked from it, then the prefix's own run trained on); the chains of
    different seeds do not depend on each other. Finished runs are left out.
    ``OUT/ab.json`` is written as by ``run_ab``; ``run_ab`` (or ``compare``) on
    the same ``out_dir`` gathers the runs once the commands have run.
    """
    for arm in spec.arms:  # an option the command line cannot give fails before planning
        spec.run_options(arm, spec.base_seed).command_words()
    lock = RunLock(spec.out_dir, AB_LOCK_FILE)
    try:
        plan = plan_ab(spec, lock=lock)
    finally:
        lock.release()
    return [segment_command(segment, plan.run_options[segment.run_dir])
            for chain in plan.chains for segment in chain]  # fmt: skip


def segment_command(segment: Segment, options: TrainOptions) -> str:
    """The ``pepcurr train`` line of one segment (``shlex``-quoted); ``options``: its run's."""
    words = ["pepcurr", "train", "--out", str(segment.run_dir)]
    if segment.start != 0 and segment.copy_from is None:  # the run's own checkpoint
        words.append("--resume")
    else:
        words += options.command_words()
        if segment.copy_from is not None:
            words += ["--fork-from", str(segment.copy_from)]
    if segment.stop is not None:
        words += ["--max-steps", str(segment.stop)]
    return shlex.join(words)


def plan_ab(spec: AbSpec, message=None, lock: RunLock | None = None) -> AbPlan:
    """Every run's config and state, checked before anything trains; what is left to train.

    Reads what the options point at once for every run (``launch.read_run_inputs``:
    ``message(text)`` hears the data files indexed) and records the question
    in ``OUT/ab.json`` (``_write_plan``). ``lock``: ``OUT``'s (``AB_LOCK_FILE``),
    taken once every run's config is resolved and before any run directory is
    read, and left held (``run_ab`` holds it until its runs have trained): another
    ``ab`` holding it is refused as a whole, as is a run directory that another
    process trains (its ``train.lock`` held), before anything is written.
    """
    from curriculum_cli.curriculum.files import load_curriculum

    out_dir = spec.out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise PepcurrError(f"{out_dir}: exists and is not a directory")
    loaded = [arm if isinstance(arm, Curriculum) else load_curriculum(arm) for arm in spec.arms]
    names = _arm_names(loaded)
    inputs = read_run_inputs(spec.options, message)

    run_options: dict[Path, TrainOptions] = {}
    configs: dict[int, list[tuple[Path, RunConfig]]] = {}
    for seed in spec.seed_values:
        for arm, name in zip(spec.arms, names, strict=True):
            run_dir = out_dir / f"{name}-s{seed}"
            run_options[run_dir] = spec.run_options(arm, seed)
            config = resolve_run_config(run_options[run_dir], inputs)
            configs.setdefault(seed, []).append((run_dir, config))
    if lock is not None:
        with _writing(out_dir):
            _hold_out_dir(lock, out_dir)
    planned = {seed: [(run_dir, config, _state(run_dir, config)) for run_dir, config in runs]
               for seed, runs in configs.items()}  # fmt: skip
    with _writing(out_dir):
        _write_plan(spec, names)

    chains: list[tuple[Segment, ...]] = []
    reused: list[Path] = []
    saved = total = 0
    for runs in planned.values():
        new = [(run_dir, config) for run_dir, config, state in runs if state == "new"]
        segments = plan_segments(new)
        saved += steps_saved(segments)
        for run_dir, config, state in runs:
            total += config.total_steps
            if state == "finished":
                reused.append(run_dir)
            elif state == "resume":
                chains.append((Segment(run_dir, config, start=-1, stop=None),))
        if segments:
            chains.append(tuple(segments))
    run_dirs = tuple(out_dir / f"{name}-s{seed}" for name in names for seed in planned)
    return AbPlan(spec=spec, run_dirs=run_dirs, chains=tuple(chains), run_options=run_options,
                  reused=tuple(reused), steps_saved=saved, steps_total=total)  # fmt: skip


@contextmanager
def _writing(out_dir: Path) -> Iterator[None]:
    """Planning writes ``OUT`` (its lock, ``ab.json``): a full disk or a directory that may
    not be written is one ``StorageError``, before anything trains."""
    try:
        yield
    except OSError as error:
        if not is_storage_problem(error):
            raise
        raise storage_error(error, out_dir, None) from error


def _hold_out_dir(lock: RunLock, out_dir: Path) -> None:
    """Take ``OUT``'s lock, or one ``RunError`` naming the ``ab`` that holds it."""
    holder = lock.try_acquire()
    if holder is not None:
        raise RunError(
            f"another pepcurr ab (pid {holder}) is training in {out_dir}; wait for it to finish "
            "or stop it, or use another --out"
        )


def _write_plan(spec: AbSpec, names: list[str]) -> None:
    """Record the A/B's question in ``OUT/ab.json``; refuse another question for the same runs.

    ``margin`` None (none declared) is recorded as such: a margin added later is another
    question too (a file from before margins existed holds none)."""
    arms = [arm.name if isinstance(arm, Curriculum) else str(arm) for arm in spec.arms]
    plan = {
        "arms": dict(zip(names, arms, strict=True)),
        "baseline": names[0],
        "seeds": list(spec.seed_values),
        "scale": spec.scale,
        "metric": spec.metric,
        "at_nominal_step": spec.at,
        "target": spec.target,
        "margin": spec.margin,
    }
    out_dir = spec.out_dir
    path = out_dir / PLAN_FILE
    if path.is_file():
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RunError(f"{path}: corrupt; delete it to plan the A/B again") from None
        changed = [key for key in ("metric", "at_nominal_step", "target", "margin", "baseline")
                   if before.get(key) != plan[key]]  # fmt: skip
        if changed:
            was = ", ".join(f"{key} {before.get(key)!r}" for key in changed)
            raise PepcurrError(
                f"{out_dir} was planned with {was}: the question of an A/B is fixed before its "
                "runs are seen. Ask it again with those values, explore with pepcurr compare, "
                "or use another --out"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, plan)


# ----------------------------------------------------------------------------
# Running a plan here: the chains in this process or in worker processes
# ----------------------------------------------------------------------------


def train_locally(chains, jobs: int, result: AbResult, reporter=None,
                  device: str = DEFAULTS["device"]) -> None:  # fmt: skip
    """Train chains of segments (an ``AbPlan``'s, or several plans' together) on this
    machine, recording each run's action in ``result``.

    ``jobs`` > 1 trains that many chains at once in worker processes
    (``workers.WorkerPool``), each with one intra-op thread; ``jobs`` = 0 picks
    the number of CPU cores on a CPU (``device``), 1 on a GPU. A run's numbers
    depend on its thread count (float summation order), not on which worker
    trains it. SIGTERM or Ctrl-C stops every run after its step in flight, with
    a checkpoint (``result.interrupted``, ``result.stop_signal``). A run's file
    that cannot be written (a full disk) stops the others the same way, then
    raises a ``StorageError``.
    """
    chains = [list(chain) for chain in chains]
    if jobs <= 0:  # auto: one single-threaded worker per core on a CPU, one on a GPU
        jobs = (os.cpu_count() or 1) if resolve_device(device).type == "cpu" else 1
    try:
        if jobs > 1 and len(chains) > 1:
            _train_in_parallel(chains, jobs, result, reporter)
            return
        with StopRequest(escalate=False) as stop:
            for segments in chains:
                _record(result, reporter, _train_segments(segments, reporter, stop))
                if result.interrupted or stop.requested:
                    break
        result.stop_signal = stop.signal
        result.interrupted = result.interrupted or stop.requested
    except StorageError as error:  # the same command resumes every run
        raise StorageError(error.what, error.fix) from None


def _train_segments(segments: list[Segment], reporter=None,
                    stop: StopRequest | None = None) -> list[tuple]:  # fmt: skip
    """Train segments in order; ``(run_dir, action, TrainResult)`` of each finished or
    interrupted run. ``stop`` (in a worker: its own): asked before each segment starts;
    the runs a stop leaves untrained are ``interrupted`` too (``_left_by_stop``).

    A run's file that cannot be written (``storage``) is a ``StorageError``.
    """
    from curriculum_cli.training.loop import train

    stop = stop if stop is not None else worker_stop_request()
    done = []
    forked_at: dict[Path, int] = {}
    for index, segment in enumerate(segments):
        if stop is not None and stop.requested:
            done += _left_by_stop(segments[index:])
            break
        run_dir, config = segment.run_dir, segment.config
        try:
            if segment.copy_from is not None:
                fork_run(segment.copy_from, run_dir, config)
                forked_at.setdefault(run_dir, segment.start)
        except OSError as error:
            if not is_storage_problem(error):
                raise
            raise storage_error(error, run_dir, checkpoint_step(run_dir)) from error
        resume = segment.start != 0  # -1: an interrupted run resumed from its own checkpoint
        if reporter is not None:
            verb = "resuming" if segment.start < 0 else "training"
            if segment.start > 0:
                verb = f"continuing from step {segment.start:,}"
            until = f" to step {segment.stop:,}" if segment.stop is not None else ""
            reporter.message(f"{run_dir.name}: {verb}{until}")
        trained = train(config, run_dir, resume=resume, max_steps=segment.stop, reporter=reporter)
        if trained.status == "interrupted":
            done.append((run_dir, "interrupted", trained))
            done += _left_by_stop([s for s in segments[index + 1 :] if s.run_dir != run_dir])
            break
        if segment.stop is None:
            action = "resumed" if segment.start < 0 else "trained"
            if run_dir in forked_at:
                action = f"forked at step {forked_at[run_dir]:,}"
            done.append((run_dir, action, trained))
    return done


def _left_by_stop(segments: list[Segment]) -> list[tuple]:
    """``(run_dir, "interrupted", TrainResult)`` of each run of segments a stop left untrained,
    at the step its log ends (0: not started)."""
    from curriculum_cli.training.loop import TrainResult

    left = {}
    for segment in segments:
        end = last_end_record(segment.run_dir)
        step = end["step"] if end is not None else 0
        left[segment.run_dir] = TrainResult(segment.run_dir, "interrupted", step,
                                            segment.config.total_steps)  # fmt: skip
    return [(run_dir, "interrupted", trained) for run_dir, trained in left.items()]


def _train_in_parallel(work: list[list[Segment]], jobs: int, result: AbResult, reporter) -> None:
    """Train the lists of segments in ``jobs`` worker processes (one thread each).

    Every 30 s the step each running run has reached is reported. SIGTERM or
    Ctrl-C reaches every worker (``WorkerPool``): each stops after its step in
    flight with a checkpoint, and work not started yet is cancelled; so does an
    error in one worker, which is raised once the others have stopped.
    """
    from concurrent.futures.process import BrokenProcessPool

    failure: Exception | None = None
    with WorkerPool(jobs, threads=1) as pool:
        futures = {pool.submit(_train_segments, segments): segments for segments in work}
        n_runs = sum(1 for segments in work for s in segments if s.stop is None)
        tell(reporter, result, f"training {n_runs} runs, {jobs} seeds at a time (one thread "
                                "each)")  # fmt: skip

        tracker = Progress(work)

        def progress(pending) -> None:
            if reporter is not None:
                reporter.message(tracker.line())

        for future in pool.finished(futures, on_wait=progress):
            if future.cancelled():  # a stop came before it started
                _record(result, reporter, _left_by_stop(futures[future]))
                continue
            try:
                _record(result, reporter, future.result())
            except BrokenProcessPool:
                if pool.stopping:  # a worker stopped while it started: nothing of it is lost
                    continue
                failure = failure or RunError(
                    "a worker process died (killed for its memory?); every run keeps its last "
                    "checkpoint: run the same command to resume"
                )
                pool.stop()
            except Exception as error:  # the first error is raised once the others stopped
                failure = failure or error
                pool.stop()
        result.stop_signal = pool.signal
        result.interrupted = result.interrupted or pool.signal is not None
    if failure is not None:
        raise failure


def _last_step(run_dir: Path) -> int:
    """The step a run's log has reached: its last train record, or the step an end record
    says it stopped at (a shared prefix stopped between two train records); 0: none yet."""
    if not (run_dir / METRICS_FILE).is_file():
        return 0
    records, _ = read_records(run_dir / METRICS_FILE)
    return max((r["step"] for r in records if r["event"] in ("train", "end")), default=0)


class Progress:
    """How far the chains have trained, read from each run's log, and when they will be done.

    Every segment counts the steps it trains: from its start (a resumed run: the step
    its log was at when this began) to its stop or its curriculum's end. A segment's
    progress is the run's last train record between the two, so a fork counts from the
    step it was copied at and a shared prefix once. The rate is over the steps
    trained since this began; ``line`` says so with an ETA.
    """

    def __init__(self, chains, clock=time.monotonic):
        self.chains = [list(chain) for chain in chains]
        self.clock = clock
        self.began = clock()
        self._start = {}
        for chain in self.chains:
            for segment in chain:
                if segment.start < 0:  # resumed: from wherever its log is now
                    self._start[id(segment)] = _last_step(segment.run_dir)
        self.total = sum(self._length(s) for chain in self.chains for s in chain)
        self.done_at_start, _ = self._done()

    def _bounds(self, segment: Segment) -> tuple[int, int]:
        start = self._start.get(id(segment), max(segment.start, 0))
        return start, segment.stop or segment.config.total_steps

    def _length(self, segment: Segment) -> int:
        start, end = self._bounds(segment)
        return max(0, end - start)

    def _done(self) -> tuple[int, list[tuple[Path, int, int]]]:
        """Steps trained so far, and (run, step, end) of each segment in progress."""
        done, running, steps = 0, [], {}
        for chain in self.chains:
            for segment in chain:
                if segment.run_dir not in steps:
                    steps[segment.run_dir] = _last_step(segment.run_dir)
                start, end = self._bounds(segment)
                trained = min(max(steps[segment.run_dir] - start, 0), end - start)
                done += trained
                if 0 < trained < end - start:
                    running.append((segment.run_dir, steps[segment.run_dir], end))
        return done, running

    def line(self) -> str:
        """``progress: 1,234 of 5,678 steps (22%), 2.1 steps/s, about 35 min left; running:
        NAME step 40/100, ...``"""
        done, running = self._done()
        elapsed = self.clock() - self.began
        rate = (done - self.done_at_start) / elapsed if elapsed > 0 else 0.0
        share = done / self.total if self.total else 1.0
        words = f"progress: {done:,} of {self.total:,} steps ({share:.0%})"
        if rate > 0:
            left = (self.total - done) / rate
            words += f", {rate:.2g} steps/s, about {_duration(left)} left"
        if running:
            words += "; running: " + ", ".join(f"{run.name} step {step}/{end}"
                                               for run, step, end in running)  # fmt: skip
        return words


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _record(result: AbResult, reporter, done: list[tuple]) -> None:
    for run_dir, action, trained in done:
        if action == "interrupted":
            result.interrupted = True
            where = f"interrupted at step {trained.step}" if trained.step else "not started"
            tell(reporter, result, f"{run_dir.name}: {where}")
            continue
        result.actions[str(run_dir)] = action
        tell(reporter, result, f"{run_dir.name}: {action}, {trained.status} at step "
                                f"{trained.step} in {trained.elapsed_s:.0f} s")  # fmt: skip


def tell(reporter, result: AbResult, message: str) -> None:
    result.messages.append(message)
    if reporter is not None:
        reporter.message(message)
