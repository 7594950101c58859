"""Set-up of a training run: everything that happens before its first step, in one object.

``setup`` builds, in this order (the order fixes the random draws): the
device, the model (weights drawn from torch's global RNG seeded with the run's
seed), the optimizer, the data streams (one seeded generator per data shard),
the batch source, the validation sets, the stability monitor and the stage
schedule; then it loads ``--init-from`` weights, joins the process group
(``torchrun``), takes the run directory's lock, writes ``run.json`` for a new
run or restores the checkpoint for a resumed one (the log cut back to the
checkpoint), and opens the log (and TensorBoard). ``TrainingRun`` holds all
of it for the loop (``loop.train``); its methods are the loop's recurring
chores: read the pending step values, validate, checkpoint.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path

import torch

from curriculum_cli import __version__
from curriculum_cli.curriculum.schedule import StageSchedule, gate_metric_values
from curriculum_cli.devices import resolve_device
from curriculum_cli.errors import RunError, TrainingError
from curriculum_cli.model.factory import (
    build_model,
    factory_provenance,
    is_factory,
    parameters_without_gradient,
)
from curriculum_cli.model.refinement import is_parallel, refinement_logits
from curriculum_cli.spectra.batch_source import BatchSource, load_real_spectra
from curriculum_cli.spectra.chemistry import MAX_CHARGE
from curriculum_cli.training.checkpoint import (
    CHECKPOINT_FILE,
    CKPT_COUNTERS,
    CKPT_GENERATOR,
    CKPT_LOG_BYTES,
    CKPT_MODEL,
    CKPT_OPTIMIZER,
    CKPT_RECENT_TERMS,
    CKPT_RNG,
    CKPT_STAGE_INDEX,
    CKPT_STAGE_SCHEDULE,
    CKPT_STEP,
    CKPT_VOCAB,
    build_run_model,
    load_initial_weights,
    read_checkpoint,
    save_checkpoint,
    vocab_record,
)
from curriculum_cli.training.config import RUN_FILE, RunConfig, run_json
from curriculum_cli.training.distributed import Distributed, check_world_size
from curriculum_cli.training.runlock import RunLock
from curriculum_cli.training.runlog import (
    METRICS_FILE,
    MetricsWriter,
    last_end_record,
    rewind_log,
    write_json_atomic,
)
from curriculum_cli.training.stability import StabilityMonitor, StepOutcome
from curriculum_cli.training.tensorboard_log import TENSORBOARD_DIR, TensorBoardLog
from curriculum_cli.training.validation import (
    make_validation_sets,
    stage_spectrum_settings,
    validate,
)


def data_seed(seed: int, shard: int) -> int:
    """Seed of data shard ``shard`` of a run (shard 0: the one stream of a run without shards)."""
    return seed * 1_000_003 + shard


class _NoLog:
    """The metrics log of a rank other than 0: records are made, never written."""

    size = 0

    def write(self, event: str, step: int, **fields) -> dict:
        return {"event": event, "step": int(step), **fields}

    def close(self) -> None:
        pass


@dataclass
class PendingStep:
    """An update's values still on the device, read and judged at the next logging step."""

    step: int  # steps completed after it
    loss: torch.Tensor  # the run's loss (mean over ranks)
    terms: torch.Tensor  # its terms, in ``loop.LOSS_TERMS`` order
    grad_norm: torch.Tensor  # before clipping
    weights: dict[str, float]  # the auxiliary loss weights it was trained with


@dataclass
class TrainingRun:
    """What the training loop works with, built by ``setup`` from a ``RunConfig``.

    ``step`` counts updates completed, ``validations`` validations made; both
    are restored on resume. ``forward`` is the model as the loop calls it
    (through ``DistributedDataParallel`` under torchrun). ``generators`` are
    this rank's data streams (its data shards).
    """

    config: RunConfig
    run_dir: Path
    device: torch.device
    ranks: Distributed
    model: torch.nn.Module
    forward: torch.nn.Module
    params: list[torch.Tensor]
    optimizer: torch.optim.Optimizer
    generators: list[torch.Generator]
    batches: BatchSource  # a shard's batch: synthetic, real or a mix, drawn with one generator
    masses: torch.Tensor  # residue masses (Da) of the residue tokens, for the losses
    n_terminal: torch.Tensor | None  # which residue tokens are N-terminal (None: none are)
    val_sets: dict
    monitor: StabilityMonitor
    schedule: StageSchedule  # the stage in force, gates resolved
    log: MetricsWriter | _NoLog
    board: TensorBoardLog | None = None
    step: int = 0
    validations: int = 0
    pending: list[PendingStep] = field(default_factory=list)

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT_FILE

    def known_introductions(self) -> list[int]:
        """Introduction steps known so far (gradients are measured densely around them): a
        gated stage's is known once it has started, so its window is dense only after it."""
        return [at for at in self.schedule.introductions().values() if at is not None]

    def read_pending(self) -> StepOutcome | None:
        """Read the pending steps from the device (one sync) and apply the stability rules.

        Returns the last step's outcome (None when nothing was pending).
        """
        outcome = None
        if not self.pending:
            return outcome
        values = torch.stack(
            [torch.cat([p.loss.view(1), p.terms, p.grad_norm.view(1)]) for p in self.pending]
        )
        for pending, row in zip(self.pending, values.tolist(), strict=True):
            outcome = StepOutcome(pending.step, row[0], tuple(row[1:-1]), row[-1], pending.weights)
            event = self.monitor.observe(outcome)
            if event is not None:
                self.log.write(event.event, event.step, **event.fields)
        self.pending.clear()
        return outcome

    def stop_if_unstable(self) -> None:
        """After too many non-finite steps in a row: a checkpoint, then a ``TrainingError``."""
        if self.monitor.must_stop:
            self.checkpoint()
            raise TrainingError(
                f"{self.monitor.consecutive_skipped} non-finite steps in a row at step "
                f"{self.step}; stopped. The last checkpoint is {self.checkpoint_path}; try a "
                "lower --lr or smaller loss weights"
            )

    def stop_agreed(self, requested: bool) -> bool:
        """Whether to stop after this step, as asked (Ctrl-C, SIGTERM). Under torchrun every
        rank stops after the same step: when any was asked, decided at logging steps (a sync)."""
        if not self.ranks.active:
            return requested
        if self.step % self.config.log_every:
            return False
        asked = self.ranks.mean(torch.tensor([float(requested)], device=self.device))
        return bool(asked > 0)

    def validate(self) -> dict:
        """Rank 0 validates every set; every rank takes the gate values, so that stages start
        alike everywhere. Decoded metrics at every ``decode_every``-th validation."""
        decode = self.validations % self.config.decode_every == 0
        self.validations += 1
        results = {}
        if self.ranks.is_main:
            for split, val_batch in self.val_sets.items():
                results[split] = validate(self.model, val_batch, self.config, self.masses, decode,
                                          self.n_terminal)  # fmt: skip
                self.log.write("val", self.step, split=split, **results[split])
        gates = self.ranks.broadcast(gate_metric_values(results) if self.ranks.is_main else None)
        self.schedule.record_validation(self.step, gates)
        return results

    def logits(self, batch) -> torch.Tensor:
        """The training forward pass: the model's refinement steps ``[S, B, T, V]`` (one step
        for an autoregressive model), through DDP under torchrun."""
        return refinement_logits(self.model, batch, self.forward)

    def checkpoint(self) -> None:
        """Write ``last.pt`` (rank 0, atomically) with every rank's data-stream state and
        global random generators."""
        self.read_pending()
        mine = [generator.get_state() for generator in self.generators]
        gathered = self.ranks.gather((mine, self._global_rng_state()))
        states = [state for rank_states, _ in gathered for state in rank_states]
        if self.ranks.is_main:
            state = self.state_dict(
                states[0] if len(states) == 1 else torch.stack(states),
                [rng for _, rng in gathered],
            )
            save_checkpoint(self.checkpoint_path, {**state, CKPT_LOG_BYTES: self.log.size})

    def _global_rng_state(self) -> dict[str, torch.Tensor]:
        """torch's global generators this process draws from outside the data streams
        (dropout, a user model's own draws): the CPU's, and on a GPU its device's."""
        state = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def state_dict(
        self, generator_states: torch.Tensor, rng_states: list[dict[str, torch.Tensor]]
    ) -> dict:
        """The checkpoint's content (its keys: ``checkpoint.CKPT_*``); ``generator_states``:
        every data shard's generator state, ``[shards, n]`` (one shard: ``[n]``);
        ``rng_states``: every rank's global generators (``_global_rng_state``)."""
        monitor = self.monitor.state_dict()
        return {
            CKPT_MODEL: self.model.state_dict(),
            CKPT_OPTIMIZER: self.optimizer.state_dict(),
            CKPT_STEP: self.step,
            CKPT_STAGE_INDEX: self.schedule.index,
            CKPT_STAGE_SCHEDULE: self.schedule.state_dict(),
            CKPT_GENERATOR: generator_states,
            CKPT_COUNTERS: {**monitor["counters"], "validations": self.validations},
            CKPT_RECENT_TERMS: monitor["recent_terms"],
            CKPT_RNG: rng_states,
            CKPT_VOCAB: vocab_record(self.config.vocab),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a checkpoint as ``checkpoint.read_checkpoint`` reads it (this rank's
        data shards)."""
        self.model.load_state_dict(state[CKPT_MODEL])
        self.optimizer.load_state_dict(state[CKPT_OPTIMIZER])
        states = state[CKPT_GENERATOR]
        states = states.unsqueeze(0) if states.dim() == 1 else states  # one shard: stored flat
        first = self.ranks.rank * len(self.generators)
        for generator, generator_state in zip(
            self.generators, states[first : first + len(self.generators)], strict=True
        ):
            generator.set_state(generator_state.clone())  # a row of its own (set_state reads it)
        counters = state[CKPT_COUNTERS]
        self.monitor.load_state_dict(
            {"counters": counters, "recent_terms": state[CKPT_RECENT_TERMS]}
        )
        self.schedule.load_state_dict(state[CKPT_STAGE_SCHEDULE])
        self.step, self.validations = int(state[CKPT_STEP]), int(counters["validations"])
        if state[CKPT_RNG] is not None:  # None: saved before they were (left as seeded)
            rng = state[CKPT_RNG][self.ranks.rank]
            torch.set_rng_state(rng["cpu"])
            if self.device.type == "cuda" and "cuda" in rng:
                torch.cuda.set_rng_state(rng["cuda"], self.device)

    def close(self) -> None:
        self.log.close()
        if self.board is not None:
            self.board.close()


def setup(
    config: RunConfig,
    run_dir: Path,
    ranks: Distributed,
    lock: RunLock,
    resume: bool,
    tensorboard: bool,
    allow_changed_model: bool = False,
) -> TrainingRun:
    """Everything the loop needs, for a new run (``run.json`` written) or a resumed one.

    A bad device or model fails before anything is written; a second process
    on the same run directory stops at the lock. A resumed run's factory file must
    be the one it recorded, unless ``allow_changed_model``
    (``checkpoint.build_run_model``).
    """
    check_world_size(config.world_size, ranks.world_size, run_dir)
    device = ranks.device(resolve_device(config.device))

    torch.manual_seed(config.seed)  # model initialisation
    if resume:  # a run's own model (a fork's too): its factory file as the run recorded it
        model = build_run_model(config, run_dir, allow_changed_model).to(device)
    else:
        model = build_model(config.model, config.architecture, config.vocab).to(device)
    _check_model_fits_run(model, config, ranks)
    params = [p for p in model.parameters() if p.requires_grad]
    # fused: the kernel can skip a non-finite step on the device (see loop's docstring)
    optimizer = torch.optim.AdamW(
        params, lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.999), fused=True
    )
    per_rank = config.data_shards // config.world_size
    shards = range(ranks.rank * per_rank, (ranks.rank + 1) * per_rank)
    generators = [torch.Generator(device=device).manual_seed(data_seed(config.seed, shard))
                  for shard in shards]  # fmt: skip
    real = None
    if config.train_data:
        real = load_real_spectra(config.train_data, config.vocab, MAX_CHARGE, config.skip_invalid)
    batches = BatchSource(config.batch_size // config.data_shards, config.vocab, device, real,
                          lambda stage: stage_spectrum_settings(config, stage))  # fmt: skip
    batches.check(config.curriculum.stages)
    val_sets = make_validation_sets(config, device)
    if not resume and config.init_from is not None:  # fine-tuning: a trained model's weights
        load_initial_weights(model, config)

    ranks.init(device)
    ranks.on_main(lock.acquire)  # a second process on this run directory stops here
    if not resume:
        ranks.on_main(lambda: _create_run_dir(run_dir, config, device))
    forward = model  # training forward passes: through DDP (gradients averaged) on several ranks
    if ranks.active:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    run = TrainingRun(
        config=config, run_dir=run_dir, device=device, ranks=ranks, model=model, forward=forward,
        params=params, optimizer=optimizer, generators=generators, batches=batches,
        masses=config.vocab.residue_masses(device=device)[2:],  # residue tokens only
        n_terminal=(config.vocab.n_terminal_mask(device)[2:]
                    if config.vocab.n_terminal_ids else None),
        val_sets=val_sets,
        monitor=StabilityMonitor(
            config.max_consecutive_skips, config.spike_factor, config.spike_window
        ),
        schedule=StageSchedule(config.curriculum), log=_NoLog(),
    )  # fmt: skip
    if resume:
        state = read_checkpoint(run.checkpoint_path, config)
        run.load_state_dict(state)
        # What was logged after the checkpoint is logged again by the resumed run (rank 0 writes).
        if ranks.is_main:
            rewind_log(run_dir / METRICS_FILE, run.step, state[CKPT_LOG_BYTES])
    if tensorboard:  # event files mirror metrics.jsonl (the source of truth); rank 0 only
        run.board = TensorBoardLog(
            run_dir / TENSORBOARD_DIR, purge_step=run.step + 1 if resume else None
        )
        if not resume:
            run.board.write_hparams(config)
    if ranks.is_main:
        run.log = MetricsWriter(
            run_dir / METRICS_FILE, mirror=run.board.write if run.board else None
        )
    if resume:
        run.log.write("resume", run.step)
    return run


def _check_model_fits_run(model: torch.nn.Module, config: RunConfig, ranks: Distributed) -> None:
    """A ``RunError`` when the model cannot train this run: a parallel model's canvas is
    shorter than the curriculum's peptides, or (torchrun) a parameter gets no gradient.

    A world's peptides of ``max_length`` residues may carry an N-terminal token on top
    (``simulator``), when the vocabulary has such tokens: then the canvas needs one more.
    """
    extra = 1 if config.curriculum.world is not None and config.vocab.n_terminal_ids else 0
    if is_parallel(model) and config.curriculum.max_length + extra > model.max_peptide_length:
        plus = " plus an N-terminal token" if extra else ""
        raise RunError(
            f"--model {config.model}: a parallel model of at most {model.max_peptide_length} "
            f"tokens cannot train on the curriculum's peptides of up to "
            f"{config.curriculum.max_length} residues{plus}"
        )
    if ranks.active:
        unused = parameters_without_gradient(model, config.vocab)
        if unused:
            names = ", ".join(unused[:5]) + (", ..." if len(unused) > 5 else "")
            raise RunError(
                f"--model {config.model}: parameters without a gradient ({names}): torchrun's "
                "DistributedDataParallel needs every trainable parameter in the loss; freeze "
                "them (requires_grad=False) or make them buffers"
            )


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
