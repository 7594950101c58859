"""Every ion an annotated spectrum may show, and which of its peaks they explain.

What ``calibration`` fits the simulator on and what ``analysis.realism`` measures
with, on real and synthetic spectra alike (numpy, one spectrum at a time). The ion
families are the rows of ``ions.ION_FAMILIES``:

- ``b``, ``y`` and ``a`` (b - CO) ions, and the neutral losses ``b-H2O``, ``b-NH3``,
  ``y-H2O``, ``y-NH3``, at charges 1 to ``ions.max_fragment_charge`` (min(precursor
  charge - 1, 3), at least 1). A fragment loses H2O only when it holds S, T, D or E, NH3
  only when it holds R, K, N or Q (a deamidated N counts as D: ``residue_letter``);
- ``immonium`` ions (residue - CO + proton) of the residues the peptide holds;
- ``internal`` b-type and ``internal-a`` (a-type) fragments: residues ``start`` to
  ``end - 1`` with ``1 <= start`` and ``end <= L - 1`` (never a terminal residue), 2 or
  more residues, charge 1;
- ``precursor``, ``precursor-H2O``, ``precursor-NH3`` at charges 1 to the precursor's;
- each also as its 13C isotope peaks, +1 and +2 times ``C13_C12_DELTA_DA / z``.

An N-terminal modification's mass is part of every b, a and internal-from-the-start
ion (it is not a residue of its own).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curriculum_cli.errors import MgfError, PeptideError
from curriculum_cli.spectra.chemistry import (
    C13_C12_DELTA_DA,
    H2O_MASS_DA,
    PROTON_MASS_DA,
    RESIDUE_MASS_DA,
    STANDARD_MASSES,
    STANDARD_RESIDUES,
    MassTable,
    parse_peptide,
)
from curriculum_cli.spectra.ions import FAMILY, ION_FAMILIES, families_in
from curriculum_cli.spectra.mgf import FIX_HINT, read_mgf
from curriculum_cli.spectra.peaks import PeakFilter
from curriculum_cli.spectra.vocabulary import Vocabulary

TABLE_TOLERANCE_PPM = 20.0
"""An ion explains a peak within this many ppm of its m/z."""

BASIC = frozenset("RKH")
"""Basic residues: they hold protons (the mobile-proton effects of ``intensity_fit``)."""

_SAME_MASS_DA = 0.01


def residue_letter(name: str, mass_da: float) -> str:
    """The residue a (modified) residue behaves as in fragmentation: its own letter, or the
    standard residue it is isobaric with (``N[Deamidated]`` is an aspartate: ``D``); I as L."""
    letter = name[0]
    if name not in STANDARD_RESIDUES:
        for other in STANDARD_RESIDUES:
            if other[0] != letter and abs(RESIDUE_MASS_DA[other] - mass_da) <= _SAME_MASS_DA:
                letter = other[0]
    return "L" if letter == "I" else letter


@dataclass
class AnnotatedSpectrum:
    """One spectrum with its peptide: peaks m/z ascending (base peak 1), the observed
    precursor, and the peptide's residues (canonical names, the N-terminal modification
    apart)."""

    mz: np.ndarray
    intensity: np.ndarray
    charge: int
    precursor_mz: float  # as observed (PEPMASS)
    residues: list[str]
    own_masses_da: np.ndarray  # [L] each residue's mass
    n_term: str | None = None
    n_term_mass_da: float = 0.0
    title: str = ""

    @property
    def length(self) -> int:
        return len(self.residues)

    @property
    def residue_masses_da(self) -> np.ndarray:
        """Residue masses with the N-terminal modification's in the first (b-ion masses)."""
        masses = self.own_masses_da.copy()
        masses[0] += self.n_term_mass_da
        return masses

    @property
    def precursor_mass_da(self) -> float:
        """Observed neutral mass (Da)."""
        return self.charge * (self.precursor_mz - PROTON_MASS_DA)

    @property
    def peptide_mass_da(self) -> float:
        """The annotated peptide's neutral mass (Da)."""
        return float(self.own_masses_da.sum() + self.n_term_mass_da + H2O_MASS_DA)

    @property
    def letters(self) -> str:
        """``residue_letter`` of each residue."""
        return "".join(residue_letter(r, m) for r, m in zip(self.residues, self.own_masses_da,
                                                             strict=True))  # fmt: skip

    def with_peaks(self, mz: np.ndarray, intensity: np.ndarray) -> AnnotatedSpectrum:
        return dataclasses.replace(self, mz=mz, intensity=intensity)


def annotated_spectrum(
    mz: np.ndarray, intensity: np.ndarray, charge: int, precursor_mz: float, peptide: str,
    table: MassTable, title: str = "",
) -> AnnotatedSpectrum:  # fmt: skip
    """An ``AnnotatedSpectrum`` from a peptide string (any spelling ``table`` reads)."""
    names = parse_peptide(peptide, table)
    n_term = names[0] if names[0] in table.n_terms else None
    residues = names[1:] if n_term else names
    masses = np.array([table.residues[r] for r in residues], dtype=np.float64)
    n_term_mass = table.n_terms[n_term] if n_term else 0.0
    return AnnotatedSpectrum(mz, intensity, charge, precursor_mz, residues, masses, n_term,
                             n_term_mass, title)  # fmt: skip


def theoretical_ions(spectrum: AnnotatedSpectrum, isotopes: int = 2,
                     internal: bool = True) -> dict[str, np.ndarray]:  # fmt: skip
    """Every ion of ``spectrum``'s peptide as parallel arrays.

    Keys: ``mz``; ``family`` (index into ``ions.FAMILIES``); ``charge``; ``site`` (the
    cleavage 0..L-2 of a b/y-derived ion, an internal fragment's first residue, an
    immonium ion's residue (its first occurrence), -1 for the precursor);
    ``span`` (residues in the fragment); ``isotope`` (0, 1, 2); ``mono`` (row of its
    monoisotopic ion). Monoisotopic rows come first, then the +1 rows, then the +2 rows.
    """
    masses, letters = spectrum.residue_masses_da, spectrum.letters
    length, precursor_charge = len(masses), spectrum.charge
    peptide = masses.sum() + H2O_MASS_DA
    prefix = np.cumsum(masses)[:-1]  # b neutral masses at the L-1 sites
    suffix = peptide - prefix
    site = np.arange(length - 1)

    def holds(residues: frozenset, reverse: bool) -> np.ndarray:
        found = np.array([c in residues for c in (letters[::-1] if reverse else letters)])
        counts = np.cumsum(found)
        return (counts[::-1][1:] if reverse else counts[:-1]) > 0

    # Each family's piece: (neutral mass, site, span) per ion, by series or group.
    pieces: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray] | None] = {
        "b": (prefix, site, site + 1),
        "y": (suffix, site, length - 1 - site),
        "precursor": (np.array([peptide]), np.array([-1]), np.array([length])),
    }
    own, first = np.unique(np.round(spectrum.own_masses_da, 5), return_index=True)
    pieces["immonium"] = (own, first, np.ones(len(own), int))
    pieces["internal"] = None
    if internal and length >= 4:
        cumulative = np.r_[0.0, np.cumsum(masses)]
        starts, ends = np.triu_indices(length + 1, k=2)  # residues [start, end)
        inside = (starts >= 1) & (ends <= length - 1)
        starts, ends = starts[inside], ends[inside]
        pieces["internal"] = (cumulative[ends] - cumulative[starts], starts, ends - starts)
    rows: list[tuple[np.ndarray, str, int, np.ndarray, np.ndarray]] = []
    for family in ION_FAMILIES:
        piece = pieces[family.series or family.group]
        if piece is None:  # no internal fragments asked for, or too short a peptide
            continue
        neutral, sites, spans = piece
        allowed = np.ones(len(neutral), bool)
        if family.needs:  # a series fragment holding one of the residues
            allowed = holds(family.needs, reverse=family.series == "y")
        for z in family.charges(precursor_charge):
            rows.append((neutral[allowed] + family.shift_da, family.name, z, sites[allowed],
                         spans[allowed]))  # fmt: skip

    neutral = np.concatenate([r[0] for r in rows])
    family = np.concatenate([np.full(len(r[0]), FAMILY[r[1]]) for r in rows])
    charge = np.concatenate([np.full(len(r[0]), r[2]) for r in rows])
    sites = np.concatenate([r[3] for r in rows])
    spans = np.concatenate([r[4] for r in rows])
    mono_mz = (neutral + charge * PROTON_MASS_DA) / charge
    n = len(mono_mz)
    steps = range(isotopes + 1)
    return {
        "mz": np.concatenate([mono_mz + k * C13_C12_DELTA_DA / charge for k in steps]),
        "family": np.tile(family, len(steps)),
        "charge": np.tile(charge, len(steps)),
        "site": np.tile(sites, len(steps)),
        "span": np.tile(spans, len(steps)),
        "isotope": np.repeat(np.arange(len(steps)), n),
        "mono": np.tile(np.arange(n), len(steps)),
    }


def match_peaks(peak_mz: np.ndarray, ion_mz: np.ndarray,
                tol_ppm: float = TABLE_TOLERANCE_PPM) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Index of the peak nearest each ion (``peak_mz`` ascending) and whether it lies within
    ``tol_ppm`` of the ion's m/z."""
    if len(peak_mz) == 0:
        return np.zeros(len(ion_mz), int), np.zeros(len(ion_mz), bool)
    right = np.searchsorted(peak_mz, ion_mz).clip(max=len(peak_mz) - 1)
    left = (right - 1).clip(min=0)
    nearest = np.where(np.abs(peak_mz[right] - ion_mz) < np.abs(peak_mz[left] - ion_mz),
                       right, left)  # fmt: skip
    return nearest, np.abs(peak_mz[nearest] - ion_mz) <= tol_ppm * 1e-6 * ion_mz


@dataclass
class Annotation:
    """The ions of a spectrum with their matches, and a label per peak."""

    ions: dict[str, np.ndarray]  # theoretical_ions + "found" (bool) and "peak" (its index)
    family: np.ndarray  # [peaks] family of the best ion explaining each peak, -1: none
    isotope: np.ndarray  # [peaks] its isotope (0, 1, 2), -1: none
    table_by: np.ndarray  # [peaks] bool: a b/y ion at charge 1 (and 2 for 3+ precursors)


def annotate(spectrum: AnnotatedSpectrum, tol_ppm: float = TABLE_TOLERANCE_PPM) -> Annotation:
    """Match every ion of ``theoretical_ions`` to the spectrum's peaks and label each peak.

    ``table_by`` follows the issue's realism table: b and y ions (monoisotopic) at charge
    1, and at charge 2 as well for precursors of charge 3 or more, as pepcurr's fragment
    ladder states them.
    """
    ions = theoretical_ions(spectrum)
    peak, found = match_peaks(spectrum.mz, ions["mz"], tol_ppm)
    ions["found"], ions["peak"] = found, peak
    n_peaks = len(spectrum.mz)
    families = np.array([family.priority for family in ION_FAMILIES])
    priority = families[ions["family"]] + 10 * (ions["isotope"] > 0)
    hits = np.nonzero(found)[0]
    best = np.full(n_peaks, 10**6)
    np.minimum.at(best, peak[hits], priority[hits])
    winners = hits[priority[hits] == best[peak[hits]]]
    family = np.full(n_peaks, -1)
    isotope = np.full(n_peaks, -1)
    family[peak[winners]] = ions["family"][winners]
    isotope[peak[winners]] = ions["isotope"][winners]
    table_charge = 2 if spectrum.charge >= 3 else 1
    terminal = [FAMILY[family.name] for family in families_in("terminal")]
    is_by = np.isin(ions["family"], terminal) & (ions["isotope"] == 0)
    table = is_by & (ions["charge"] <= table_charge) & found
    table_by = np.zeros(n_peaks, bool)
    table_by[peak[table]] = True
    return Annotation(ions, family, isotope, table_by)


def read_annotated_mgf(path: Path, peak_filter: PeakFilter) -> list[AnnotatedSpectrum]:
    """Every spectrum of an annotated MGF file, peaks through ``peak_filter``; an ``MgfError``
    naming the spectrum when one has no SEQ or a peptide pepcurr cannot read."""
    result = read_mgf(path, Vocabulary.named("casanovo"), peak_filter, hint=FIX_HINT)
    batch = result.batch
    counts = batch.peak_mask.sum(-1).tolist()
    spectra = []
    for row, (index, peptide) in enumerate(zip(result.file_index, batch.peptides, strict=True)):
        where = f"{path}: spectrum {index} (TITLE={batch.titles[row] or '(no TITLE)'})"
        if not peptide:
            raise MgfError(f"{where}: no SEQ; calibrate and realism need annotated spectra")
        mz = batch.mz[row, : counts[row]].double().numpy()
        intensity = batch.intensity[row, : counts[row]].double().numpy()
        try:
            spectra.append(annotated_spectrum(
                mz, intensity, int(batch.precursor_charge[row]), result.precursor_mz[row],
                peptide, STANDARD_MASSES, batch.titles[row],
            ))  # fmt: skip
        except PeptideError as error:
            raise MgfError(f"{where}: {error}") from None
    return spectra
