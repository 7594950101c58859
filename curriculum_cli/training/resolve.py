"""A new run's ``RunConfig`` from what was asked (``TrainOptions``): every default filled in.

``resolve_run_config`` is the one way from options to a ``RunConfig``: ``train``,
``ab``, ``ab --plan`` and ``--fork-from`` all go through it. It is a function of
its inputs: what the options point at on disk (the ``--init-from`` checkpoint,
the ``--train-data``/``--val-data`` files indexed into stores) is read before,
once, by ``launch.read_run_inputs``, and handed in as ``RunInputs``.
``build_run_config`` fills in every default and interval (``settings.DEFAULTS``);
``resume_conflicts`` lists the options a resumed run ignores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from curriculum_cli.curriculum.schema import Curriculum
from curriculum_cli.devices import Device
from curriculum_cli.errors import PepcurrError
from curriculum_cli.spectra.store import DataFile
from curriculum_cli.spectra.vocabulary import Vocabulary, load_vocabulary, vocabulary_label
from curriculum_cli.training.config import InitFrom, RunConfig, VocabularyChange
from curriculum_cli.training.settings import (
    AUTO_INTERVALS,
    DEFAULTS,
    MAX_DEFAULT_WARMUP_STEPS,
    POINTS_PER_RUN,
    TrainOptions,
)

if TYPE_CHECKING:
    from curriculum_cli.model.recursive import RecursiveConfig
    from curriculum_cli.model.transformer import ModelConfig


@dataclass(frozen=True)
class RunData:
    """The ``--train-data``/``--val-data`` files of a run, indexed (what ``run.json`` records)."""

    train: tuple[DataFile, ...] = ()
    val: tuple[DataFile, ...] = ()


@dataclass(frozen=True)
class RunInputs:
    """What a new run's options point at, read from disk (``launch.read_run_inputs``).

    ``vocab``: the run's vocabulary (``run_vocabulary``); ``init``: the
    ``--init-from`` checkpoint's record and its run's config; ``data``: the
    data files, indexed with ``vocab``.
    """

    vocab: Vocabulary
    init: tuple[InitFrom, RunConfig] | None = None
    data: RunData = field(default_factory=RunData)


def run_vocabulary(options: TrainOptions, init_config: RunConfig | None = None) -> Vocabulary:
    """The vocabulary a new run asks for: ``--vocab`` (a name, a file), else that of the
    ``--init-from`` checkpoint's run (``init_config``), else the default."""
    if isinstance(options.vocab, Vocabulary):
        return options.vocab
    if options.vocab is not None:
        return load_vocabulary(options.vocab)
    if init_config is not None:
        return init_config.vocab
    return load_vocabulary(DEFAULTS["vocab"])


def resolve_run_config(
    options: TrainOptions, inputs: RunInputs | None = None, world_size: int = 1
) -> RunConfig:
    """The ``RunConfig`` of a new run asked for with ``options``.

    ``inputs``: what the options point at, read by ``launch.read_run_inputs``
    (``ab`` reads them once for all its runs); None when the options point at
    nothing (no ``--init-from``, no data files). ``world_size``: processes that
    train the run together (``torchrun``; one data shard each unless
    ``--data-shards``). ``--init-from`` records the checkpoint and gives the run
    that model unless ``--model`` is given (then the shapes must agree when it
    loads). A ``--vocab`` other than the checkpoint's is fine-tuned into
    (``checkpoint.load_initial_weights``): ``run.json`` lists the tokens kept,
    added and dropped.
    """
    if inputs is None:
        if options.init_from is not None or options.train_data or options.val_data:
            raise ValueError("options with --init-from or data files: read them first "
                             "(launch.read_run_inputs) and pass them as inputs")  # fmt: skip
        inputs = RunInputs(vocab=run_vocabulary(options))
    settings = options.given()
    for name in ("train_data", "val_data", "store_dir", "init_from", "vocab"):
        settings.pop(name, None)
    architecture = None
    if inputs.init is not None:
        record, source = inputs.init
        if options.model is None:
            settings["model"], architecture = source.model, source.architecture
        if source.vocab != inputs.vocab:
            change = VocabularyChange.between(source.vocab, inputs.vocab)
            record = record.model_copy(update={"vocabulary": change})
        settings["init_from"] = record
    return build_run_config(architecture=architecture, train_data=list(inputs.data.train),
                            val_data=list(inputs.data.val), world_size=world_size,
                            vocab=inputs.vocab, **settings)  # fmt: skip


def build_run_config(
    curriculum: str | Curriculum | None = None,
    *,
    architecture: ModelConfig | RecursiveConfig | None = None,
    vocab: Vocabulary | None = None,
    **settings: Any,
) -> RunConfig:
    """A ``RunConfig`` from ``RunConfig`` settings (None or absent: the default).

    ``curriculum`` is a preset name, a JSON path or a ``Curriculum``; it is
    scaled by ``scale``. ``model`` is a preset name or a factory
    (``model.factory``); tests may pass an explicit ``architecture`` (a
    ``ModelConfig`` or ``RecursiveConfig``; then ``model`` is only its label).
    Intervals left out become ``POINTS_PER_RUN`` points per run; the warm-up 5%
    of the run (at most ``MAX_DEFAULT_WARMUP_STEPS``).
    """
    from curriculum_cli.curriculum.files import load_curriculum
    from curriculum_cli.model.factory import is_factory, preset_architectures, resolved_factory

    given = {key: value for key, value in settings.items() if value is not None}
    unknown = set(given) - set(RunConfig.model_fields)
    if unknown:
        raise TypeError(f"unknown run settings: {', '.join(sorted(unknown))}")
    settings = {**DEFAULTS, **given}
    settings["model"] = resolved_factory(settings["model"])  # a factory's file, absolute
    source = curriculum if curriculum is not None else DEFAULTS["curriculum"]
    loaded = source if isinstance(source, Curriculum) else load_curriculum(source)
    scale = float(settings["scale"])
    if not (math.isfinite(scale) and scale > 0):
        raise PepcurrError(f"--scale must be a number > 0, got {scale}")
    if scale != 1.0:
        loaded = loaded.scaled(scale)
    loaded = loaded.with_real_fraction(bool(settings.get("train_data")))
    if architecture is None and not is_factory(settings["model"]):
        name, presets = settings["model"], preset_architectures()
        if name not in presets:
            raise PepcurrError(f"unknown model {name!r}; the presets are: {', '.join(presets)}")
        architecture = presets[name]
    if "decode_size" not in given:  # a smaller validation set decodes all its spectra
        settings["decode_size"] = min(DEFAULTS["decode_size"], settings["val_size"])
    elif settings["decode_size"] > settings["val_size"]:
        raise PepcurrError(
            f"--decode-size {settings['decode_size']} is larger than the validation sets "
            f"({settings['val_size']} spectra): decoding uses their first spectra"
        )
    total = loaded.total_steps
    for key in AUTO_INTERVALS:
        settings.setdefault(key, max(1, total // POINTS_PER_RUN))
    settings.setdefault("warmup_steps", max(1, min(MAX_DEFAULT_WARMUP_STEPS, total // 20)))
    settings.setdefault("data_shards", settings["world_size"])  # one shard per rank
    settings.update(
        curriculum=loaded,
        curriculum_source=source.name if isinstance(source, Curriculum) else str(source),
        scale=scale,
        device=Device(settings["device"]),
        architecture=architecture,
        vocab=vocab or load_vocabulary(DEFAULTS["vocab"]),
    )
    return RunConfig.model_validate(settings, strict=False)


def resume_conflicts(stored: RunConfig, options: TrainOptions) -> list[str]:
    """One warning per given option that differs from the run being resumed.

    A resumed run continues with its own settings; options given on the
    command line that disagree are reported and ignored (the data files in one
    line of their own: the run keeps the files it recorded).
    """
    stored_of = {
        "curriculum": stored.curriculum_source,
        "init_from": stored.init_from.path if stored.init_from else None,
    }
    given = options.given()
    if given.get("model") is not None:
        from curriculum_cli.model.factory import resolved_factory

        given["model"] = resolved_factory(given["model"])  # as the run recorded it
    if isinstance(given.get("vocab"), str):
        given["vocab"] = load_vocabulary(given["vocab"])
    if given.get("init_from") is not None:
        from curriculum_cli.training.checkpoint import checkpoint_path

        given["init_from"] = str(checkpoint_path(given["init_from"]).resolve())
    warnings = []
    for key, value in given.items():
        if key in ("train_data", "val_data", "store_dir"):
            continue
        before = stored_of[key] if key in stored_of else getattr(stored, key)
        if value != before:
            shown = value.value if isinstance(value, StrEnum) else value
            if isinstance(value, Vocabulary):
                shown, before = vocabulary_label(value), vocabulary_label(before)
            warnings.append(
                f"warning: ignoring {options.flag(key)} {shown}: the run was started with "
                f"{before!r}, and --resume continues it with its own settings"
            )
    if options.train_data or options.val_data:
        warnings.append("warning: ignoring --train-data/--val-data: --resume continues the run "
                        "with the files it recorded in run.json")  # fmt: skip
    return warnings
