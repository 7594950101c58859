"""Checkpoints of a run directory: their keys, atomic writing, safe loading, the trained model.

``last.pt`` is a plain dict of tensors and numbers (loadable with
``torch.load(weights_only=True)``), written atomically so that a crash
mid-write leaves the previous one intact. Its keys are the constants below;
the training run fills them (``setup.TrainingRun.state_dict``) and restores
them through ``read_checkpoint``, the one reader of older checkpoints;
``load_model`` (used by ``evaluate``) reads the model's weights and the run's
``run.json``, and ``build_run_model`` builds a trained run's model again (its
factory file checked); ``init_source`` and
``load_initial_weights`` start a new run from another run's weights
(``train --init-from``, fine-tuning).
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import torch

from curriculum_cli.curriculum.schedule import StageSchedule
from curriculum_cli.errors import RunError
from curriculum_cli.model.factory import build_model, recorded_factory
from curriculum_cli.model.token_transfer import transfer_token_weights
from curriculum_cli.spectra.vocabulary import Vocabulary
from curriculum_cli.training.config import (
    RUN_FILE,
    InitFrom,
    RunConfig,
    read_provenance,
    read_run_config,
)
from curriculum_cli.training.storage import naming

CHECKPOINT_FILE = "last.pt"

# Checkpoint keys.
CKPT_MODEL = "model"
CKPT_OPTIMIZER = "optimizer"
CKPT_STEP = "step"
CKPT_STAGE_INDEX = "stage_index"
CKPT_STAGE_SCHEDULE = "stage_schedule"  # StageSchedule: actual stage starts, recent gate values
CKPT_GENERATOR = "data_generator_state"
CKPT_COUNTERS = "counters"  # skipped, consecutive_skipped, spikes, validations
CKPT_RECENT_TERMS = "recent_loss_terms"  # (ce, spectrum, precursor) of recent applied steps
CKPT_LOG_BYTES = "metrics_bytes"  # size of metrics.jsonl when the checkpoint was taken
CKPT_RNG = "rng_states"  # per rank: torch's global generators ("cpu", and "cuda" on a GPU)
CKPT_VOCAB = "vocab"  # the model's tokens (Vocabulary as plain data)


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint atomically: a temporary file, fsync, then rename.

    A crash mid-write leaves the previous checkpoint untouched.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with naming(tmp), open(tmp, "wb") as handle:
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


def checkpoint_step(run_dir: Path | str) -> int | None:
    """The step of a run directory's checkpoint; None when it has none, or an unreadable one."""
    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        return int(load_checkpoint(path)[CKPT_STEP])
    except (RunError, KeyError, TypeError, ValueError):
        return None


def read_checkpoint(path: Path, config: RunConfig) -> dict:
    """The checkpoint of the run ``config`` describes, in the layout this pepcurr writes.

    The one reader of older checkpoints (``load_checkpoint`` gives a file as stored):

    - no ``stage_schedule`` (before gated stages): the stages up to ``stage_index``
      started as planned (``StageSchedule.load_planned``);
    - a schedule with ``last_values`` (before gate smoothing): each gate metric's last
      value as its one recent value;
    - no ``metrics_bytes`` (pepcurr 0.1): None, and ``runlog.rewind_log`` cuts the log
      back by step instead;
    - no ``rng_states`` (before they were saved): None, torch's global generators stay as
      seeded (exact for a model that draws nothing at random, as every preset);
    - no ``vocab`` (before 0.3, when a checkpoint's tokens were always its run's): the run's.
    """
    state = load_checkpoint(path)
    schedule = state.get(CKPT_STAGE_SCHEDULE)
    if schedule is None:
        planned = StageSchedule(config.curriculum)
        planned.load_planned(int(state[CKPT_STAGE_INDEX]))
        schedule = planned.state_dict()
    elif "last_values" in schedule:
        schedule = {k: v for k, v in schedule.items() if k != "last_values"}
        schedule["recent_values"] = {
            metric: [value] for metric, value in state[CKPT_STAGE_SCHEDULE]["last_values"].items()
        }
    return {
        **state,
        CKPT_STAGE_SCHEDULE: schedule,
        CKPT_LOG_BYTES: state.get(CKPT_LOG_BYTES),
        CKPT_RNG: state.get(CKPT_RNG),
        CKPT_VOCAB: state.get(CKPT_VOCAB, vocab_record(config.vocab)),
    }


def build_run_model(
    config: RunConfig, run_dir: Path, allow_changed_model: bool = False
) -> torch.nn.Module:
    """A freshly initialised model of the run in ``run_dir`` (``config``: its ``run.json``),
    to load its checkpoint into: the one place a trained run's model is built again
    (``--resume``, ``--fork-from``, ``ab``, ``evaluate``, ``predict``, ``compare --rescore``).

    A factory comes from the file the run recorded, checked against its SHA-256
    (``factory.recorded_factory``: a ``ModelError`` when it changed, unless
    ``allow_changed_model``); its errors name the run, not a ``--model`` never given.
    """
    where = str(run_dir)
    spec = recorded_factory(config.model, read_provenance(run_dir), where, allow_changed_model)
    return build_model(spec, config.architecture, config.vocab, where=f"{where}: model {spec}")


def load_model(
    source: Path | str, device: str = "cpu", allow_changed_model: bool = False
) -> tuple[torch.nn.Module, RunConfig]:
    """The trained model of a run directory (or of a checkpoint file in one), in eval mode.

    ``allow_changed_model``: build a factory's model from its file even when the file
    changed since the run recorded it (``build_run_model``).
    """
    source = Path(source)
    if not source.exists():
        raise RunError(f"{source}: no such run directory or checkpoint")
    run_dir = source if source.is_dir() else source.parent
    checkpoint = source / CHECKPOINT_FILE if source.is_dir() else source
    if not source.is_dir() and not (run_dir / RUN_FILE).is_file():
        raise RunError(f"{source}: neither a run directory nor a checkpoint in one (no "
                       f"{RUN_FILE} beside it)")  # fmt: skip
    config = read_run_config(run_dir)
    model = build_run_model(config, run_dir, allow_changed_model)
    state = read_checkpoint(checkpoint, config)
    if state[CKPT_VOCAB] != vocab_record(config.vocab):
        raise RunError(f"{checkpoint}: its vocabulary is not the one {run_dir / RUN_FILE} "
                       "records (a checkpoint of another run?)")  # fmt: skip
    try:
        model.load_state_dict(state[CKPT_MODEL])
    except (KeyError, RuntimeError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RunError(f"{checkpoint}: does not fit the run's model ({first_line})") from None
    return model.to(device).eval(), config


def vocab_record(vocab: Vocabulary) -> dict:
    """A vocabulary as the checkpoint holds it (plain data that ``weights_only`` loads)."""
    return {"residues": list(vocab.residues), "fold_il": vocab.fold_il,
            "masses_da": [list(pair) for pair in vocab.masses_da]}  # fmt: skip


def checkpoint_path(source: Path | str) -> Path:
    """The checkpoint file of a run directory (its ``last.pt``) or the checkpoint file itself."""
    source = Path(source)
    return source / CHECKPOINT_FILE if source.is_dir() else source


def init_source(source: Path | str) -> tuple[InitFrom, RunConfig]:
    """``--init-from``: the checkpoint's record for ``run.json`` and the config of its run.

    ``source`` is a run directory or a checkpoint file in one; a ``RunError``
    says when it is neither.
    """
    source = Path(source)
    if not source.exists():
        raise RunError(f"--init-from {source}: no such run directory or checkpoint")
    path = checkpoint_path(source)
    if not (path.parent / RUN_FILE).is_file():
        place = "in it" if source.is_dir() else "beside it"
        raise RunError(f"--init-from {source}: not a run directory or a checkpoint in one "
                       f"(no {RUN_FILE} {place})")  # fmt: skip
    config = read_run_config(path.parent)
    data = _read_bytes(path)
    state = _load_bytes(path, data)
    if CKPT_MODEL not in state:
        raise RunError(f"--init-from {path}: not a pepcurr checkpoint (no {CKPT_MODEL!r})")
    record = InitFrom(
        path=str(path.resolve()),
        checkpoint_sha256=hashlib.sha256(data).hexdigest(),
        step=int(state.get(CKPT_STEP, 0)),
    )
    return record, config


def load_initial_weights(model: torch.nn.Module, config: RunConfig) -> None:
    """Load ``config.init_from``'s weights into a new run's ``model``.

    When the run's vocabulary is not the checkpoint's, the per-token weights move into it
    (``token_transfer``). A ``RunError`` names what differs when the checkpoint's run has
    another model shape, or when the file changed since the run's config recorded its
    SHA-256.
    """
    init = config.init_from
    path = Path(init.path)
    data = _read_bytes(path)
    if hashlib.sha256(data).hexdigest() != init.checkpoint_sha256:
        raise RunError(f"--init-from {path}: the checkpoint changed since this run recorded it")
    source = read_run_config(path.parent)
    where = f"--init-from {path}"
    if (
        source.architecture is not None
        and config.architecture is not None
        and source.architecture != config.architecture
    ):
        there, here = source.architecture, config.architecture
        if type(there) is not type(here):
            fields = [f"a {type(there).__name__} (there) vs a {type(here).__name__} (here)"]
        else:
            fields = [
                f"{name} {getattr(there, name)} (there) vs {getattr(here, name)} (here)"
                for name in type(here).__dataclass_fields__
                if getattr(there, name) != getattr(here, name)
            ]
        raise RunError(f"{where}: the model differs: {', '.join(fields)}; use --model "
                       f"{source.model} or leave --model out")  # fmt: skip
    weights = _load_bytes(path, data)[CKPT_MODEL]
    if source.vocab != config.vocab:
        weights = transfer_token_weights(weights, model, source.vocab, config.vocab, where)
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    extra = sorted(set(weights) - set(own))
    if missing or extra:
        names = ", ".join((missing or extra)[:3])
        what = "lacks" if missing else "has extra"
        raise RunError(f"{where}: the model differs: the checkpoint {what} parameters {names} "
                       f"(it is a {source.model} model, this run's is {config.model})")  # fmt: skip
    for name, tensor in weights.items():
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise RunError(f"{where}: the model differs: {name} is {list(tensor.shape)} there, "
                           f"{list(own[name].shape)} here")  # fmt: skip
    model.load_state_dict(weights)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise RunError(f"{path}: no checkpoint") from None
    except OSError as error:
        raise RunError(f"{path}: cannot read: {error.strerror}") from None


def _load_bytes(path: Path, data: bytes) -> dict:
    """A checkpoint's content from its bytes (``weights_only``), or a ``RunError``."""
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a damaged file
        raise RunError(f"{path}: unreadable checkpoint ({type(error).__name__})") from None
    if not isinstance(state, dict):
        raise RunError(f"{path}: not a pepcurr checkpoint")
    return state
