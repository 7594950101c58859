"""Validation during training: the fixed validation sets of a run, and what is measured on them.

``val_easy`` follows the curriculum's first stage, ``val_hard`` its last, and
``val_real`` (with ``--val-data``) holds real annotated spectra. Each
validation gives the loss terms and teacher-forced accuracies of a set, and,
every ``decode_every`` validations, greedy-decoded peptides scored as Casanovo
scores them (``decoded_metrics``).
"""

from __future__ import annotations

import math
import statistics

import torch

from curriculum_cli.errors import RunError
from curriculum_cli.model.decoding import greedy_decode, true_peptides
from curriculum_cli.model.losses import loss_terms
from curriculum_cli.model.metrics import aa_match_metrics, residue_accuracy, token_accuracy
from curriculum_cli.spectra.batch import SpectrumBatch
from curriculum_cli.spectra.chemistry import MAX_CHARGE
from curriculum_cli.spectra.sampling import load_real_spectra
from curriculum_cli.spectra.synthetic import SpectrumSettings, generate_spectra
from curriculum_cli.training.config import RunConfig

VALIDATION_SPLITS = ("val_easy", "val_hard")
REAL_SPLIT = "val_real"
"""The validation set of real spectra (``--val-data``), validated beside the two above."""


def make_validation_sets(config: RunConfig, device: torch.device) -> dict:
    """``val_easy`` (first stage's data settings), ``val_hard`` (last stage's), and
    ``val_real`` when the run has ``val_data``.

    Made from ``val_seed`` alone, so every run with the same settings sees the
    same spectra, whatever its training seed. ``val_real`` holds up to
    ``val_size`` spectra of the val files with peptides in the curriculum's length
    range, evenly spaced over each file's length-sorted store (no randomness).
    """
    stages = config.curriculum.stages
    sets = {
        split: generate_spectra(
            SpectrumSettings.from_stage(stage, world=config.curriculum.world),
            config.val_size,
            config.vocab,
            seed=config.val_seed + offset,
            device=device,
        )
        for offset, (split, stage) in enumerate(
            zip(VALIDATION_SPLITS, (stages[0], stages[-1]), strict=True)
        )
    }
    if config.val_data:
        real = load_real_spectra(config.val_data, config.vocab, MAX_CHARGE, config.skip_invalid)
        lengths = (min(s.min_length for s in stages), config.curriculum.max_length)
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
    """
    model.eval()
    sums: dict[str, float] = {}
    n_total = len(batch)
    for start in range(0, n_total, 256):
        chunk = batch.select(slice(start, start + 256))
        logits = model(chunk)
        terms = loss_terms(logits, chunk, masses, config.spectrum_sigma_da, n_terminal)
        values = {k: v.item() for k, v in terms.items()}
        values["residue_accuracy"] = residue_accuracy(logits, chunk.tokens)
        values["token_accuracy"] = token_accuracy(logits, chunk.tokens)
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value * len(chunk)
    result = {key: value / n_total for key, value in sums.items()}
    if decode:
        subset = batch.select(slice(0, config.decode_size))
        result.update(decoded_metrics(model, subset, config.curriculum.max_length))
    model.train()
    return result


def decoded_metrics(model, batch: SpectrumBatch, max_length: int) -> dict[str, float]:
    """Greedy-decode a batch and score the peptides: what ``train`` logs every few validations.

    Returns ``aa_precision``, ``aa_recall``, ``peptide_recall`` (see
    ``metrics.aa_match_metrics``) and ``precursor_error_ppm_median``: the
    median of the absolute precursor mass error (ppm) of the non-empty
    predictions (NaN if none). True peptides are ``batch.peptides`` when set,
    else the batch's tokens.
    """
    predictions = greedy_decode(model, batch, max_length)
    scores = aa_match_metrics([p.peptide for p in predictions], true_peptides(batch, model.vocab),
                              model.vocab.masses)  # fmt: skip
    errors = [abs(p.precursor_error_ppm) for p in predictions if p.peptide]
    scores["precursor_error_ppm_median"] = statistics.median(errors) if errors else math.nan
    return scores
