"""Validation during training: the fixed validation sets of a run, and what is measured on them.

``val_easy`` follows the curriculum's first stage, ``val_hard`` its last, and
``val_real`` (with ``--val-data``) holds real annotated spectra. Each
validation gives the loss terms and accuracies of a set (teacher-forced for
an autoregressive model; a parallel model's last refinement step, and each
step's residue accuracy), and, every ``decode_every`` validations, decoded
peptides scored as Casanovo scores them (``decoded_metrics``: greedy for an
autoregressive model, the arg-max of one pass for a parallel one).
"""

from __future__ import annotations

import math
import statistics

import torch

from curriculum_cli.errors import RunError
from curriculum_cli.model.decoding import greedy_decode, parallel_decode, true_peptides
from curriculum_cli.model.losses import refinement_step_terms
from curriculum_cli.model.metrics import (
    aa_match_metrics,
    accuracy_counts,
    residue_accuracy,
    token_accuracy,
)
from curriculum_cli.model.refinement import is_parallel, refinement_logits, step_weights
from curriculum_cli.spectra.batch import SpectrumBatch
from curriculum_cli.spectra.batch_source import load_real_spectra
from curriculum_cli.spectra.chemistry import MAX_CHARGE
from curriculum_cli.spectra.synthetic import SpectrumSettings, generate_spectra
from curriculum_cli.training.config import RunConfig

VALIDATION_SPLITS = ("val_easy", "val_hard")
REAL_SPLIT = "val_real"
"""The validation set of real spectra (``--val-data``), validated beside the two above."""


def split_stage(curriculum, split: str):
    """The stage whose data settings a synthetic validation set follows: ``val_easy`` the
    first stage, ``val_hard`` the last."""
    if split not in VALIDATION_SPLITS:
        raise ValueError(f"no synthetic validation split {split!r}; use {VALIDATION_SPLITS}")
    return curriculum.stages[0] if split == VALIDATION_SPLITS[0] else curriculum.stages[-1]


def stage_spectrum_settings(config: RunConfig, stage) -> SpectrumSettings:
    """What a run's generator draws in ``stage``: the stage's data settings, the run's
    residue distribution (plain generator) and the curriculum's world (if any)."""
    return SpectrumSettings.from_stage(
        stage, world=config.curriculum.world, residue_distribution=config.residue_distribution
    )


def synthetic_validation_set(
    config: RunConfig, split: str, device, n: int | None = None, seed: int | None = None
) -> SpectrumBatch:
    """The run's synthetic validation set ``split`` (``val_size`` spectra from ``val_seed``
    and the split's offset), or ``n`` spectra with its data settings drawn from ``seed``."""
    offset = VALIDATION_SPLITS.index(split)
    return generate_spectra(
        stage_spectrum_settings(config, split_stage(config.curriculum, split)),
        config.val_size if n is None else n,
        config.vocab,
        seed=config.val_seed + offset if seed is None else seed,
        device=device,
    )


def decode_max_length(config: RunConfig) -> int:
    """Most tokens a validation decodes: the curriculum's longest peptide (every stage), and
    one more when its world draws N-terminal modification tokens (the simulator puts one
    before up to ``max_length`` residues)."""
    curriculum = config.curriculum
    n_terminal = curriculum.world is not None and bool(config.vocab.n_terminal_ids)
    return curriculum.max_length + n_terminal


def real_length_range(curriculum) -> tuple[int, int]:
    """Peptide lengths of ``val_real``: the curriculum's overall range (every stage)."""
    return min(s.min_length for s in curriculum.stages), curriculum.max_length


def validation_plan(config: RunConfig) -> dict:
    """Everything in a run's config that what it logs at a validation depends on, besides
    the model: the synthetic sets' data settings, the ``val_real`` length range (with
    ``--val-data``) and the decoding length limit. Two runs with equal plans (and equal
    measurement settings) validate alike; ``fork.shared_prefix`` relies on it."""
    curriculum = config.curriculum
    plan = {
        split: stage_spectrum_settings(config, split_stage(curriculum, split))
        for split in VALIDATION_SPLITS
    }
    plan["decode_max_length"] = decode_max_length(config)
    if config.val_data:
        plan[REAL_SPLIT] = real_length_range(curriculum)
    return plan


def make_validation_sets(config: RunConfig, device: torch.device) -> dict:
    """``val_easy`` (first stage's data settings), ``val_hard`` (last stage's), and
    ``val_real`` when the run has ``val_data``.

    Made from ``val_seed`` alone, so every run with the same settings sees the
    same spectra, whatever its training seed. ``val_real`` holds up to
    ``val_size`` spectra of the val files with peptides in the curriculum's length
    range, evenly spaced over each file's length-sorted store (no randomness).
    """
    sets = {split: synthetic_validation_set(config, split, device) for split in VALIDATION_SPLITS}
    if config.val_data:
        real = load_real_spectra(config.val_data, config.vocab, MAX_CHARGE, config.skip_invalid)
        lengths = real_length_range(config.curriculum)
        if real.count(*lengths) == 0:
            raise RunError(
                f"--val-data holds no spectrum of a peptide with {lengths[0]}-{lengths[1]} "
                "residues (the curriculum's lengths); val_real would be empty"
            )
        sets[REAL_SPLIT] = real.evenly_spaced(config.val_size, *lengths).to(device)
    return sets


@torch.no_grad()
def validate(model, batch, config: RunConfig, masses, decode: bool, n_terminal=None) -> dict:
    """Loss terms, residue and token accuracy on one validation set (chunks of 256 spectra).

    Each is a mean over spectra of the chunk's value weighted by its spectra. ``masses``,
    ``n_terminal``: the residue tokens' masses and N-terminal flags (``losses.loss_terms``).
    A model with several refinement steps also gets, as lists (first step first), each
    step's own ``ce_by_step``, ``spectrum_by_step``, ``precursor_by_step`` (None at a step
    whose weight for it is 0) and ``residue_accuracy_by_step`` (the last is
    ``residue_accuracy``).
    """
    model.eval()
    sums: dict[str, float] = {}
    by_step_sums: dict[str, list[float | None]] = {}
    n_total = len(batch)
    for start in range(0, n_total, 256):
        chunk = batch.select(slice(start, start + 256))
        steps = refinement_logits(model, chunk)
        weights = step_weights(model, len(steps))
        terms, step_terms = refinement_step_terms(steps, chunk, masses, config.spectrum_sigma_da,
                                                  weights, n_terminal)  # fmt: skip
        values = {k: v.item() for k, v in terms.items()}
        values["residue_accuracy"] = residue_accuracy(steps[-1], chunk.tokens)
        values["token_accuracy"] = token_accuracy(steps[-1], chunk.tokens)
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value * len(chunk)
        if len(steps) > 1:
            by_step = {name: [None if v is None else v.item() for v in step_values]
                       for name, step_values in step_terms.items()}  # fmt: skip
            by_step["residue_accuracy"] = [residue_accuracy(step, chunk.tokens) for step in steps]
            for name, step_values in by_step.items():
                weighted = [None if v is None else v * len(chunk) for v in step_values]
                by_step_sums[name] = _summed(by_step_sums.get(name), weighted)
    result = {key: value / n_total for key, value in sums.items()}
    for name, values in by_step_sums.items():
        result[f"{name}_by_step"] = [None if v is None else v / n_total for v in values]
    if decode:
        subset = batch.select(slice(0, config.decode_size))
        result.update(decoded_metrics(model, subset, decode_max_length(config)))
    model.train()
    return result


def _summed(before: list[float | None] | None, more: list[float | None]) -> list[float | None]:
    """Two lists of per-step sums added up, step by step (None: a step never computed)."""
    if before is None:
        return more
    return [None if a is None else a + b for a, b in zip(before, more, strict=True)]


@torch.no_grad()
def accuracy_per_spectrum(model, batch: SpectrumBatch) -> dict[str, list[int]]:
    """``metrics.accuracy_counts`` of every spectrum of ``batch`` (chunks of 256, eval mode),
    as lists of ints: what ``validate``'s accuracies are made of, spectrum by spectrum."""
    model.eval()
    counts: dict[str, list[int]] = {}
    for start in range(0, len(batch), 256):
        chunk = batch.select(slice(start, start + 256))
        last = refinement_logits(model, chunk)[-1]  # a parallel model's last refinement step
        for key, values in accuracy_counts(last, chunk.tokens).items():
            counts.setdefault(key, []).extend(values.tolist())
    return counts


def decoded_metrics(model, batch: SpectrumBatch, max_length: int) -> dict[str, float]:
    """Decode a batch and score the peptides: what ``train`` logs every few validations.

    Greedy decoding for an autoregressive model; for a parallel model the
    arg-max of one forward pass (``decoding.parallel_decode`` without the mass-aware
    repair): neither looks at the precursor mass.

    Returns ``aa_precision``, ``aa_recall``, ``peptide_recall`` (see
    ``metrics.aa_match_metrics``) and ``precursor_error_ppm_median``: the
    median of the absolute precursor mass error (ppm) of the non-empty
    predictions (NaN if none). True peptides are ``batch.peptides`` when set,
    else the batch's tokens.
    """
    if is_parallel(model):
        predictions = parallel_decode(model, batch, max_length, mass_aware=False).predictions
    else:
        predictions = greedy_decode(model, batch, max_length)
    scores = aa_match_metrics([p.peptide for p in predictions], true_peptides(batch, model.vocab),
                              model.vocab.masses)  # fmt: skip
    errors = [abs(p.precursor_error_ppm) for p in predictions if p.peptide]
    scores["precursor_error_ppm_median"] = statistics.median(errors) if errors else math.nan
    return scores
