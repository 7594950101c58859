"""Accuracy metrics: teacher-forced token accuracy and Casanovo-compatible peptide metrics.

Two kinds of accuracy are used in pepcurr:

- **residue accuracy** (teacher-forced): the model sees the true prefix and
  predicts the next token; the fraction of residue positions (no ``<eos>``, no
  padding) where the arg-max is the right residue. Cheap, logged as
  ``residue_accuracy`` in every ``train`` and ``val`` record; it is the
  "accuracy" of the design document. **Token accuracy** is the same with the
  closing ``<eos>`` position counted too (``token_accuracy``, a second field):
  a model that predicts ``<eos>`` easily scores higher on it (0.362 token
  accuracy was 0.286 over residues alone).
- **AA precision / AA recall / peptide recall** of *decoded* peptides, computed
  exactly as Casanovo's ``denovo/evaluate.py`` does (and DeepNovo before it):
  a predicted residue matches a true one when the two prefixes (or suffixes)
  ending at them agree in cumulative mass within ``CUM_MASS_THRESHOLD_DA`` (0.5
  Da) and the two residues agree in mass within ``IND_MASS_THRESHOLD_DA`` (0.1
  Da). Masses, not letters, are compared, so I and L (113.084064 Da both) always
  match, and two swapped residues with equal total mass leave the residues
  around them matched.

``docs/metrics.md`` gives the definitions with worked examples. Every function
here is pure: sequences or tensors in, numbers out.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from curriculum_cli.spectra.chemistry import (
    C13_C12_DELTA_DA,
    STANDARD_MASSES,
    MassTable,
    parse_peptide,
    residue_mass_da,
)
from curriculum_cli.spectra.vocabulary import PAD_TOKEN, SPECIAL_TOKENS

if TYPE_CHECKING:
    import torch

DEFAULT_PRECURSOR_TOL_PPM = 50.0
"""Precursor mass tolerance (ppm) for a peptide to "fit" its spectrum (Casanovo's default)."""

CUM_MASS_THRESHOLD_DA = 0.5
"""Two prefixes (or suffixes) are aligned when their masses differ by less than this (Da)."""

IND_MASS_THRESHOLD_DA = 0.1
"""Two aligned residues match when their masses differ by less than this (Da)."""


def _target_positions(tokens: torch.Tensor) -> torch.Tensor:
    """Positions a model is scored on: residues and the one ``<eos>`` (not ``<pad>``)."""
    return tokens != PAD_TOKEN


def _residue_positions(tokens: torch.Tensor) -> torch.Tensor:
    """Positions holding a residue (no ``<eos>``, no ``<pad>``)."""
    return tokens >= len(SPECIAL_TOKENS)


def token_accuracy(logits: torch.Tensor, tokens: torch.Tensor) -> float:
    """Teacher-forced token accuracy: fraction of target positions predicted right, ``<eos>``
    included (``residue_accuracy`` leaves it out and is the primary accuracy).

    ``logits`` ``[B, T, V]``, ``tokens`` ``[B, T]`` (residue ids, one ``<eos>``,
    then ``<pad>``). Positions holding ``<pad>`` are ignored; the ``<eos>``
    position counts, so a model that does not know where a peptide ends cannot
    score 1. Returns a float in [0, 1] (NaN when there is no target position).
    """
    target = _target_positions(tokens)
    n_targets = int(target.sum())
    if n_targets == 0:
        return math.nan
    correct = (logits.argmax(dim=-1) == tokens) & target
    return int(correct.sum()) / n_targets


def residue_accuracy(logits: torch.Tensor, tokens: torch.Tensor) -> float:
    """Teacher-forced accuracy over residue positions only: "the accuracy" of pepcurr.

    Like ``token_accuracy`` but the ``<eos>`` position does not count (a model
    learns to place ``<eos>`` early and easily, which would flatter it), nor
    does padding. Returns a float in [0, 1] (NaN when there is no residue).
    """
    target = _residue_positions(tokens)
    n_targets = int(target.sum())
    if n_targets == 0:
        return math.nan
    correct = (logits.argmax(dim=-1) == tokens) & target
    return int(correct.sum()) / n_targets


def accuracy_counts(logits: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per spectrum, what the two accuracies count: ``[B]`` integer tensors.

    ``residues`` and ``residues_correct`` (residue positions, and those whose arg-max is
    right), ``tokens`` and ``tokens_correct`` (the same with ``<eos>``). Summed over
    spectra they give ``residue_accuracy`` and ``token_accuracy`` of the batch; kept
    per spectrum so that a validation set can be resampled spectrum by spectrum.
    """
    right = logits.argmax(dim=-1) == tokens
    residues, targets = _residue_positions(tokens), _target_positions(tokens)
    return {
        "residues": residues.sum(dim=1),
        "residues_correct": (right & residues).sum(dim=1),
        "tokens": targets.sum(dim=1),
        "tokens_correct": (right & targets).sum(dim=1),
    }


def _residue_masses(residues: list[str], table: MassTable) -> list[float]:
    return [residue_mass_da(residue, table) for residue in residues]


def _match_prefix(
    masses1: list[float],
    masses2: list[float],
    matches: list[bool],
    cum_mass_threshold_da: float,
    ind_mass_threshold_da: float,
    backward: bool,
) -> None:
    """Walk both sequences from one end, pairing residues by cumulative mass (in place).

    Forward: from index 0 up. Backward: from the last index down to the first
    position the forward pass left unmatched (Casanovo's ``i_stop``). Whichever
    side has the lighter cumulative mass advances when the two do not align.
    """
    if backward:
        stop = matches.index(False)
        i1, i2, step = len(masses1) - 1, len(masses2) - 1, -1

        def inside(a: int, b: int) -> bool:
            return a >= stop and b >= stop
    else:
        i1, i2, step = 0, 0, 1

        def inside(a: int, b: int) -> bool:
            return a < len(masses1) and b < len(masses2)

    cum1 = cum2 = 0.0
    while inside(i1, i2):
        mass1, mass2 = masses1[i1], masses2[i2]
        if abs((cum1 + mass1) - (cum2 + mass2)) < cum_mass_threshold_da:
            matches[max(i1, i2)] = abs(mass1 - mass2) < ind_mass_threshold_da
            i1, i2 = i1 + step, i2 + step
            cum1, cum2 = cum1 + mass1, cum2 + mass2
        elif cum2 + mass2 > cum1 + mass1:
            i1, cum1 = i1 + step, cum1 + mass1
        else:
            i2, cum2 = i2 + step, cum2 + mass2


def aa_match(
    predicted_residues: list[str],
    true_residues: list[str],
    cum_mass_threshold_da: float = CUM_MASS_THRESHOLD_DA,
    ind_mass_threshold_da: float = IND_MASS_THRESHOLD_DA,
    table: MassTable = STANDARD_MASSES,
) -> tuple[list[bool], bool]:
    """Which residues of two peptides match, Casanovo's ``aa_match`` in "best" mode.

    Both arguments are canonical residue lists (``chemistry.parse_peptide``; masses
    from ``table``); an N-terminal modification is its own item of its mass delta,
    as in Casanovo's tokens (``casanovo sequence --evaluate`` splits peptides into
    tokens so too). First
    the longest mass-aligned prefix is matched, then, unless every position
    matched, the longest mass-aligned suffix down to the first unmatched
    position. Returns one flag per position (``max(len(predicted),
    len(true))`` of them; position ``i`` is True when the residues paired there
    match) and whether the peptides match entirely (every flag True; an
    extra or missing residue leaves a False flag, so it never does).
    The result does not depend on the order of the two arguments.
    """
    masses1 = _residue_masses(predicted_residues, table)
    masses2 = _residue_masses(true_residues, table)
    matches = [False] * max(len(masses1), len(masses2))
    _match_prefix(masses1, masses2, matches, cum_mass_threshold_da, ind_mass_threshold_da, False)
    if all(matches):
        return matches, True
    _match_prefix(masses1, masses2, matches, cum_mass_threshold_da, ind_mass_threshold_da, True)
    return matches, all(matches)


def aa_match_metrics(
    predicted: list[str], true: list[str], table: MassTable = STANDARD_MASSES
) -> dict[str, float]:
    """AA precision, AA recall and peptide recall of predicted peptides, as Casanovo computes them.

    ``predicted`` and ``true`` are equal-length lists of peptide strings in any
    spelling ``chemistry.parse_peptide`` reads (ProForma such as
    ``PEPM[Oxidation]C[Carbamidomethyl]K``, mass deltas, Casanovo v4); an empty
    string in ``predicted`` means "no prediction" (0 residues, not matched).

    - ``aa_precision``: matched residues / predicted residues
    - ``aa_recall``: matched residues / true residues
    - ``peptide_recall``: peptides matched entirely / all peptides

    Each is a fraction in [0, 1]; a ratio whose denominator is 0 is 0.0
    (Casanovo adds 1e-8 to every denominator, which differs from the exact
    ratios here by less than 1e-8). ``table``: the names and masses peptides may use
    (a run's ``Vocabulary.masses``). Raises ``PeptideError`` for an unknown
    residue and ``ValueError`` when the lists differ in length.
    """
    if len(predicted) != len(true):
        raise ValueError(
            f"aa_match_metrics needs equal-length lists; got {len(predicted)} predicted "
            f"and {len(true)} true peptides"
        )
    n_matched = n_predicted = n_true = n_peptides_matched = 0
    for predicted_peptide, true_peptide in zip(predicted, true, strict=True):
        predicted_residues = (
            parse_peptide(predicted_peptide, table) if predicted_peptide.strip() else []
        )
        true_residues = parse_peptide(true_peptide, table)
        matches, peptide_match = aa_match(predicted_residues, true_residues, table=table)
        n_matched += sum(matches)
        n_predicted += len(predicted_residues)
        n_true += len(true_residues)
        n_peptides_matched += peptide_match
    return {
        "aa_precision": n_matched / n_predicted if n_predicted else 0.0,
        "aa_recall": n_matched / n_true if n_true else 0.0,
        "peptide_recall": n_peptides_matched / len(true) if true else 0.0,
    }


def mass_error_ppm(mass_da, precursor_mass_da, isotope: int = 0):
    """Signed error of a calculated neutral mass against the observed precursor's, in ppm.

    ``(mass - observed) / observed * 1e6`` where ``observed`` is the
    precursor's neutral mass less ``isotope`` 13C spacings (the instrument may
    have picked the first isotope peak instead of the monoisotopic one).
    Positive: the peptide is heavier than the precursor. Neutral masses, not
    m/z, so the value does not depend on the charge (Casanovo compares m/z;
    the two differ by under 0.2% of the error). Works on floats and tensors.
    """
    observed = precursor_mass_da - isotope * C13_C12_DELTA_DA
    return (mass_da - observed) / observed * 1e6
