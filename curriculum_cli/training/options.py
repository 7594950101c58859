"""Train options: what a user asks of a run, and the one way they become a ``RunConfig``.

``TrainOptions`` is built once from the command line (``pepcurr train``, and
each run of ``pepcurr ab``): typed, frozen, None where the user said nothing.
Each field names its command-line flag and help, so that the CLI declares the
option from it and ``ab --plan`` writes it back (``command_words``).
``resolve_run_config`` turns options into a ``RunConfig``: the data files
indexed (``index_run_data``), ``--init-from`` resolved, then every default
and interval filled in by ``build_run_config``. ``train``, ``ab``, ``ab
--plan`` and ``--fork-from`` all go through it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from curriculum_cli.curriculum.schema import Curriculum
from curriculum_cli.devices import Device
from curriculum_cli.errors import PepcurrError
from curriculum_cli.spectra.chemistry import MAX_CHARGE, ResidueDistribution
from curriculum_cli.spectra.vocabulary import Vocabulary, load_vocabulary, vocabulary_label

if TYPE_CHECKING:  # torch-heavy: imported where used, so the CLI can declare options cheaply
    from curriculum_cli.model.recursive import RecursiveConfig
    from curriculum_cli.model.transformer import ModelConfig
    from curriculum_cli.spectra.store import DataFile
    from curriculum_cli.training.config import RunConfig

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
"""Defaults of the run settings; the step intervals left out are resolved per run."""


def _option(flag: str | None, help: str, **bounds) -> Any:
    """A ``TrainOptions`` field: None unless given, its command-line flag and help beside it."""
    return Field(default=None, description=help, json_schema_extra={"flag": flag}, **bounds)


class TrainOptions(BaseModel):
    """What a run is asked for on the command line; None (or empty): the default.

    On ``--resume`` a run continues with its own settings, and given options
    that disagree are reported (``resume_conflicts``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    curriculum: str | Curriculum | None = _option(
        "--curriculum", "Curriculum JSON file or preset (default: revised)."
    )
    seed: int | None = _option("--seed", "Training seed.", ge=0)
    scale: float | None = _option(
        "--scale", "Multiply every stage's steps (0.02: 100k -> 2k).", gt=0
    )
    model: str | None = _option(
        "--model",
        "Model: a preset (tiny, base: with ion evidence; casanovo-tiny, casanovo-base: plain; "
        "trm-tiny, trm-base: recursive, parallel decoding; see docs/models.md), or your own "
        "model's factory as package.module:function or path/to/file.py:function. Default: tiny.",
    )
    residue_distribution: ResidueDistribution | None = _option(
        "--residues",
        "Synthetic peptides: tryptic (Swiss-Prot frequencies, ending in K/R; the default) or "
        "uniform.",
    )
    batch_size: int | None = _option("--batch-size", "Spectra per step.", ge=1)
    data_shards: int | None = _option(
        "--data-shards",
        "Draw each batch as N equal shards, each from its own seeded stream, the loss the mean "
        "over shards (default: 1, or one per torchrun process). One process with --data-shards "
        "N sees the data N processes see.",
        ge=1,
    )
    lr: float | None = _option("--lr", "Peak learning rate (AdamW).", gt=0)
    device: Device | None = _option("--device", "auto: CUDA when torch sees a GPU, else the CPU.")
    val_every: int | None = _option("--val-every", "Steps between validations.", ge=1)
    grad_every: int | None = _option("--grad-every", "Steps between gradient measurements.", ge=1)
    val_size: int | None = _option(
        "--val-size", "Spectra in each validation set (default 256).", ge=1
    )
    decode_size: int | None = _option(
        "--decode-size", "Validation spectra greedy-decoded per set (default 256).", ge=1
    )
    decode_every: int | None = _option(
        "--decode-every", "Decoded metrics at every N-th validation (default 5).", ge=1
    )
    log_every: int | None = _option(
        "--log-every", "Steps between train records (device reads; default 10).", ge=1
    )
    checkpoint_every: int | None = _option(
        "--checkpoint-every", "Steps between checkpoints (default: 50 per run).", ge=1
    )
    train_data: tuple[Path, ...] = Field(
        default=(),
        description="Annotated MGF to train on (repeat for several files); indexed once into a "
        "store (docs/real-data.md). Stages draw real_fraction of each batch from it (default 1).",
        json_schema_extra={"flag": "--train-data"},
    )
    val_data: tuple[Path, ...] = Field(
        default=(),
        description="Annotated MGF of the val_real set (repeatable).",
        json_schema_extra={"flag": "--val-data"},
    )
    skip_invalid: bool = Field(
        default=False,
        description="Skip invalid spectra of the MGF files; count them.",
        json_schema_extra={"flag": "--skip-invalid"},
    )
    store_dir: Path | None = _option(
        "--store", "Where stores go (default: .pepcurr-store beside the MGF)."
    )
    init_from: Path | None = _option(
        "--init-from",
        "Fine-tune: start from this trained model's weights (fresh optimizer and schedule, "
        "step 0); --model defaults to its model.",
    )
    vocab: str | Vocabulary | None = _option(
        "--vocab",
        "The model's tokens: standard (19 residues, the default), casanovo (Casanovo 5's: plus "
        "M oxidation, N/Q deamidation, 4 N-terminal modifications) or a YAML/JSON file "
        "(docs/vocabulary.md). With --init-from: default the checkpoint's; another one is "
        "fine-tuned into.",
    )

    @classmethod
    def flag(cls, name: str) -> str:
        """The command-line flag of a field, e.g. ``--residues`` for ``residue_distribution``."""
        return cls.model_fields[name].json_schema_extra["flag"]

    @classmethod
    def help(cls, name: str) -> str:
        return cls.model_fields[name].description

    def given(self) -> dict[str, Any]:
        """The options the user gave (not None, not empty, not False)."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        return {
            name: value
            for name, value in values.items()
            if not (value is None or value is False or value == ())
        }

    def command_words(self) -> list[str]:
        """The ``pepcurr train`` flags that ask for these options again (``ab --plan``).

        A ``PepcurrError`` for an option the command line cannot give.
        """
        words = []
        for name, value in self.given().items():
            flag = self.flag(name)
            if flag is None or isinstance(value, Curriculum | Vocabulary):
                raise PepcurrError(f"--plan: pepcurr train has no option for {name}")
            for item in value if isinstance(value, tuple) else [value]:
                if item is True:
                    words.append(flag)
                elif isinstance(item, float) and name == "scale":
                    words += [flag, repr(item)]
                else:
                    words += [flag, str(item.value if isinstance(item, StrEnum) else item)]
        return words


@dataclass(frozen=True)
class RunData:
    """The ``--train-data``/``--val-data`` files of a run, indexed (what ``run.json`` records)."""

    train: tuple[DataFile, ...] = ()
    val: tuple[DataFile, ...] = ()


def run_vocabulary(options: TrainOptions) -> Vocabulary:
    """The vocabulary a new run asks for: ``--vocab`` (a name, a file), else the
    ``--init-from`` checkpoint's, else ``standard``."""
    if isinstance(options.vocab, Vocabulary):
        return options.vocab
    if options.vocab is not None:
        return load_vocabulary(options.vocab)
    if options.init_from is not None:
        from curriculum_cli.training.checkpoint import init_source

        return init_source(options.init_from)[1].vocab
    return Vocabulary.default()


def index_run_data(
    options: TrainOptions,
    message: Callable[[str], None] | None = None,
    vocab: Vocabulary | None = None,
) -> RunData:
    """Index (or find indexed) the options' MGF files with ``vocab`` (default: the options'
    ``run_vocabulary``); ``message(text)`` hears which files are indexed and how many
    spectra were skipped."""
    from curriculum_cli.spectra.store import index_files

    on_index = (lambda path: message(f"indexing {path} (once)")) if message else None
    vocab = vocab or run_vocabulary(options)
    indexed = {}
    for key in ("train", "val"):
        paths = getattr(options, f"{key}_data")
        records = index_files(paths, vocab, MAX_CHARGE, options.skip_invalid, options.store_dir,
                              on_index) if paths else []  # fmt: skip
        for record in records:
            if record.n_skipped and message:
                message(f"warning: {record.path}: {record.n_skipped} invalid spectra skipped "
                        f"(--skip-invalid), {record.n_spectra} used")  # fmt: skip
        indexed[key] = tuple(records)
    return RunData(**indexed)


def resolve_run_config(
    options: TrainOptions,
    data: RunData | None = None,
    message: Callable[[str], None] | None = None,
    world_size: int = 1,
) -> RunConfig:
    """The ``RunConfig`` of a new run asked for with ``options``.

    ``data``: the options' files already indexed (``ab`` indexes once for all
    its runs); None: indexed here. ``world_size``: processes that train the run
    together (``torchrun``; one data shard each unless ``--data-shards``).
    ``--init-from`` (a run directory or a checkpoint) records the checkpoint and
    gives the run that model unless ``--model`` is given (then the shapes must
    agree when it loads). A ``--vocab`` other than the checkpoint's is fine-tuned into
    (``checkpoint.load_initial_weights``): ``run.json`` lists the tokens kept, added and
    dropped, and ``message`` hears it in one line.
    """
    from curriculum_cli.training.checkpoint import init_source
    from curriculum_cli.training.config import VocabularyChange

    vocab = run_vocabulary(options)
    data = data if data is not None else index_run_data(options, message, vocab)
    settings = options.given()
    for name in ("train_data", "val_data", "store_dir", "init_from", "vocab"):
        settings.pop(name, None)
    architecture = None
    if options.init_from is not None:
        settings["init_from"], source = init_source(options.init_from)
        if options.model is None:
            settings["model"], architecture = source.model, source.architecture
        if source.vocab != vocab:
            change = VocabularyChange.between(source.vocab, vocab)
            settings["init_from"] = settings["init_from"].model_copy(update={"vocabulary": change})
            if message:
                message(change.describe(vocabulary_label(source.vocab), vocabulary_label(vocab)))
    return build_run_config(architecture=architecture, train_data=list(data.train),
                            val_data=list(data.val), world_size=world_size, vocab=vocab,
                            **settings)  # fmt: skip


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
    (``model.source``); tests may pass an explicit ``architecture`` (then
    ``model`` is only its label). Intervals left out become
    ``POINTS_PER_RUN`` points per run; the warm-up 5% of the run (at most
    ``MAX_DEFAULT_WARMUP_STEPS``).
    """
    from curriculum_cli.curriculum.files import load_curriculum
    from curriculum_cli.model.source import is_factory, preset_architectures
    from curriculum_cli.training.config import (
        AUTO_INTERVALS,
        MAX_DEFAULT_WARMUP_STEPS,
        POINTS_PER_RUN,
        RunConfig,
    )

    given = {key: value for key, value in settings.items() if value is not None}
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
                f"warning: ignoring {options.flag(key) or key} {shown}: the run was started with "
                f"{before!r}, and --resume continues it with its own settings"
            )
    if options.train_data or options.val_data:
        warnings.append("warning: ignoring --train-data/--val-data: --resume continues the run "
                        "with the files it recorded in run.json")  # fmt: skip
    return warnings
