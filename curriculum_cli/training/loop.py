"""The training loop: a curriculum drives data and loss weights step by step.

``train`` sets up (run directory, model, optimizer, data generator,
validation sets, resume) and then runs one ``while`` loop that reads top to
bottom like nanoGPT's ``train.py``: the curriculum's stage at this step gives
the data settings and the loss weights; the batch source (``realdata``) draws
the batch: synthetic spectra generated on the device, real spectra from the
``--train-data`` stores, or a mix (the stage's ``real_fraction``); the model's
teacher-forced prediction gives CE, spectrum and precursor loss; every
``grad_every`` steps the gradient of each loss is measured separately; the
update is applied unless the loss or gradient is not finite; at logging steps
the step values are read from the device, the stability rules applied
(``stability``), and a ``train`` record written; validation runs on two fixed
sets (three with ``--val-data``); ``last.pt`` is written atomically.

Device reads (``.item()``, ``.tolist()``: a CPU-GPU sync point) happen only
at logging, validation, gradient-measurement and checkpoint steps. A
non-finite step is skipped on the device: the fused AdamW kernel receives a
``found_inf`` flag (the mechanism of torch's ``GradScaler``) and leaves the
weights and its own state untouched. The skip is therefore counted, and a
run with too many non-finite steps in a row stopped, at the next logging
step (at most ``log_every`` steps later).

Steps are counted as optimizer updates completed: the update that takes the
run from step ``s`` to ``s + 1`` uses the curriculum stage in force at step
``s``. A ``StageSchedule`` decides it: for an ungated curriculum that is
``Curriculum.stage_at(s)``; a gated stage (``start_when``) starts at the first
validation at or after its earliest start whose metric reaches the threshold
(a validation at step ``v`` is used for the update from ``v`` on), or at its
``latest_step``. All random draws come from generators seeded from
the run's seed (training data: synthetic spectra and the rows of real ones) and
``val_seed`` (validation sets), and every
piece of state they touch is in the checkpoint, so a resumed run on the CPU
reproduces the uninterrupted one bit for bit.

Under ``torchrun`` every rank runs this loop on its own data shards (each
batch is ``data_shards`` sub-batches from generators seeded by seed and shard;
the loss is the mean over shards), through ``DistributedDataParallel``. The
run's loss and terms are averaged over ranks each step, so every rank takes
the same skip decision; rank 0 alone validates (and sends the gate metrics to
the others), logs and checkpoints (``distributed``). One process at the same
global batch with the same ``data_shards`` follows the same curve.
"""

from __future__ import annotations

import math
import platform
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from curriculum_cli import __version__
from curriculum_cli.curriculum.schedule import StageSchedule, gate_metric_values
from curriculum_cli.curriculum.schema import AUXILIARY_LOSSES
from curriculum_cli.devices import resolve_device
from curriculum_cli.errors import RunError, TrainingError
from curriculum_cli.model.losses import sharded_loss_terms, total_loss
from curriculum_cli.model.metrics import residue_accuracy, token_accuracy
from curriculum_cli.model.source import build_model, factory_provenance, is_factory
from curriculum_cli.spectra.batch import concat_batches
from curriculum_cli.spectra.chemistry import MAX_CHARGE
from curriculum_cli.spectra.sampling import BatchSource, load_real_spectra
from curriculum_cli.training.checkpoint import (
    CHECKPOINT_FILE,
    CKPT_COUNTERS,
    CKPT_GENERATOR,
    CKPT_LOG_BYTES,
    CKPT_MODEL,
    CKPT_OPTIMIZER,
    CKPT_RECENT_TERMS,
    CKPT_STAGE_INDEX,
    CKPT_STAGE_SCHEDULE,
    CKPT_STEP,
    checkpoint_path,
    init_source,
    load_checkpoint,
    load_initial_weights,
    save_checkpoint,
)
from curriculum_cli.training.config import RUN_FILE, RunConfig, read_run_config, run_json
from curriculum_cli.training.distributed import Distributed, check_world_size
from curriculum_cli.training.gradients import measure_gradients, measured_at
from curriculum_cli.training.options import (
    DATA_OPTIONS,
    DEFAULTS,
    build_run_config,
    index_data_options,
    resume_conflicts,
)
from curriculum_cli.training.runlock import RunLock
from curriculum_cli.training.runlog import (
    METRICS_FILE,
    MetricsWriter,
    last_end_record,
    truncate_log,
    truncate_records_after,
    write_json_atomic,
)
from curriculum_cli.training.stability import StabilityMonitor, StepOutcome
from curriculum_cli.training.tensorboard_log import (
    TENSORBOARD_DIR,
    TensorBoardLog,
    require_tensorboard,
)
from curriculum_cli.training.validation import make_validation_sets, validate

LOSS_TERMS = ("ce", *AUXILIARY_LOSSES)

LossHook = Callable[[int, torch.Tensor], torch.Tensor]
"""``(step, loss) -> loss``: a test-only hook to inject faults (never saved in ``run.json``)."""


class Reporter(Protocol):
    """Receives progress; the CLI passes a rich progress bar, tests pass nothing."""

    def start(self, total_steps: int, start_step: int) -> None: ...
    def update(self, step: int, record: dict) -> None: ...
    def message(self, text: str) -> None: ...
    def finish(self) -> None: ...


class _SilentReporter:
    def start(self, total_steps: int, start_step: int) -> None:
        pass

    def update(self, step: int, record: dict) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass
class TrainResult:
    run_dir: Path
    status: str  # finished | stopped | interrupted | failed
    step: int
    total_steps: int
    final_val: dict[str, dict] = field(default_factory=dict)
    skipped_steps: int = 0
    loss_spikes: int = 0
    elapsed_s: float = 0.0


def learning_rate(step: int, config: RunConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_fraction`` of ``lr`` at the end."""
    # 1) linear warm-up over warmup_steps
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    # 2) cosine from lr down to min_lr_fraction * lr at the last step
    progress = (step - config.warmup_steps) / max(1, config.total_steps - config.warmup_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return config.lr * (config.min_lr_fraction + (1 - config.min_lr_fraction) * cosine)


class _StopRequest:
    """Turns the first Ctrl-C (SIGINT) or SIGTERM into a flag the loop checks between steps.

    The step in flight completes, so the checkpoint is consistent; a second
    Ctrl-C interrupts at once.
    """

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


# ----------------------------------------------------------------------------
# Set-up: run directory, model, optimizer, data, resume
# ----------------------------------------------------------------------------


def _create_run_dir(run_dir: Path, config: RunConfig, device: torch.device) -> None:
    """A new run directory with ``run.json``; a ``RunError`` if it already holds a run."""
    if (run_dir / RUN_FILE).exists():
        end = last_end_record(run_dir)
        state = f"{end['status']} at step {end['step']}" if end else "incomplete"
        raise RunError(
            f"{run_dir} already holds a run ({state}); use --resume to continue it, "
            "or choose another --out"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / METRICS_FILE).unlink(missing_ok=True)
    provenance = {
        "pepcurr": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "optimizer": "AdamW (fused), betas 0.9/0.999; linear warm-up, cosine to min_lr_fraction",
    }
    if is_factory(config.model):
        provenance.update(factory_provenance(config.model))
    write_json_atomic(run_dir / RUN_FILE, run_json(config, provenance))


@dataclass
class _Parts:
    """What the loop works with, built by ``_setup`` from the config alone."""

    model: torch.nn.Module
    params: list[torch.Tensor]
    optimizer: torch.optim.Optimizer
    generators: list[torch.Generator]  # this rank's training data streams (its data shards)
    batches: BatchSource  # a shard's batch: synthetic, real or a mix, drawn with one generator
    masses: torch.Tensor  # residue masses (Da) of the residue tokens, for the losses
    val_sets: dict
    monitor: StabilityMonitor
    schedule: StageSchedule  # the stage in force, gates resolved


def data_seed(seed: int, shard: int) -> int:
    """Seed of data shard ``shard`` of a run (shard 0: the one stream of a run without shards)."""
    return seed * 1_000_003 + shard


def _setup(config: RunConfig, device: torch.device, rank: int = 0) -> _Parts:
    torch.manual_seed(config.seed)  # model initialisation
    model = build_model(config.model, config.architecture, config.vocab).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    # fused: the kernel can skip a non-finite step on the device (see the module docstring)
    optimizer = torch.optim.AdamW(
        params, lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.999), fused=True
    )
    per_rank = config.data_shards // config.world_size
    shards = range(rank * per_rank, (rank + 1) * per_rank)
    generators = [torch.Generator(device=device).manual_seed(data_seed(config.seed, shard))
                  for shard in shards]  # fmt: skip
    real = None
    if config.train_data:
        real = load_real_spectra(config.train_data, config.vocab, MAX_CHARGE, config.skip_invalid)
    batches = BatchSource(config.batch_size // config.data_shards, config.vocab, device, real)
    batches.check(config.curriculum.stages)
    return _Parts(
        model=model,
        params=params,
        optimizer=optimizer,
        generators=generators,
        batches=batches,
        masses=config.vocab.residue_masses(device=device)[2:],  # residue tokens only
        val_sets=make_validation_sets(config, device),
        monitor=StabilityMonitor(
            config.max_consecutive_skips, config.spike_factor, config.spike_window
        ),
        schedule=StageSchedule(config.curriculum),
    )


def _generator_states(parts: _Parts, ranks: Distributed) -> torch.Tensor:
    """Every data shard's generator state (all ranks'), ``[shards, n]``; one shard: ``[n]``."""
    mine = [generator.get_state() for generator in parts.generators]
    states = [state for rank_states in ranks.gather(mine) for state in rank_states]
    return states[0] if len(states) == 1 else torch.stack(states)


def _checkpoint_state(parts: _Parts, step: int, validations: int, generators) -> dict:
    monitor = parts.monitor.state_dict()
    return {
        CKPT_MODEL: parts.model.state_dict(),
        CKPT_OPTIMIZER: parts.optimizer.state_dict(),
        CKPT_STEP: step,
        CKPT_STAGE_INDEX: parts.schedule.index,
        CKPT_STAGE_SCHEDULE: parts.schedule.state_dict(),
        CKPT_GENERATOR: generators,
        CKPT_COUNTERS: {**monitor["counters"], "validations": validations},
        CKPT_RECENT_TERMS: monitor["recent_terms"],
    }


def _restore(parts: _Parts, state: dict, rank: int = 0) -> tuple[int, int]:
    """Load a checkpoint into the parts (this rank's data shards); returns ``(step, validations)``.

    A checkpoint from before gated stages has no schedule: its stages started
    as planned, so the schedule is rebuilt from ``stage_index``.
    """
    parts.model.load_state_dict(state[CKPT_MODEL])
    parts.optimizer.load_state_dict(state[CKPT_OPTIMIZER])
    states = state[CKPT_GENERATOR]
    states = states.unsqueeze(0) if states.dim() == 1 else states  # one shard: stored flat
    mine = states[rank * len(parts.generators) : (rank + 1) * len(parts.generators)]
    for generator, generator_state in zip(parts.generators, mine, strict=True):
        generator.set_state(generator_state.clone())  # a row of its own (set_state reads storage)
    counters = state[CKPT_COUNTERS]
    parts.monitor.load_state_dict({"counters": counters, "recent_terms": state[CKPT_RECENT_TERMS]})
    if CKPT_STAGE_SCHEDULE in state:
        parts.schedule.load_state_dict(state[CKPT_STAGE_SCHEDULE])
    else:
        parts.schedule.load_planned(int(state[CKPT_STAGE_INDEX]))
    return int(state[CKPT_STEP]), int(counters["validations"])


# ----------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------


class _NoLog:
    """The metrics log of a rank other than 0: records are made, never written."""

    size = 0

    def write(self, event: str, step: int, **fields) -> dict:
        return {"event": event, "step": int(step), **fields}

    def close(self) -> None:
        pass


def train(
    config: RunConfig,
    run_dir: Path | str,
    resume: bool = False,
    max_steps: int | None = None,
    reporter: Reporter | None = None,
    loss_hook: LossHook | None = None,
    tensorboard: bool = False,
) -> TrainResult:
    """Train (or resume) a run to the end of its curriculum, or to ``max_steps``.

    ``max_steps`` stops after that step with a checkpoint, as if interrupted;
    ``resume`` then continues (with the run's own ``run.json``, not
    ``config``). ``tensorboard``: also write every log record to TensorBoard
    event files (``tblog``). Returns a summary; everything else is in the run
    directory. Under ``torchrun`` every rank calls this; rank 0 alone writes
    (``distributed``), and holds the run directory's lock (``runlock``).
    """
    if tensorboard:
        require_tensorboard("--tensorboard")
    ranks = Distributed.from_env()
    lock = RunLock(Path(run_dir))
    try:
        return _train(config, Path(run_dir), ranks, lock, resume, max_steps, reporter, loss_hook,
                      tensorboard and ranks.is_main)  # fmt: skip
    finally:
        lock.release()
        ranks.close()


def _train(
    config: RunConfig,
    run_dir: Path,
    ranks: Distributed,
    lock: RunLock,
    resume: bool,
    max_steps: int | None,
    reporter: Reporter | None,
    loss_hook: LossHook | None,
    tensorboard: bool,
) -> TrainResult:
    reporter = reporter if reporter is not None and ranks.is_main else _SilentReporter()
    if resume:
        end = last_end_record(run_dir) if (run_dir / RUN_FILE).is_file() else None
        if end is not None and end["status"] == "finished":
            reporter.message(f"{run_dir}: already finished at step {end['step']}")
            return TrainResult(run_dir, "finished", end["step"], end["step"])
        config = read_run_config(run_dir)
        if not (run_dir / CHECKPOINT_FILE).is_file():
            raise RunError(f"{run_dir}: no {CHECKPOINT_FILE} to resume from")
    check_world_size(config.world_size, ranks.world_size, run_dir)
    # a bad device or model fails before anything is written
    device = ranks.device(resolve_device(config.device))
    parts = _setup(config, device, ranks.rank)
    if not resume and config.init_from is not None:  # fine-tuning: a trained model's weights
        load_initial_weights(parts.model, config)
    ranks.init(device)
    ranks.on_main(lock.acquire)  # a second process on this run directory stops here
    if not resume:
        ranks.on_main(lambda: _create_run_dir(run_dir, config, device))
    model, optimizer, monitor = parts.model, parts.optimizer, parts.monitor
    forward = model  # training forward passes: through DDP (gradients averaged) on several ranks
    if ranks.active:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    shards = len(parts.generators)  # this rank's data shards
    schedule = parts.schedule
    total_steps = config.curriculum.total_steps
    stop_at = total_steps if max_steps is None else min(max_steps, total_steps)
    use_bf16 = device.type == "cuda"
    checkpoint_path = run_dir / CHECKPOINT_FILE

    step, validations = 0, 0
    if resume:
        state = load_checkpoint(checkpoint_path)
        step, validations = _restore(parts, state, ranks.rank)
        # What was logged after the checkpoint is logged again by the resumed run.
        if not ranks.is_main:
            pass  # rank 0 alone writes the log
        elif CKPT_LOG_BYTES in state:
            truncate_log(run_dir / METRICS_FILE, int(state[CKPT_LOG_BYTES]))
        else:  # a checkpoint of pepcurr 0.1
            truncate_records_after(run_dir / METRICS_FILE, step, drop_events=("end",))
    board = None
    if tensorboard:  # event files mirror metrics.jsonl (the source of truth); rank 0 only
        board = TensorBoardLog(run_dir / TENSORBOARD_DIR, purge_step=step + 1 if resume else None)
        if not resume:
            board.write_hparams(config)
    if ranks.is_main:
        log = MetricsWriter(run_dir / METRICS_FILE, mirror=board.write if board else None)
    else:
        log = _NoLog()
    if resume:
        log.write("resume", step)

    def known_introductions() -> list[int]:
        """Introduction steps known so far (gradients are measured densely around them): a
        gated stage's is known once it has started, so its window is dense only after it."""
        return [at for at in schedule.introductions().values() if at is not None]

    introductions = known_introductions()

    # Steps since the last logging step, still on the device: (step, loss, terms, grad
    # norm, weights). Read and judged by the stability rules at the next logging step.
    pending: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, dict]] = []

    def read_pending() -> StepOutcome | None:
        """Read the pending steps from the device (one sync), apply the stability rules.

        Returns the last step's outcome (None when nothing was pending).
        """
        outcome = None
        if not pending:
            return outcome
        values = torch.stack([torch.cat([p[1].view(1), p[2], p[3].view(1)]) for p in pending])
        for (at, *_, step_weights), row in zip(pending, values.tolist(), strict=True):
            outcome = StepOutcome(at, row[0], tuple(row[1:-1]), row[-1], step_weights)
            event = monitor.observe(outcome)
            if event is not None:
                log.write(event.event, event.step, **event.fields)
        pending.clear()
        return outcome

    def checkpoint() -> None:
        read_pending()
        generators = _generator_states(parts, ranks)  # every rank's shards, to rank 0
        if ranks.is_main:
            state = _checkpoint_state(parts, step, validations, generators)
            save_checkpoint(checkpoint_path, {**state, CKPT_LOG_BYTES: log.size})

    def run_validation() -> dict:
        """Rank 0 validates; every rank takes its gate values, so stages start alike everywhere."""
        nonlocal validations
        decode = validations % config.decode_every == 0
        validations += 1
        results = {}
        if ranks.is_main:
            for split, val_batch in parts.val_sets.items():
                results[split] = validate(model, val_batch, config, parts.masses, decode)
                log.write("val", step, split=split, **results[split])
        gates = ranks.broadcast(gate_metric_values(results) if ranks.is_main else None)
        schedule.record_validation(step, gates)
        return results

    final_val: dict = {}
    status = "finished"
    mid_step = False  # a second Ctrl-C stopped a step half-way: the ranks are not in step
    started = time.perf_counter()
    reporter.start(total_steps, step)
    model.train()
    try:
        with _StopRequest() as stop:
            if step == 0:
                final_val = run_validation()
            window_start, window_steps = time.perf_counter(), 0
            while step < stop_at:
                # --- the curriculum at this step: data settings and loss weights
                new_stage = schedule.advance(step)  # the next stage, if it starts here
                stage = schedule.stage
                weights = stage.loss_weights
                if new_stage is not None:
                    log.write("stage", step, stage=stage.name, stage_index=new_stage.index,
                              **{f"w_{name}": w for name, w in weights.items()},
                              **new_stage.gate_fields())  # fmt: skip
                    reporter.message(f"step {step}: stage {stage.name}")
                    introductions = known_introductions()
                lr = learning_rate(step, config)
                for group in optimizer.param_groups:
                    group["lr"] = lr

                # --- forward: this rank's shards (synthetic, real or both) -> model -> losses
                batch = concat_batches([parts.batches.draw(stage, g) for g in parts.generators])
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    logits = forward(batch)
                terms = sharded_loss_terms(logits.float(), batch, parts.masses,
                                           config.spectrum_sigma_da, shards)  # fmt: skip
                loss = total_loss(terms, weights)
                if loss_hook is not None:
                    loss = loss_hook(step, loss)
                # the run's loss and terms: the mean over ranks (every rank decides on them)
                run_values = ranks.mean(
                    torch.stack([loss.detach(), *(terms[k].detach() for k in LOSS_TERMS)])
                )

                # --- gradient strength of each loss, measured before the update
                measure = measured_at(step, config.grad_every, introductions, total_steps)
                if measure and bool(torch.isfinite(run_values[1:]).all()):
                    measured = measure_gradients(terms, parts.params, weights, ranks.mean)
                    log.write("grad", step, stage=stage.name, **measured)

                # --- backward and update; a non-finite step is skipped on the device
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(parts.params, config.grad_clip)
                # the run's loss and its averaged gradients: the same decision on every rank
                finite = torch.isfinite(run_values[0]) & torch.isfinite(grad_norm)
                optimizer.found_inf = (~finite).float()  # fused AdamW: 1 = leave everything
                optimizer.step()
                step += 1
                pending.append((step, run_values[0], run_values[1:], grad_norm.detach(), weights))

                # --- logging (values read from the device here only), validation, checkpoint
                window_steps += 1
                if step % config.log_every == 0 or step == total_steps:
                    last = read_pending()
                    if monitor.must_stop:
                        status = "failed"
                        checkpoint()
                        raise TrainingError(
                            f"{monitor.consecutive_skipped} non-finite steps in a row at step "
                            f"{step}; stopped. The last checkpoint is {checkpoint_path}; try a "
                            "lower --lr or smaller loss weights"
                        )
                    now = time.perf_counter()
                    record = log.write(
                        "train", step, stage=stage.name, loss=last.loss,
                        **dict(zip(LOSS_TERMS, last.terms, strict=True)),
                        **{f"w_{name}": w for name, w in weights.items()},
                        residue_accuracy=residue_accuracy(logits.detach(), batch.tokens),
                        token_accuracy=token_accuracy(logits.detach(), batch.tokens),
                        lr=lr, grad_norm=last.grad_norm, skipped=monitor.skipped,
                        spikes=monitor.spikes,
                        steps_per_s=window_steps / max(now - window_start, 1e-9),
                    )  # fmt: skip
                    window_start, window_steps = now, 0
                    reporter.update(step, record)
                if step % config.val_every == 0 or step == total_steps:
                    final_val = run_validation()
                stopping = stop.requested
                if ranks.active:  # every rank stops after the same step (a sync: log steps only)
                    stopping = step % config.log_every == 0 and bool(
                        ranks.mean(torch.tensor([float(stop.requested)], device=device)) > 0
                    )
                if step % config.checkpoint_every == 0 or step == stop_at or stopping:
                    checkpoint()
                if stopping:
                    status = "interrupted"
                    break
            if status == "finished" and step < total_steps:
                status = "stopped"
    except KeyboardInterrupt:
        status = "interrupted"  # a second Ctrl-C: the last checkpoint stays as it was
        mid_step = True
    except BaseException:
        status = "failed"  # the end record must not say "finished" (ab would reuse the run)
        raise
    finally:
        read_pending()
        log.write("end", step, status=status, skipped=monitor.skipped, spikes=monitor.spikes,
                  elapsed_s=time.perf_counter() - started)  # fmt: skip
        log.close()
        if board is not None:
            board.close()
        reporter.finish()
    if not mid_step:  # every rank returns once rank 0 has written the checkpoint and end record
        ranks.barrier()
    return TrainResult(
        run_dir=run_dir,
        status=status,
        step=step,
        total_steps=total_steps,
        final_val=final_val,
        skipped_steps=monitor.skipped,
        loss_spikes=monitor.spikes,
        elapsed_s=time.perf_counter() - started,
    )


def run_training(
    run_dir: Path | str,
    options: dict,
    resume: bool = False,
    max_steps: int | None = None,
    reporter: Reporter | None = None,
    tensorboard: bool = False,
    fork_from: Path | str | None = None,
) -> TrainResult:
    """``pepcurr train``: build the config from options, or resume with the run's own.

    ``options["init_from"]`` (a run directory or checkpoint) starts the new run
    from that model's weights, with its model unless ``options["model"]`` is
    given (then the shapes must agree). ``fork_from``: a run stopped within
    the steps it shares with this one (``fork.shared_prefix``, as ``ab --plan``
    prints it); this run starts as a copy of it and trains on from its
    checkpoint. On resume, options that disagree with the stored run are
    reported and ignored: a run is continued exactly as it was started. Under
    ``torchrun`` ``batch_size`` is per rank: the run's batch is that times the
    world size.
    """
    reporter = reporter or _SilentReporter()
    run_dir = Path(run_dir)
    ranks = Distributed.from_env()
    if ranks.active:
        per_rank = options.get("batch_size") or DEFAULTS["batch_size"]
        options = {**options, "batch_size": per_rank * ranks.world_size}
        if not resume:
            options["world_size"] = ranks.world_size
    if not ranks.is_main:
        reporter = _SilentReporter()
    if not resume:
        if ranks.active:  # rank 0 indexes --train-data/--val-data; the others use its stores
            ranks.init(ranks.device(resolve_device(str(options.get("device") or "auto"))))
        options = ranks.on_main(lambda: index_data_options(options, reporter.message))
        architecture = None
        if options.get("init_from") is not None:  # --init-from: its model unless --model
            init_from, source = init_source(options["init_from"])
            options = {**options, "init_from": init_from}
            if options.get("model") is None:
                options["model"], architecture = source.model, source.architecture
        config = build_run_config(architecture=architecture, **options)
        if fork_from is not None:
            from curriculum_cli.training.fork import fork_run

            ranks.init(ranks.device(resolve_device(config.device)))  # train() keeps this group
            ranks.on_main(lambda: fork_run(Path(fork_from), run_dir, config))
        return train(config, run_dir, resume=fork_from is not None, max_steps=max_steps,
                     reporter=reporter, tensorboard=tensorboard)  # fmt: skip
    if options.get("init_from") is not None:
        options = {**options, "init_from": str(checkpoint_path(options["init_from"]).resolve())}
    stored = read_run_config(run_dir)
    data_options = {k: options.get(k) for k in DATA_OPTIONS}
    options = {k: v for k, v in options.items() if k not in DATA_OPTIONS}
    for warning in resume_conflicts(stored, options):
        reporter.message(warning)
    if data_options["train_data"] or data_options["val_data"]:
        reporter.message("warning: ignoring --train-data/--val-data: --resume continues the run "
                         "with the files it recorded in run.json")  # fmt: skip
    return train(stored, run_dir, resume=True, max_steps=max_steps, reporter=reporter,
                 tensorboard=tensorboard)  # fmt: skip
