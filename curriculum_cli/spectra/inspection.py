"""``pepcurr inspect``: does an MGF file look right? Charges, peaks, peptides, modifications,
the precursor error of SEQ against PEPMASS, and the b/y ions found (a report as data;
``cli.render`` shows it)."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from curriculum_cli.spectra.chemistry import (
    MAX_PEAK_MZ,
    MIN_PEAK_MZ,
    MassTable,
    mz_from_neutral_mass,
    peptide_fragment_ladder,
    peptide_neutral_mass_da,
    residue_mass_da,
)
from curriculum_cli.spectra.mgf import read_mgf
from curriculum_cli.spectra.peaks import PeakFilter
from curriculum_cli.spectra.stage_data import MAX_PEPTIDE_LENGTH, MIN_PEPTIDE_LENGTH
from curriculum_cli.spectra.vocabulary import Vocabulary


@dataclass(frozen=True)
class ValueRange:
    """min, median, (mean,) max of a per-spectrum count or length."""

    min: float
    median: float
    max: float
    mean: float | None = None


@dataclass(frozen=True)
class PrecursorErrorSummary:
    """SEQ's precursor m/z against PEPMASS, in ppm (signed: SEQ heavier is positive)."""

    median: float
    median_abs: float
    worst: float
    worst_title: str
    n_over_tolerance: int
    tolerance_ppm: float


@dataclass(frozen=True)
class CoverageSummary:
    """Per spectrum, the fraction of SEQ's b/y ions found within ``tolerance_da`` of a peak."""

    mean: float
    median: float
    min: float
    min_title: str
    tolerance_da: float


@dataclass(frozen=True)
class MgfReport:
    """What ``inspect_mgf`` found in a file (``dataclasses.asdict`` gives its JSON).

    ``skipped`` holds one message per invalid spectrum; ``charges`` maps a
    charge (as text) to its count; ``peaks_in_file``/``peaks_used`` are per
    spectrum before and after ``preprocessing``; ``n_outside_vocabulary``
    counts annotated spectra with no training target because of
    ``residues_outside_vocabulary``; ``n_outside_lengths`` those whose peptide is
    shorter or longer than any stage may be (``stage_data``'s 6-40 residues). The
    last three are None when no spectrum has a SEQ.
    """

    path: str
    n_spectra: int
    n_skipped: int
    skipped: list[str]
    preprocessing: str
    charges: dict[str, int]
    peaks_in_file: ValueRange
    peaks_used: ValueRange
    n_annotated: int
    modifications: dict[str, int]
    n_outside_vocabulary: int
    residues_outside_vocabulary: list[str]
    n_outside_lengths: int = 0
    peptide_length: ValueRange | None = None
    precursor_error_ppm: PrecursorErrorSummary | None = None
    fragment_coverage: CoverageSummary | None = None


def inspect_mgf(
    path: str | Path,
    tolerance_da: float = 0.02,
    vocab: Vocabulary | None = None,
    peak_filter: PeakFilter = PeakFilter(),  # noqa: B008 (frozen dataclass: immutable)
    skip_invalid: bool = False,
    precursor_tol_ppm: float = 50.0,
) -> MgfReport:
    """A report telling a user whether an MGF file looks right (see ``MgfReport``).

    Precursor error: SEQ's m/z against PEPMASS, spectra over
    ``precursor_tol_ppm`` counted. Coverage: b and y ions of SEQ at charge 1,
    plus charge 2 when the precursor is 3+, inside m/z 50-2500, found within
    ``tolerance_da`` (Da) of a used peak. ``vocab`` defaults to ``Vocabulary.default()``.
    """
    vocab = vocab or Vocabulary.default()
    result = read_mgf(path, vocab, peak_filter, skip_invalid)
    batch = result.batch
    titles = batch.titles or []
    annotated = [i for i, peptide in enumerate(batch.peptides or []) if peptide]
    table = vocab.masses
    residues = {i: vocab.parse(batch.peptides[i]) for i in annotated}
    modifications = Counter(r for i in annotated for r in residues[i] if "[" in r)
    lengths = [sum(r not in table.n_terms for r in residues[i]) for i in annotated]
    charges = Counter(int(z) for z in batch.precursor_charge.tolist())
    fields = dict(
        path=str(path),
        n_spectra=len(batch),
        n_skipped=result.n_skipped,
        skipped=result.skipped,
        preprocessing=peak_filter.describe(),
        charges={str(z): charges[z] for z in sorted(charges)},
        peaks_in_file=_summary(result.n_peaks_in_file),
        peaks_used=_summary(batch.peak_mask.sum(-1).tolist()),
        n_annotated=len(annotated),
        modifications=dict(modifications.most_common()),
        n_outside_vocabulary=sum(int(batch.lengths[i]) == 0 for i in annotated),
        residues_outside_vocabulary=sorted(
            {r for i in annotated for r in residues[i]} - set(vocab.residues) - {"I"}
        ),
        n_outside_lengths=sum(not MIN_PEPTIDE_LENGTH <= n <= MAX_PEPTIDE_LENGTH for n in lengths),
    )
    if not annotated:
        return MgfReport(**fields)

    errors_ppm = []
    for i in annotated:
        charge = int(batch.precursor_charge[i])
        expected_mz = mz_from_neutral_mass(peptide_neutral_mass_da(residues[i], table), charge)
        errors_ppm.append((result.precursor_mz[i] - expected_mz) / expected_mz * 1e6)
    worst = max(range(len(annotated)), key=lambda j: abs(errors_ppm[j]))
    precursor_error = PrecursorErrorSummary(
        median=statistics.median(errors_ppm),
        median_abs=statistics.median(abs(e) for e in errors_ppm),
        worst=errors_ppm[worst],
        worst_title=titles[annotated[worst]],
        n_over_tolerance=sum(abs(e) > precursor_tol_ppm for e in errors_ppm),
        tolerance_ppm=precursor_tol_ppm,
    )

    rows = torch.tensor(annotated)
    coverage = _fragment_coverage(
        [residues[i] for i in annotated],
        batch.mz[rows],
        batch.peak_mask[rows],
        batch.precursor_charge[rows],
        tolerance_da,
        table,
    ).tolist()
    lowest = min(range(len(annotated)), key=lambda j: coverage[j])
    return MgfReport(
        **fields,
        peptide_length=_summary(lengths, mean=False),
        precursor_error_ppm=precursor_error,
        fragment_coverage=CoverageSummary(
            mean=statistics.fmean(coverage),
            median=statistics.median(coverage),
            min=coverage[lowest],
            min_title=titles[annotated[lowest]],
            tolerance_da=tolerance_da,
        ),
    )


def _summary(values: list[int] | list[float], mean: bool = True) -> ValueRange:
    """min, median, (mean,) max of a non-empty list."""
    return ValueRange(
        min=min(values),
        median=statistics.median(values),
        max=max(values),
        mean=statistics.fmean(values) if mean else None,
    )


def _fragment_coverage(
    peptides: list[list[str]],
    peak_mz: torch.Tensor,
    peak_mask: torch.Tensor,
    precursor_charge: torch.Tensor,
    tolerance_da: float,
    table: MassTable,
) -> torch.Tensor:
    """Per spectrum, the fraction of its b/y ions within ``tolerance_da`` (Da) of a peak.

    Charge 1 ions always; charge 2 ions too when the precursor charge is >= 3
    (``chemistry.peptide_fragment_ladder``); only ions inside the m/z window of
    every pepcurr spectrum (``MIN_PEAK_MZ`` to ``MAX_PEAK_MZ``) count.
    An N-terminal modification's mass counts in every b ion.
    """
    width = max(len(p) for p in peptides)
    masses = torch.zeros(len(peptides), width, dtype=torch.float64)
    lengths = torch.zeros(len(peptides), dtype=torch.int64)
    for row, residues in enumerate(peptides):
        position = 0
        for name in residues:
            masses[row, position] += residue_mass_da(name, table)
            position += name not in table.n_terms  # an N-term mod adds to the first residue
        lengths[row] = position
    ladder_mz, ladder_ok = peptide_fragment_ladder(masses, lengths, precursor_charge)
    fragments = ladder_mz.flatten(-2)
    inside = (fragments >= MIN_PEAK_MZ) & (fragments <= MAX_PEAK_MZ)
    fragment_valid = ladder_ok.flatten(-2) & inside

    # Peaks are sorted ascending with padding last: pad with +inf to keep them sorted.
    peaks = peak_mz.double().masked_fill(~peak_mask, math.inf)
    right = torch.searchsorted(peaks, fragments).clamp(max=peaks.shape[-1] - 1)
    left = (right - 1).clamp(min=0)
    nearest = torch.minimum(
        (peaks.gather(-1, right) - fragments).abs(), (peaks.gather(-1, left) - fragments).abs()
    )
    found = (nearest <= tolerance_da) & fragment_valid
    return found.sum(-1) / fragment_valid.sum(-1).clamp(min=1)
