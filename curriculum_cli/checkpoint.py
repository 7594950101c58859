"""Checkpoints of a run directory: their keys, atomic writing, safe loading, the trained model.

``last.pt`` is a plain dict of tensors and numbers (loadable with
``torch.load(weights_only=True)``), written atomically so that a crash
mid-write leaves the previous one intact. Its keys are the constants below;
the training engine fills them, ``load_model`` (used by ``evaluate``) reads
only the model's weights and the run's ``run.json``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from curriculum_cli.config import RunConfig, read_run_config
from curriculum_cli.errors import RunError
from curriculum_cli.model_source import build_model

CHECKPOINT_FILE = "last.pt"

# Checkpoint keys.
CKPT_MODEL = "model"
CKPT_OPTIMIZER = "optimizer"
CKPT_STEP = "step"
CKPT_STAGE_INDEX = "stage_index"
CKPT_STAGE_SCHEDULE = "stage_schedule"  # StageSchedule: actual stage starts, last gate values
CKPT_GENERATOR = "data_generator_state"
CKPT_COUNTERS = "counters"  # skipped, consecutive_skipped, spikes, validations
CKPT_RECENT_TERMS = "recent_loss_terms"  # (ce, spectrum, precursor) of recent applied steps
CKPT_LOG_BYTES = "metrics_bytes"  # size of metrics.jsonl when the checkpoint was taken


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint atomically: a temporary file, fsync, then rename.

    A crash mid-write leaves the previous checkpoint untouched.
    """
    path = Path(path)
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
    """A checkpoint loaded on the CPU with ``weights_only=True`` (tensors and plain data only)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunError(f"{path}: no checkpoint") from None
    except Exception as error:  # torch raises many kinds for a damaged file
        raise RunError(f"{path}: unreadable checkpoint ({type(error).__name__})") from None


def load_model(source: Path | str, device: str = "cpu") -> tuple[torch.nn.Module, RunConfig]:
    """The trained model of a run directory (or of a checkpoint file in one), in eval mode."""
    source = Path(source)
    if not source.exists():
        raise RunError(f"{source}: no such run directory or checkpoint")
    run_dir = source if source.is_dir() else source.parent
    checkpoint = source / CHECKPOINT_FILE if source.is_dir() else source
    config = read_run_config(run_dir)
    model = build_model(config)
    try:
        model.load_state_dict(load_checkpoint(checkpoint)[CKPT_MODEL])
    except (KeyError, RuntimeError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RunError(f"{checkpoint}: does not fit the run's model ({first_line})") from None
    return model.to(device).eval(), config
