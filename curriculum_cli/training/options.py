"""Train options: what a user asks for on the command line, and the ``RunConfig`` it becomes."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from curriculum_cli.curriculum.schema import Curriculum
from curriculum_cli.devices import Device
from curriculum_cli.errors import PepcurrError
from curriculum_cli.model.source import is_factory
from curriculum_cli.model.transformer import MODEL_PRESETS, ModelConfig
from curriculum_cli.spectra.chemistry import MAX_CHARGE
from curriculum_cli.spectra.store import index_files
from curriculum_cli.spectra.vocabulary import Vocabulary
from curriculum_cli.training.config import (
    _AUTO_INTERVALS,
    MAX_DEFAULT_WARMUP_STEPS,
    POINTS_PER_RUN,
    RunConfig,
)

# Defaults of the settings a user rarely changes; None in ``build_run_config`` means "auto".
DEFAULTS: dict[str, Any] = {
    "curriculum": "revised",
    "scale": 1.0,
    "model": "tiny",
    "residue_distribution": "tryptic",
    "seed": 0,
    "val_seed": 20_240_501,
    "device": Device.auto,
    "batch_size": 32,
    "lr": 1e-3,
    "weight_decay": 1e-5,
    "min_lr_fraction": 0.1,
    "grad_clip": 1.0,
    "spectrum_sigma_da": 1.0,
    "val_size": 256,
    "decode_every": 5,
    "decode_size": 256,
    "log_every": 10,
    "max_consecutive_skips": 20,
    "spike_factor": 3.0,
    "spike_window": 200,
}


def build_run_config(
    curriculum: str | Curriculum | None = None,
    *,
    architecture: ModelConfig | None = None,
    vocab: Vocabulary | None = None,
    **options: Any,
) -> RunConfig:
    """A ``RunConfig`` from command-line style options (None or absent: the default).

    ``curriculum`` is a preset name, a JSON path or a ``Curriculum``; it is
    scaled by ``scale``. ``model`` is a preset name or a factory
    (``model_source``); tests may pass an explicit ``architecture`` (then
    ``model`` is only its label). Intervals left out
    become ``POINTS_PER_RUN`` points per run; the warm-up 5% of the run (at
    most ``MAX_DEFAULT_WARMUP_STEPS``).
    """
    from curriculum_cli.curriculum.presets import load_curriculum

    given = {key: value for key, value in options.items() if value is not None}
    unknown = set(given) - set(RunConfig.model_fields)
    if unknown:
        raise TypeError(f"unknown run settings: {', '.join(sorted(unknown))}")
    settings = {**DEFAULTS, **given}
    source = curriculum if curriculum is not None else DEFAULTS["curriculum"]
    loaded = source if isinstance(source, Curriculum) else load_curriculum(source)
    scale = float(settings["scale"])
    if not (math.isfinite(scale) and scale > 0):
        raise PepcurrError(f"--scale must be a number > 0, got {scale}")
    if scale != 1.0:
        loaded = loaded.scaled(scale)
    loaded = loaded.with_real_fraction(bool(settings.get("train_data")))
    if architecture is None and not is_factory(settings["model"]):
        name = settings["model"]
        if name not in MODEL_PRESETS:
            presets = ", ".join(MODEL_PRESETS)
            raise PepcurrError(f"unknown model {name!r}; the presets are: {presets}")
        architecture = MODEL_PRESETS[name]
    if "decode_size" not in given:  # a smaller validation set decodes all its spectra
        settings["decode_size"] = min(DEFAULTS["decode_size"], settings["val_size"])
    elif settings["decode_size"] > settings["val_size"]:
        raise PepcurrError(
            f"--decode-size {settings['decode_size']} is larger than the validation sets "
            f"({settings['val_size']} spectra): decoding uses their first spectra"
        )
    total = loaded.total_steps
    for key in _AUTO_INTERVALS:
        settings.setdefault(key, max(1, total // POINTS_PER_RUN))
    settings.setdefault("warmup_steps", max(1, min(MAX_DEFAULT_WARMUP_STEPS, total // 20)))
    settings.setdefault("data_shards", settings.get("world_size", 1))  # one shard per rank
    settings.update(
        curriculum=loaded,
        curriculum_source=source.name if isinstance(source, Curriculum) else str(source),
        scale=scale,
        device=Device(settings["device"]),
        architecture=architecture,
        vocab=vocab or Vocabulary.default(),
    )
    return RunConfig.model_validate(settings, strict=False)


def resume_conflicts(stored: RunConfig, options: dict[str, Any]) -> list[str]:
    """One warning per given option that differs from the run being resumed.

    A resumed run continues with its own settings; options given on the
    command line that disagree are reported and ignored.
    """
    stored_values = stored.model_dump(mode="json")
    stored_values["curriculum"] = stored.curriculum_source
    stored_values["init_from"] = stored.init_from.path if stored.init_from else None
    warnings = []
    for key, value in options.items():
        if value is None:
            continue
        shown = value.value if isinstance(value, StrEnum) else value
        if stored_values.get(key) != shown:
            warnings.append(
                f"warning: ignoring --{key.replace('_', '-')} {shown}: the run was started with "
                f"{stored_values.get(key)!r}, and --resume continues it with its own settings"
            )
    return warnings


DATA_OPTIONS = ("train_data", "val_data", "store_dir")
"""``train``/``ab`` options naming MGF files (and where their stores go), not run settings."""


def index_data_options(options: dict, message=None) -> dict:
    """``options`` with the ``--train-data``/``--val-data`` paths indexed into the
    ``DataFile`` records ``RunConfig`` holds (``store_dir`` consumed); ``message(text)``
    hears which files are indexed and how many spectra were skipped."""
    options = dict(options)
    store_dir = options.pop("store_dir", None)
    on_index = (lambda path: message(f"indexing {path} (once)")) if message else None
    for key in ("train_data", "val_data"):
        paths = options.pop(key, None)
        if not paths:
            continue
        skip_invalid = bool(options.get("skip_invalid"))
        vocab = Vocabulary.default()
        options[key] = index_files(paths, vocab, MAX_CHARGE, skip_invalid, store_dir, on_index)
        for record in options[key]:
            if record.n_skipped and message:
                message(f"warning: {record.path}: {record.n_skipped} invalid spectra skipped "
                        f"(--skip-invalid), {record.n_spectra} used")  # fmt: skip
    return options
