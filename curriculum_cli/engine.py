"""The training loop: a curriculum drives data and loss weights step by step.

``train`` reads top to bottom like nanoGPT's ``train.py``: for each step, the
curriculum's stage gives the data settings and the loss weights; a synthetic
batch is generated on the device; the model's teacher-forced prediction gives
CE, spectrum and precursor loss; every few steps the gradient of each loss is
measured separately; non-finite steps are skipped and counted, loss spikes
counted; validation runs on two fixed sets; ``last.pt`` is written
atomically; everything goes to ``metrics.jsonl`` as it happens.

Steps are counted as optimizer updates completed: the update that takes the
run from step ``s`` to ``s + 1`` uses the curriculum stage at step ``s``
(``Curriculum.stage_at``). All random draws come from generators seeded from
the run's seed (training data) and ``val_seed`` (validation sets), and every
piece of state they touch is in the checkpoint, so a resumed run on the CPU
reproduces the uninterrupted one bit for bit.

DDP: the loop keeps no global state (every draw comes from explicit
generators; the data generator is seeded from the seed and the ``RANK``
environment variable), so it can be wrapped for torchrun. Not done yet:
wrapping the model in ``DistributedDataParallel`` and letting only rank 0
write the run directory.
"""

from __future__ import annotations

import math
import os
import platform
import signal
import statistics
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from curriculum_cli import __version__
from curriculum_cli.chemistry import Vocabulary
from curriculum_cli.curriculum import Curriculum
from curriculum_cli.errors import RunError, TrainingError
from curriculum_cli.gradients import measure_gradients
from curriculum_cli.losses import SPECTRUM_SIGMA_DA, loss_terms, total_loss
from curriculum_cli.metrics import decoded_metrics, residue_accuracy, token_accuracy
from curriculum_cli.model import MODEL_PRESETS, ModelConfig, PeptideTransformer
from curriculum_cli.runlog import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    RUN_FILE,
    MetricsWriter,
    last_end_record,
    read_run_config,
    truncate_records_after,
    write_json_atomic,
)
from curriculum_cli.synthetic import SpectrumSettings, generate_batch, generate_spectra

# Checkpoint keys.
CKPT_MODEL = "model"
CKPT_OPTIMIZER = "optimizer"
CKPT_STEP = "step"
CKPT_STAGE_INDEX = "stage_index"
CKPT_GENERATOR = "data_generator_state"
CKPT_COUNTERS = "counters"
CKPT_RECENT_TERMS = "recent_loss_terms"

VALIDATION_SPLITS = ("val_easy", "val_hard")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a run; saved as ``run.json``.

    ``curriculum`` is the curriculum as used (already scaled by ``scale``).
    Intervals of 0 mean "about 50 points per run" (``total_steps // 50``).
    """

    curriculum: Curriculum
    curriculum_source: str = "revised"
    scale: float = 1.0
    model: ModelConfig = MODEL_PRESETS["tiny"]
    model_preset: str = "tiny"
    vocab: Vocabulary = field(default_factory=Vocabulary.default)
    residue_distribution: str = "tryptic"  # synthetic peptides: tryptic or uniform
    seed: int = 0
    val_seed: int = 20_240_501
    device: str = "auto"
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-5
    warmup_steps: int = 0  # 0: 5% of the run, at most 1,000 steps
    min_lr_fraction: float = 0.1
    grad_clip: float = 1.0
    spectrum_sigma_da: float = SPECTRUM_SIGMA_DA
    val_every: int = 0
    val_size: int = 256
    decode_every: int = 5  # decoded-peptide metrics every N-th validation
    decode_size: int = 256
    grad_every: int = 0
    log_every: int = 10
    checkpoint_every: int = 0
    max_consecutive_skips: int = 20
    spike_factor: float = 3.0
    spike_window: int = 200
    inject_nan_steps: tuple[int, ...] = ()  # fault injection for tests: NaN loss at these steps

    @property
    def total_steps(self) -> int:
        return self.curriculum.total_steps

    def interval(self, value: int) -> int:
        return value if value > 0 else max(1, self.total_steps // 50)

    @property
    def resolved_warmup_steps(self) -> int:
        if self.warmup_steps > 0:
            return self.warmup_steps
        return max(1, min(1000, self.total_steps // 20))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["curriculum"] = self.curriculum.model_dump(mode="json")
        data["vocab"] = self.vocab.to_dict()
        data["inject_nan_steps"] = list(self.inject_nan_steps)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        data["curriculum"] = Curriculum.model_validate(data["curriculum"])
        data["model"] = ModelConfig.from_stored(data["model"])
        data["vocab"] = Vocabulary.from_dict(data["vocab"])
        data["inject_nan_steps"] = tuple(data.get("inject_nan_steps", ()))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def stored_train_config(run_dir: Path) -> TrainConfig:
    """The ``TrainConfig`` of a run directory's ``run.json``, or a ``RunError``."""
    from pydantic import ValidationError

    data = read_run_config(Path(run_dir))
    try:
        return TrainConfig.from_dict(data)
    except KeyError as error:
        raise RunError(f"{run_dir}/{RUN_FILE}: not a pepcurr run (no {error.args[0]!r})") from None
    except (TypeError, ValueError, ValidationError) as error:
        first_line = str(error).splitlines()[0]
        raise RunError(f"{run_dir}/{RUN_FILE}: invalid run configuration ({first_line})") from None


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
    status: str  # finished | stopped | interrupted
    step: int
    total_steps: int
    final_val: dict[str, dict] = field(default_factory=dict)
    skipped_steps: int = 0
    loss_spikes: int = 0
    elapsed_s: float = 0.0


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RunError("--device cuda was asked for, but torch sees no CUDA device")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise RunError(f"unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(device)


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_fraction`` of ``lr`` at the end."""
    warmup = config.resolved_warmup_steps
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, config.total_steps - warmup)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return config.lr * (config.min_lr_fraction + (1 - config.min_lr_fraction) * cosine)


def make_validation_sets(config: TrainConfig, device: torch.device) -> dict:
    """``val_easy`` (first stage's data settings) and ``val_hard`` (last stage's).

    Made from ``val_seed`` alone, so every run with the same settings sees the
    same spectra, whatever its training seed.
    """
    stages = config.curriculum.stages
    sets = {}
    for offset, (split, stage) in enumerate(
        zip(VALIDATION_SPLITS, (stages[0], stages[-1]), strict=True)
    ):
        sets[split] = generate_spectra(
            SpectrumSettings.from_stage(stage, residue_distribution=config.residue_distribution),
            config.val_size,
            config.vocab,
            seed=config.val_seed + offset,
            device=device,
        )
    return sets


@torch.no_grad()
def validate(model, batch, config: TrainConfig, masses, decode: bool) -> dict:
    """Loss terms and token accuracy on one validation set (in chunks of batch 256)."""
    model.eval()
    sums: dict[str, float] = {}
    n_total = len(batch)
    for start in range(0, n_total, 256):
        chunk = batch.select(slice(start, start + 256))
        logits = model(chunk)
        terms = loss_terms(logits, chunk, masses, config.spectrum_sigma_da)
        values = {k: v.item() for k, v in terms.items()}
        values["token_accuracy"] = token_accuracy(logits, chunk.tokens)
        values["residue_accuracy"] = residue_accuracy(logits, chunk.tokens)
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value * len(chunk)
    result = {key: value / n_total for key, value in sums.items()}
    if decode:
        subset = batch.select(slice(0, config.decode_size))
        result.update(decoded_metrics(model, subset, config.curriculum.max_length))
    model.train()
    return result


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint atomically: a temporary file, fsync, then rename.

    A crash mid-write leaves the previous ``last.pt`` untouched.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_checkpoint(path: Path) -> dict:
    """A checkpoint loaded with ``weights_only=True`` (tensors and plain data only)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunError(f"{path}: no checkpoint") from None
    except Exception as error:  # torch raises many kinds for a damaged file
        raise RunError(f"{path}: unreadable checkpoint ({type(error).__name__})") from None


def load_model(source: Path | str, device: str = "cpu") -> tuple[PeptideTransformer, TrainConfig]:
    """The trained model of a run directory or of a ``last.pt`` inside one, in eval mode."""
    source = Path(source)
    if not source.exists():
        raise RunError(f"{source}: no such run directory or checkpoint")
    run_dir = source if source.is_dir() else source.parent
    checkpoint = source / CHECKPOINT_FILE if source.is_dir() else source
    config = stored_train_config(run_dir)
    model = PeptideTransformer(config.model, config.vocab)
    model.load_state_dict(load_checkpoint(checkpoint)[CKPT_MODEL])
    return model.to(device).eval(), config


class _StopRequest:
    """Turns the first Ctrl-C (SIGINT) or SIGTERM into a flag the loop checks between steps.

    The step in flight completes, so the checkpoint is consistent; a second
    Ctrl-C interrupts at once.
    """

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        if _is_main_thread():
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


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _prepare_run_dir(run_dir: Path, config: TrainConfig, resume: bool) -> TrainConfig:
    """Create a new run directory, or check an existing one for resuming.

    Returns the config to train with (on resume: the run's own).
    """
    run_file = run_dir / RUN_FILE
    if resume:
        stored = stored_train_config(run_dir)
        if not (run_dir / CHECKPOINT_FILE).is_file():
            raise RunError(f"{run_dir}: no {CHECKPOINT_FILE} to resume from")
        return stored
    if run_file.exists():
        end = last_end_record(run_dir)
        state = f"{end['status']} at step {end['step']}" if end else "incomplete"
        raise RunError(
            f"{run_dir} already holds a run ({state}); use --resume to continue it, "
            "or choose another --out"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / METRICS_FILE).unlink(missing_ok=True)
    write_json_atomic(run_file, _run_json(config))
    return config


def _run_json(config: TrainConfig) -> dict:
    data = config.to_dict()
    data["nominal_total_steps"] = round(config.total_steps / config.scale)
    data["pepcurr_version"] = __version__
    data["torch_version"] = torch.__version__
    data["python_version"] = platform.python_version()
    data["optimizer"] = {
        "name": "AdamW",
        "lr": config.lr,
        "weight_decay": config.weight_decay,
        "betas": [0.9, 0.999],
        "grad_clip": config.grad_clip,
        "schedule": "linear warm-up, cosine to min_lr_fraction",
        "warmup_steps": config.resolved_warmup_steps,
    }
    return data


def train(
    config: TrainConfig,
    run_dir: Path | str,
    resume: bool = False,
    max_steps: int | None = None,
    reporter: Reporter | None = None,
) -> TrainResult:
    """Train (or resume) a run to the end of its curriculum, or to ``max_steps``.

    ``max_steps`` stops after that step with a checkpoint, as if interrupted;
    ``--resume`` then continues. Returns a summary; everything else is in the
    run directory.
    """
    run_dir = Path(run_dir)
    reporter = reporter or _SilentReporter()
    end = last_end_record(run_dir) if resume and (run_dir / RUN_FILE).is_file() else None
    if end is not None and end["status"] == "finished":
        reporter.message(f"{run_dir}: already finished at step {end['step']}")
        return TrainResult(run_dir, "finished", end["step"], end["step"])
    if not resume:
        resolve_device(config.device)  # a bad --device fails before the run directory exists
    config = _prepare_run_dir(run_dir, config, resume)
    device = resolve_device(config.device)
    rank = int(os.environ.get("RANK", "0"))
    curriculum = config.curriculum
    total_steps = curriculum.total_steps
    stop_at = total_steps if max_steps is None else min(max_steps, total_steps)

    torch.manual_seed(config.seed)  # model initialisation
    model = PeptideTransformer(config.model, config.vocab).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.999)
    )
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed * 1_000_003 + rank)
    masses = config.vocab.residue_masses(device=device)[2:]  # residue tokens only
    val_sets = make_validation_sets(config, device)
    use_bf16 = device.type == "cuda"

    step, stage_index = 0, -1
    counters = {"skipped": 0, "consecutive_skipped": 0, "spikes": 0, "validations": 0}
    # (ce, spectrum, precursor) of recent applied steps, for the spike rule
    recent_terms: deque[tuple[float, float, float]] = deque(maxlen=config.spike_window)
    checkpoint_path = run_dir / CHECKPOINT_FILE
    if resume:
        state = load_checkpoint(checkpoint_path)
        model.load_state_dict(state[CKPT_MODEL])
        optimizer.load_state_dict(state[CKPT_OPTIMIZER])
        step, stage_index = int(state[CKPT_STEP]), int(state[CKPT_STAGE_INDEX])
        generator.set_state(state[CKPT_GENERATOR].to(generator.get_state().device))
        counters.update(state[CKPT_COUNTERS])
        recent_terms.extend(tuple(t) for t in state[CKPT_RECENT_TERMS])
        truncate_records_after(run_dir / METRICS_FILE, step, drop_events=("end",))
    log = MetricsWriter(run_dir / METRICS_FILE)
    if resume:
        log.write("resume", step)

    def checkpoint() -> None:
        save_checkpoint(
            checkpoint_path,
            {
                CKPT_MODEL: model.state_dict(),
                CKPT_OPTIMIZER: optimizer.state_dict(),
                CKPT_STEP: step,
                CKPT_STAGE_INDEX: stage_index,
                CKPT_GENERATOR: generator.get_state(),
                CKPT_COUNTERS: dict(counters),
                CKPT_RECENT_TERMS: [list(t) for t in recent_terms],
            },
        )

    def run_validation() -> dict:
        decode = counters["validations"] % config.decode_every == 0
        counters["validations"] += 1
        results = {}
        for split, val_batch in val_sets.items():
            results[split] = validate(model, val_batch, config, masses, decode)
            log.write("val", step, split=split, **results[split])
        return results

    val_every = config.interval(config.val_every)
    grad_every = config.interval(config.grad_every)
    checkpoint_every = config.interval(config.checkpoint_every)
    final_val: dict = {}
    status = "finished"
    started = time.perf_counter()
    window_start, window_steps = started, 0
    reporter.start(total_steps, step)
    model.train()
    try:
        with _StopRequest() as stop:
            if step == 0:
                final_val = run_validation()
            window_start = time.perf_counter()
            while step < stop_at:
                # --- the curriculum at this step: data settings and loss weights
                index, stage = curriculum.stage_at(step)
                if index != stage_index:
                    stage_index = index
                    log.write(
                        "stage",
                        step,
                        stage=stage.name,
                        stage_index=index,
                        w_spectrum=stage.spectrum_loss_weight,
                        w_precursor=stage.precursor_loss_weight,
                    )
                    reporter.message(f"step {step}: stage {stage.name}")
                weights = {
                    "spectrum": stage.spectrum_loss_weight,
                    "precursor": stage.precursor_loss_weight,
                }
                lr = learning_rate(step, config)
                for group in optimizer.param_groups:
                    group["lr"] = lr

                # --- forward: synthetic batch -> model -> loss terms
                batch = generate_batch(
                    SpectrumSettings.from_stage(
                        stage, residue_distribution=config.residue_distribution
                    ),
                    config.batch_size,
                    config.vocab,
                    generator,
                    device,
                )
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    logits = model(batch)
                terms = loss_terms(logits.float(), batch, masses, config.spectrum_sigma_da)
                loss = total_loss(terms, weights["spectrum"], weights["precursor"])
                if step in config.inject_nan_steps:
                    loss = loss * float("nan")

                # --- gradient strength of each loss, measured before the update
                if step % grad_every == 0 and all(torch.isfinite(t) for t in terms.values()):
                    measured = measure_gradients(terms, params, weights)
                    log.write("grad", step, stage=stage.name, **measured)

                # --- backward and update; a non-finite step is skipped, not applied
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
                loss_value = loss.item()
                step += 1
                if not (math.isfinite(loss_value) and torch.isfinite(grad_norm)):
                    counters["skipped"] += 1
                    counters["consecutive_skipped"] += 1
                    reason = (
                        "non-finite loss"
                        if not math.isfinite(loss_value)
                        else "non-finite gradient"
                    )
                    log.write(
                        "skip", step, reason=reason, consecutive=counters["consecutive_skipped"]
                    )
                    if counters["consecutive_skipped"] >= config.max_consecutive_skips:
                        status = "failed"
                        checkpoint()
                        raise TrainingError(
                            f"{counters['consecutive_skipped']} non-finite steps in a row at step "
                            f"{step}; stopped. The last checkpoint is {checkpoint_path}; try a "
                            "lower --lr or smaller loss weights"
                        )
                else:
                    optimizer.step()
                    counters["consecutive_skipped"] = 0
                    values = tuple(terms[k].item() for k in ("ce", "spectrum", "precursor"))
                    median = _reweighted_median(recent_terms, weights)
                    if median is not None and loss_value > config.spike_factor * median:
                        counters["spikes"] += 1
                        log.write("spike", step, loss=loss_value, median=median)
                    recent_terms.append(values)

                # --- logging, validation, checkpoint
                window_steps += 1
                if step % config.log_every == 0 or step == total_steps:
                    now = time.perf_counter()
                    record = log.write(
                        "train",
                        step,
                        stage=stage.name,
                        loss=loss_value,
                        **{k: v.item() for k, v in terms.items()},
                        w_spectrum=weights["spectrum"],
                        w_precursor=weights["precursor"],
                        token_accuracy=token_accuracy(logits.detach(), batch.tokens),
                        residue_accuracy=residue_accuracy(logits.detach(), batch.tokens),
                        lr=lr,
                        grad_norm=grad_norm.item(),
                        skipped=counters["skipped"],
                        spikes=counters["spikes"],
                        steps_per_s=window_steps / max(now - window_start, 1e-9),
                    )
                    window_start, window_steps = now, 0
                    reporter.update(step, record)
                if step % val_every == 0 or step == total_steps:
                    final_val = run_validation()
                if step % checkpoint_every == 0 or step == stop_at or stop.requested:
                    checkpoint()
                if stop.requested:
                    status = "interrupted"
                    break
            if status == "finished" and step < total_steps:
                status = "stopped"
    except KeyboardInterrupt:
        status = "interrupted"  # a second Ctrl-C: the last checkpoint stays as it was
    finally:
        log.write(
            "end",
            step,
            status=status,
            skipped=counters["skipped"],
            spikes=counters["spikes"],
            elapsed_s=time.perf_counter() - started,
        )
        log.close()
        reporter.finish()
    return TrainResult(
        run_dir=run_dir,
        status=status,
        step=step,
        total_steps=total_steps,
        final_val=final_val,
        skipped_steps=counters["skipped"],
        loss_spikes=counters["spikes"],
        elapsed_s=time.perf_counter() - started,
    )


def _reweighted_median(recent_terms, weights: dict[str, float]) -> float | None:
    """Median total loss of recent steps, recomputed with the current weights.

    Recomputing keeps a curriculum's own weight increase (a new loss switched
    on) from counting as a spike: only a jump against what the same objective
    gave over the last steps does. None until 20 steps are known.
    """
    if len(recent_terms) < 20:
        return None
    w_s, w_p = weights["spectrum"], weights["precursor"]
    return statistics.median(ce + w_s * spec + w_p * prec for ce, spec, prec in recent_terms)


def build_train_config(options: dict) -> TrainConfig:
    """A ``TrainConfig`` from command-line options (None = default).

    ``curriculum`` is a preset name or a JSON path; ``scale`` scales it;
    ``model`` is a preset name (tiny, base).
    """
    from curriculum_cli.curriculum import load_curriculum
    from curriculum_cli.errors import PepcurrError

    given = {k: v for k, v in options.items() if v is not None}
    source = str(given.pop("curriculum", "revised"))
    scale = float(given.pop("scale", 1.0))
    if scale <= 0:
        raise PepcurrError(f"--scale must be > 0, got {scale}")
    curriculum = load_curriculum(source)
    if scale != 1.0:
        curriculum = curriculum.scaled(scale)
    preset = given.pop("model", "tiny")
    if preset not in MODEL_PRESETS:
        raise PepcurrError(f"unknown --model {preset!r}; choose one of: {', '.join(MODEL_PRESETS)}")
    return TrainConfig(
        curriculum=curriculum,
        curriculum_source=source,
        scale=scale,
        model=MODEL_PRESETS[preset],
        model_preset=preset,
        **given,
    )


def run_training(
    run_dir: Path | str,
    options: dict,
    resume: bool = False,
    max_steps: int | None = None,
    reporter: Reporter | None = None,
) -> TrainResult:
    """``pepcurr train``: build the config from options, or resume with the run's own.

    On resume, options that disagree with the stored run are reported and
    ignored: a run is continued exactly as it was started.
    """
    reporter = reporter or _SilentReporter()
    run_dir = Path(run_dir)
    if not resume:
        return train(build_train_config(options), run_dir, max_steps=max_steps, reporter=reporter)
    stored = read_run_config(run_dir)
    stored_values = dict(
        stored, model=stored.get("model_preset"), curriculum=stored.get("curriculum_source")
    )
    for key, value in options.items():
        if value is not None and stored_values.get(key) != value:
            reporter.message(
                f"warning: ignoring --{key.replace('_', '-')} {value}: the run was started with "
                f"{stored_values.get(key)!r}, and --resume continues it with its own settings"
            )
    return train(
        stored_train_config(run_dir), run_dir, resume=True, max_steps=max_steps, reporter=reporter
    )
