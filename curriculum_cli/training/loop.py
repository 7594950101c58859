"""The training loop: a curriculum drives data and loss weights step by step.

``train`` sets up (``setup``: run directory, model, optimizer, data generator,
validation sets, resume) and then runs one ``while`` loop that reads top to
bottom like nanoGPT's ``train.py``: the curriculum's stage at this step gives
the data settings and the loss weights; the batch source (``spectra.batch_source``) draws
the batch: synthetic spectra generated on the device, real spectra from the
``--train-data`` stores, or a mix (the stage's ``real_fraction``); the model's
prediction (teacher-forced, or a parallel model's refinement steps, each
weighted: ``model.refinement``) gives CE, spectrum and precursor loss; every
``grad_every`` steps the gradient of each loss is measured separately; the
update is applied unless the loss or gradient is not finite; at logging steps
the step values are read from the device, the stability rules applied
(``stability``), and a ``train`` record written (a model with several refinement
steps adds each step's own terms, ``by_step_fields``); validation runs on two fixed
sets (three with ``--val-data``); ``last.pt`` is written atomically. A record's
``steps_per_s`` is the speed of training alone: the time of validations, gradient
measurements and checkpoints is set aside (``wall_s`` is the wall-clock time).

Device reads (``.item()``, ``.tolist()``: a CPU-GPU sync point) happen only
at logging, validation, gradient-measurement and checkpoint steps (the clock of
the time set aside waits for the device there too, ``_synced_clock``). A
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
``val_seed`` (validation sets); torch's global generators (a model's dropout)
are seeded with the run's seed before the model is built. Every piece of state
they touch is in the checkpoint, so a resumed run on the CPU reproduces the
uninterrupted one bit for bit.

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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from curriculum_cli.curriculum.schema import AUXILIARY_LOSSES
from curriculum_cli.errors import RunError
from curriculum_cli.model.losses import StepTerms, sharded_loss_terms, total_loss
from curriculum_cli.model.metrics import residue_accuracy, token_accuracy
from curriculum_cli.model.refinement import step_weights
from curriculum_cli.spectra.batch import concat_batches
from curriculum_cli.training.checkpoint import CHECKPOINT_FILE, checkpoint_step
from curriculum_cli.training.config import RUN_FILE, RunConfig, read_run_config
from curriculum_cli.training.distributed import Distributed
from curriculum_cli.training.gradients import measure_gradients, measured_at
from curriculum_cli.training.runlock import RunLock
from curriculum_cli.training.runlog import last_end_record
from curriculum_cli.training.setup import PendingStep, TrainingRun, setup
from curriculum_cli.training.storage import is_storage_problem, storage_error
from curriculum_cli.training.tensorboard_log import require_tensorboard
from curriculum_cli.training.workers import StopRequest

LOSS_TERMS = ("ce", *AUXILIARY_LOSSES)
"""The loss terms in the order records and the stability monitor list them."""


LossHook = Callable[[int, torch.Tensor], torch.Tensor]
"""``(step, loss) -> loss``: a test-only hook to inject faults (never saved in ``run.json``)."""


class Reporter(Protocol):
    """Receives progress; the CLI passes a rich progress bar, tests pass nothing."""

    def start(self, total_steps: int, start_step: int) -> None: ...
    def update(self, step: int, record: dict) -> None: ...
    def message(self, text: str) -> None: ...
    def finish(self) -> None: ...


class SilentReporter:
    """A ``Reporter`` that shows nothing (tests, ranks other than 0)."""

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
    """How a call of ``train`` ended; everything else is in the run directory."""

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


def train(
    config: RunConfig,
    run_dir: Path | str,
    resume: bool = False,
    max_steps: int | None = None,
    reporter: Reporter | None = None,
    loss_hook: LossHook | None = None,
    tensorboard: bool = False,
    allow_changed_model: bool = False,
) -> TrainResult:
    """Train (or resume) a run to the end of its curriculum, or to ``max_steps``.

    ``max_steps`` stops after that step with a checkpoint, as if interrupted;
    ``resume`` then continues (with the run's own ``run.json``, not
    ``config``). ``tensorboard``: also write every log record to TensorBoard
    event files (``tensorboard_log``). ``allow_changed_model``: resume a factory's
    model from its file even when the file changed since the run recorded it
    (``checkpoint.build_run_model``). Returns a summary; everything else is in
    the run directory. Under ``torchrun`` every rank calls this; rank 0 alone
    writes (``distributed``), and holds the run directory's lock (``runlock``). A full
    disk or a file that may not be written is a ``StorageError`` naming the file and the
    intact checkpoint (``storage``).
    """
    if tensorboard:
        require_tensorboard("--tensorboard")
    run_dir = Path(run_dir)
    ranks = Distributed.from_env()
    reporter = reporter if reporter is not None and ranks.is_main else SilentReporter()
    lock = RunLock(run_dir)
    try:
        if resume:
            end = last_end_record(run_dir) if (run_dir / RUN_FILE).is_file() else None
            if end is not None and end["status"] == "finished":
                reporter.message(f"{run_dir}: already finished at step {end['step']}")
                return TrainResult(run_dir, "finished", end["step"], end["step"])
            config = read_run_config(run_dir)
            if not (run_dir / CHECKPOINT_FILE).is_file():
                raise RunError(f"{run_dir}: no {CHECKPOINT_FILE} to resume from")
        run = setup(config, run_dir, ranks, lock, resume, tensorboard and ranks.is_main,
                    allow_changed_model)  # fmt: skip
        return _loop(run, max_steps, reporter, loss_hook)
    except OSError as error:  # a full disk, a file that may not be written: one clear line
        if not is_storage_problem(error):
            raise
        raise storage_error(error, run_dir, checkpoint_step(run_dir)) from error
    finally:
        lock.release()
        ranks.close()


def by_step_fields(
    step_terms: StepTerms, average: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> dict[str, list[float | None]]:
    """A record's ``<term>_by_step`` fields: each refinement step's own unweighted loss term,
    first step first, None where the step's weight for it is 0 (not computed); ``average``
    (data-parallel ranks: the mean over ranks) is applied to them first. One device read."""
    present = [(name, i) for name in LOSS_TERMS
               for i, value in enumerate(step_terms[name]) if value is not None]  # fmt: skip
    stacked = torch.stack([step_terms[name][i].float() for name, i in present])
    values = (stacked if average is None else average(stacked)).tolist()
    fields: dict[str, list[float | None]] = {
        f"{name}_by_step": [None] * len(step_terms[name]) for name in LOSS_TERMS
    }
    for (name, i), value in zip(present, values, strict=True):
        fields[f"{name}_by_step"][i] = value
    return fields


def _synced_clock(device: torch.device) -> float:
    """``time.perf_counter()`` once the device has done the work queued so far (a sync on a
    GPU), so that a section timed from here is charged its own work only."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _loop(
    run: TrainingRun, max_steps: int | None, reporter: Reporter, loss_hook: LossHook | None
) -> TrainResult:
    """The steps from ``run.step`` to the end (or ``max_steps``), then the end record."""
    config, model, optimizer, monitor = run.config, run.model, run.optimizer, run.monitor
    total_steps = config.total_steps
    stop_at = total_steps if max_steps is None else min(max_steps, total_steps)
    use_bf16 = run.device.type == "cuda"
    introductions = run.known_introductions()
    final_val: dict = {}
    status = "finished"
    mid_step = False  # a second Ctrl-C stopped a step half-way: the ranks are not in step
    started = time.perf_counter()
    reporter.start(total_steps, run.step)
    model.train()
    try:
        with StopRequest() as stop:
            if run.step == 0:
                final_val = run.validate()
            # steps_per_s: training alone; validation, gradients and checkpoints are set aside
            window_start, window_steps, window_aside_s = time.perf_counter(), 0, 0.0
            while run.step < stop_at:
                # --- the curriculum at this step: data settings and loss weights
                new_stage = run.schedule.advance(run.step)  # the next stage, if it starts here
                stage = run.schedule.stage
                weights = stage.loss_weights
                if new_stage is not None:
                    run.log.write("stage", run.step, stage=stage.name,
                                  stage_index=new_stage.index,
                                  **{f"w_{name}": w for name, w in weights.items()},
                                  **new_stage.gate_fields())  # fmt: skip
                    reporter.message(f"step {run.step}: stage {stage.name}")
                    introductions = run.known_introductions()
                lr = learning_rate(run.step, config)
                for group in optimizer.param_groups:
                    group["lr"] = lr

                # --- forward: this rank's shards (synthetic, real or both) -> model -> losses
                batch = concat_batches([run.batches.draw(stage, g) for g in run.generators])
                with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    logits = run.logits(batch)  # [S, B, T, V]: S = 1 unless refinement steps
                shards = len(run.generators)  # the loss is the mean over this rank's shards
                terms, step_terms = sharded_loss_terms(logits.float(), batch, run.masses,
                                                       config.spectrum_sigma_da, shards,
                                                       step_weights(run.model, len(logits)),
                                                       run.n_terminal)  # fmt: skip
                loss = total_loss(terms, weights)
                if loss_hook is not None:
                    loss = loss_hook(run.step, loss)
                # the run's loss and terms: the mean over ranks (every rank decides on them)
                run_values = run.ranks.mean(
                    torch.stack([loss.detach(), *(terms[k].detach() for k in LOSS_TERMS)])
                )

                # --- gradient strength of each loss, measured before the update
                measure = measured_at(run.step, config.grad_every, introductions, total_steps)
                if measure and bool(torch.isfinite(run_values[1:]).all()):
                    aside_from = _synced_clock(run.device)
                    measured = measure_gradients(terms, run.params, weights, run.ranks.mean)
                    run.log.write("grad", run.step, stage=stage.name, **measured)
                    window_aside_s += time.perf_counter() - aside_from

                # --- backward and update; a non-finite step is skipped on the device
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(run.params, config.grad_clip)
                # the run's loss and its averaged gradients: the same decision on every rank
                finite = torch.isfinite(run_values[0]) & torch.isfinite(grad_norm)
                optimizer.found_inf = (~finite).float()  # fused AdamW: 1 = leave everything
                optimizer.step()
                run.step += 1
                run.pending.append(PendingStep(run.step, run_values[0], run_values[1:],
                                               grad_norm.detach(), weights))  # fmt: skip

                # --- logging (values read from the device here only), validation, checkpoint
                step = run.step
                window_steps += 1
                if step % config.log_every == 0 or step == total_steps:
                    last = run.read_pending()
                    run.stop_if_unstable()
                    now = time.perf_counter()
                    training_s = now - window_start - window_aside_s
                    record = run.log.write(
                        "train", step, stage=stage.name, loss=last.loss,
                        **dict(zip(LOSS_TERMS, last.terms, strict=True)),
                        **(by_step_fields(step_terms, run.ranks.mean) if len(logits) > 1 else {}),
                        **{f"w_{name}": w for name, w in weights.items()},
                        residue_accuracy=residue_accuracy(logits[-1].detach(), batch.tokens),
                        token_accuracy=token_accuracy(logits[-1].detach(), batch.tokens),
                        lr=lr, grad_norm=last.grad_norm, skipped=monitor.skipped,
                        spikes=monitor.spikes,
                        steps_per_s=window_steps / max(training_s, 1e-9),
                        wall_s=now - started,
                    )  # fmt: skip
                    window_start, window_steps, window_aside_s = now, 0, 0.0
                    reporter.update(step, record)
                if step % config.val_every == 0 or step == total_steps:
                    aside_from = _synced_clock(run.device)
                    final_val = run.validate()
                    window_aside_s += time.perf_counter() - aside_from
                stopping = run.stop_agreed(stop.requested)
                if step % config.checkpoint_every == 0 or step == stop_at or stopping:
                    aside_from = _synced_clock(run.device)
                    run.checkpoint()
                    window_aside_s += time.perf_counter() - aside_from
                if stopping:
                    status = "interrupted"
                    break
            if status == "finished" and run.step < total_steps:
                status = "stopped"
    except KeyboardInterrupt:
        status = "interrupted"  # a second Ctrl-C: the last checkpoint stays as it was
        mid_step = True
    except BaseException:
        status = "failed"  # the end record must not say "finished" (ab would reuse the run)
        raise
    finally:
        try:
            run.read_pending()
            elapsed_s = time.perf_counter() - started
            run.log.write("end", run.step, status=status, skipped=monitor.skipped,
                          spikes=monitor.spikes, elapsed_s=elapsed_s)  # fmt: skip
        finally:  # even when the log cannot be written (a full disk)
            run.close()
            reporter.finish()
    if not mid_step:  # every rank returns once rank 0 has written the checkpoint and end record
        run.ranks.barrier()
    return TrainResult(
        run_dir=run.run_dir, status=status, step=run.step, total_steps=total_steps,
        final_val=final_val, skipped_steps=monitor.skipped, loss_spikes=monitor.spikes,
        elapsed_s=time.perf_counter() - started,
    )  # fmt: skip
