"""Residues, masses and fragment m/z: the physics every loss and metric stands on.

All masses are monoisotopic, in Dalton (Da). Residue masses follow Casanovo's
``config.yaml`` so that pepcurr's metrics and Casanovo's agree to the last
digit. Cysteine is always carbamidomethylated (a fixed modification in
practically every proteomics workflow), so a bare ``C`` means
``C[Carbamidomethyl]`` (160.030649 Da).

Peptide strings are accepted in three spellings and turned into one canonical
list of residue names:

- ProForma names: ``M[Oxidation]``, ``C[Carbamidomethyl]``, ``[Acetyl]-PEPTIDE``
- ProForma mass deltas: ``M[+15.995]``, ``[+42.011]-PEPTIDE``
- Casanovo v4: ``M+15.995``, ``C+57.021``, ``+42.011PEPTIDE``

The batched functions take tensors of residue masses (``[..., L]``, 0 Da at
padding) so that the same code scores one-hot true peptides and the soft
"expected mass" predictions of the spectrum loss.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from curriculum_cli.errors import PeptideError

if TYPE_CHECKING:
    import torch

PROTON_MASS_DA = 1.007276
H2O_MASS_DA = 18.010565
NH3_MASS_DA = 17.026549
CO_MASS_DA = 27.994915
"""Lost by a b ion to make the a ion (and by a residue to make its immonium ion)."""
C13_C12_DELTA_DA = 1.003355
"""Mass difference between 13C and 12C (Da): the spacing of an ion's isotope peaks (times
1/z in m/z)."""

AVERAGINE_PLUS_1_PER_DA = 5.416e-4
"""I(+1)/I(0) of a peptide per Da of its mass: averagine (C4.9384 H7.7583 N1.3577 O1.4773
S0.0417 per 111.1254 Da; Senko, Beu and McLafferty 1995) with natural isotope abundances,
the Poisson approximation."""

AVERAGINE_PLUS_2_EXTRA_PER_DA = 4.40e-5
"""The part of I(+2)/I(0) per Da that is not the Poisson term (18O, 34S): I(+2)/I(0) =
lambda^2 / 2 + this * mass, lambda = ``AVERAGINE_PLUS_1_PER_DA`` * mass."""

MASS_DEFECT_SLOPE = 1.000495
"""Monoisotopic mass of a peptide per nominal Da (averagine): peptide-like m/z sit near
whole multiples of it."""

MAX_CHARGE = 10
"""Highest precursor charge pepcurr reads and the model embeds."""

MIN_PEAK_MZ = 50.0
MAX_PEAK_MZ = 2500.0
"""The m/z window of every spectrum pepcurr uses (Casanovo's preprocessing defaults): the MGF
reader drops peaks outside it (``peaks.PeakFilter``) and the generator never makes one."""

C_UNMODIFIED_MASS_DA = 103.009185
"""Cysteine without its fixed carbamidomethylation (Da): the base of a mass delta on C."""

#: Residue masses (Da), as in Casanovo's config. Keys are canonical names.
RESIDUE_MASS_DA: dict[str, float] = {
    "G": 57.021464,
    "A": 71.037114,
    "S": 87.032028,
    "P": 97.052764,
    "V": 99.068414,
    "T": 101.047670,
    "C[Carbamidomethyl]": 160.030649,  # C_UNMODIFIED_MASS_DA + 57.021464
    "L": 113.084064,
    "I": 113.084064,
    "N": 114.042927,
    "D": 115.026943,
    "Q": 128.058578,
    "K": 128.094963,
    "E": 129.042593,
    "M": 131.040485,
    "H": 137.058912,
    "F": 147.068414,
    "R": 156.101111,
    "Y": 163.063329,
    "W": 186.079313,
    "M[Oxidation]": 147.035400,  # 131.040485 + 15.994915
    "N[Deamidated]": 115.026943,  # 114.042927 + 0.984016
    "Q[Deamidated]": 129.042594,  # 128.058578 + 0.984016
}

#: Amino-acid composition of UniProtKB/Swiss-Prot (percent of all residues), from the release
#: statistics at https://web.expasy.org/docs/relnotes/relstat.html (section "Amino acid
#: composition"; stable to +/-0.02 points over the releases of 2021-2024). They sum to 99.91:
#: the rest are rare letters (U, O, X...). The synthetic generator's tryptic peptides use them.
SWISS_PROT_RESIDUE_PERCENT: dict[str, float] = {
    "A": 8.25, "Q": 3.93, "L": 9.65, "S": 6.64, "R": 5.53, "E": 6.72, "K": 5.80,
    "T": 5.35, "N": 4.06, "G": 7.07, "M": 2.41, "W": 1.10, "D": 5.46, "H": 2.27,
    "F": 3.86, "Y": 2.92, "C": 1.38, "I": 5.91, "P": 4.74, "V": 6.86,
}  # fmt: skip


class ResidueDistribution(StrEnum):
    """How synthetic peptides draw their residues (``synthetic.residue_weights``): ``tryptic``
    (the Swiss-Prot composition above, ending in K or R) or ``uniform``."""

    tryptic = "tryptic"
    uniform = "uniform"


#: N-terminal modifications (Da), as in Casanovo's config. Canonical form ``[Name]-``.
N_TERM_MASS_DA: dict[str, float] = {
    "[Acetyl]-": 42.010565,
    "[Carbamyl]-": 43.005814,
    "[Ammonia-loss]-": -17.026549,
    "[+25.980265]-": 25.980265,  # carbamylation and NH3 loss
}

#: The unmodified residues of the 20 standard amino acids (C stands for C[Carbamidomethyl]).
STANDARD_RESIDUES = (
    "G", "A", "S", "P", "V", "T", "C[Carbamidomethyl]", "L", "I", "N",
    "D", "Q", "K", "E", "M", "H", "F", "R", "Y", "W",
)  # fmt: skip

# A mass delta matches a known modification when within this many Da.
DELTA_TOLERANCE_DA = 0.01


@dataclass(frozen=True)
class MassTable:
    """The names a peptide string may use and their masses (Da): what ``parse_peptide`` reads.

    ``residues``: canonical residue names (``M``, ``M[Oxidation]``) -> residue mass;
    ``n_terms``: N-terminal modifications (``[Acetyl]-``) -> mass delta. ``STANDARD_MASSES``
    holds the tables above; a vocabulary with tokens of its own extends them
    (``Vocabulary.masses``).
    """

    residues: Mapping[str, float]
    n_terms: Mapping[str, float]


STANDARD_MASSES = MassTable(RESIDUE_MASS_DA, N_TERM_MASS_DA)

_TOKEN_RE = re.compile(
    r"""
    (?P<nterm>^(\[[^\]]+\]-|[+-]\d+(?:\.\d+)?(?:[+-]\d+(?:\.\d+)?)*(?=[A-Z])))  # N-term mod
    | (?P<aa>[A-Z])(?:\[(?P<mod>[^\]]+)\]|(?P<delta>[+-]\d+(?:\.\d+)?))?
    """,
    re.VERBOSE,
)
_NUMBER_RE = re.compile(r"[+-]\d+(\.\d+)?")


def _canonical_residue(
    aa: str, mod: str | None, delta: str | None, peptide: str, table: MassTable
) -> str:
    """The canonical name of residue ``aa`` carrying a named mod or a mass delta."""
    if aa == "C" and mod is None and delta is None:
        return "C[Carbamidomethyl]"
    if mod is None and delta is None:
        if aa not in table.residues:
            raise PeptideError(f"unknown residue {aa!r} in peptide {peptide!r}")
        return aa
    if mod is not None:
        for name in table.residues:
            if name.lower() == f"{aa}[{mod}]".lower():
                return name
    spelled = f"{aa}[{mod}]" if mod is not None else f"{aa}{delta}"
    if mod is not None and not _NUMBER_RE.fullmatch(mod):
        raise PeptideError(f"unknown modification {spelled} in peptide {peptide!r}")
    shift = float(mod if mod is not None else delta)
    base = C_UNMODIFIED_MASS_DA if aa == "C" else table.residues.get(aa)
    if base is not None:
        for name, mass in table.residues.items():
            if name[0] == aa and abs(mass - (base + shift)) <= DELTA_TOLERANCE_DA:
                return name
    raise PeptideError(f"unknown modification {spelled} in peptide {peptide!r}")


def _canonical_n_term(text: str, peptide: str, table: MassTable) -> str:
    """The canonical name of an N-terminal modification in any spelling."""
    if text.endswith("-"):
        inner = text[1:-2]
        for name in table.n_terms:
            if name.lower() == text.lower():
                return name
        if _NUMBER_RE.fullmatch(inner):
            shift = float(inner)
        else:
            raise PeptideError(f"unknown N-terminal modification {text!r} in peptide {peptide!r}")
    else:  # Casanovo v4: "+42.011", "+43.006-17.027"
        shift = sum(float(x) for x in re.findall(r"[+-]\d+(?:\.\d+)?", text))
    for name, mass in table.n_terms.items():
        if abs(mass - shift) <= DELTA_TOLERANCE_DA:
            return name
    raise PeptideError(f"unknown N-terminal modification {text!r} in peptide {peptide!r}")


def parse_peptide(peptide: str, table: MassTable = STANDARD_MASSES) -> list[str]:
    """Split a peptide string into canonical residue names (those of ``table``).

    An N-terminal modification, if any, comes first as its own item
    (``"[Acetyl]-"``); it has a mass but is not a residue position.
    Raises ``PeptideError`` naming the first unknown residue or modification.
    """
    text = peptide.strip()
    if not text:
        raise PeptideError("empty peptide")
    residues: list[str] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None or match.end() == pos:
            raise PeptideError(
                f"unknown residue {text[pos]!r} at position {pos} in peptide {peptide!r}"
            )
        if match.group("nterm"):
            residues.append(_canonical_n_term(match.group("nterm"), peptide, table))
        else:
            aa, mod, delta = match.group("aa"), match.group("mod"), match.group("delta")
            residues.append(_canonical_residue(aa, mod, delta, peptide, table))
        pos = match.end()
    if not residues or all(r in table.n_terms for r in residues):
        raise PeptideError(f"no residues in peptide {peptide!r}")
    return residues


def backbone(peptide: str) -> str:
    """The residue letters of a peptide in any spelling, modifications (known or not) left
    out and I written as L: ``[Acetyl]-PEM[Oxidation]IK`` -> ``PEMLK``.

    What ``pepcurr split`` groups by; a ``PeptideError`` for a letter that is no residue.
    """
    text = peptide.strip()
    letters, pos = [], 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None or match.end() == pos:
            raise PeptideError(
                f"unknown residue {text[pos]!r} at position {pos} in peptide {peptide!r}"
            )
        aa = match.group("aa")
        if aa is not None:
            if aa not in RESIDUE_MASS_DA and aa != "C":
                raise PeptideError(f"unknown residue {aa!r} in peptide {peptide!r}")
            letters.append("L" if aa == "I" else aa)
        pos = match.end()
    if not letters:
        raise PeptideError(f"no residues in peptide {peptide!r}")
    return "".join(letters)


def residue_mass_da(name: str, table: MassTable = STANDARD_MASSES) -> float:
    """Mass (Da) of one canonical residue or N-terminal modification name."""
    if name in table.residues:
        return table.residues[name]
    if name in table.n_terms:
        return table.n_terms[name]
    raise PeptideError(f"unknown residue {name!r}")


def peptide_neutral_mass_da(peptide: str | list[str], table: MassTable = STANDARD_MASSES) -> float:
    """Neutral monoisotopic mass (Da) of a peptide: residues + H2O."""
    residues = parse_peptide(peptide, table) if isinstance(peptide, str) else peptide
    return sum(residue_mass_da(r, table) for r in residues) + H2O_MASS_DA


def averagine_ratios(mass_da):
    """I(+1)/I(0) and I(+2)/I(0) of an ion of neutral mass ``mass_da`` (numbers or tensors)."""
    plus_1 = AVERAGINE_PLUS_1_PER_DA * mass_da
    return plus_1, plus_1 * plus_1 / 2 + AVERAGINE_PLUS_2_EXTRA_PER_DA * mass_da


def mz_from_neutral_mass(neutral_mass_da, charge):
    """m/z of an ion of neutral mass M (Da) carrying ``charge`` protons: (M + z*proton)/z.

    Works on floats and on tensors alike.
    """
    return (neutral_mass_da + charge * PROTON_MASS_DA) / charge


def neutral_mass_from_mz(mz, charge):
    """Neutral mass (Da) of an ion observed at ``mz`` with ``charge``: M = z*mz - z*proton."""
    return charge * mz - charge * PROTON_MASS_DA


# ----------------------------------------------------------------------------
# Batched tensor functions (any device, any float dtype)
# ----------------------------------------------------------------------------


def peptide_mass_da(residue_masses: torch.Tensor) -> torch.Tensor:
    """Neutral peptide mass (Da) from residue masses ``[..., L]`` (0 at padding): sum + H2O."""
    return residue_masses.sum(dim=-1) + H2O_MASS_DA


ION_TYPES = ("b", "y", "b++", "y++")
"""The fragment ions pepcurr knows, in the order of the last axis of ``fragment_ladder``:
b and y at charge 1, then b and y at charge 2 (only for precursors of charge >= 3)."""

ION_CHARGES = (1, 1, 2, 2)
"""Charge of each of ``ION_TYPES``."""

DOUBLY_CHARGED_MIN_PRECURSOR_CHARGE = 3
"""Charge-2 fragments are expected only from precursors of at least this charge."""


def fragment_ladder(
    prefix_mass_da: torch.Tensor, neutral_mass_da: torch.Tensor, precursor_charge: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """b and y ion m/z of cleavages, the one place pepcurr states the fragment rule.

    ``prefix_mass_da`` ``[..., S]``: the summed residue masses (Da) N-terminal
    of each cleavage (soft expected masses are fine); ``neutral_mass_da``
    ``[...]``: the peptide's neutral mass (residues + H2O, Da);
    ``precursor_charge`` ``[...]``. For each cleavage, along a last axis of 4
    (``ION_TYPES``):

    - b = (prefix + z * proton) / z
    - y = (peptide - prefix + z * proton) / z  (the suffix residues + H2O)

    at z = 1, and at z = 2 as well. Returns ``(mz, expected)``: ``mz``
    ``[..., S, 4]`` and a bool ``expected`` ``[..., 1, 4]`` that is False for
    the charge-2 ions of precursors of charge < 3 (their m/z are still computed).
    Used by the generator, the spectrum loss, ``inspect``'s coverage and the
    model's per-candidate ion evidence.
    """
    import torch

    b_neutral = prefix_mass_da
    y_neutral = neutral_mass_da.unsqueeze(-1) - prefix_mass_da
    mz = torch.stack(
        [
            mz_from_neutral_mass(b_neutral, 1),
            mz_from_neutral_mass(y_neutral, 1),
            mz_from_neutral_mass(b_neutral, 2),
            mz_from_neutral_mass(y_neutral, 2),
        ],
        dim=-1,
    )
    doubly = precursor_charge >= DOUBLY_CHARGED_MIN_PRECURSOR_CHARGE
    singly = torch.ones_like(doubly)
    expected = torch.stack([singly, singly, doubly, doubly], dim=-1)
    return mz, expected.unsqueeze(-2)


def peptide_fragment_ladder(
    residue_masses: torch.Tensor, lengths: torch.Tensor, precursor_charge: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The b/y ladder of whole peptides, batched: ``fragment_ladder`` at every cleavage site.

    ``residue_masses`` ``[..., L]`` (Da, 0 at padding; soft expected masses are
    fine), ``lengths`` ``[...]`` residue counts, ``precursor_charge`` ``[...]``.
    Cleavage site ``i`` (``i < length - 1``) splits residues ``0..i`` from
    ``i+1..``; the peptide mass is the sum of residues + H2O. Returns ``(mz,
    valid)``, each ``[..., L-1, 4]`` (``ION_TYPES`` on the last axis); ``valid``
    is False past the peptide's end and for charge-2 ions of precursors below 3+.
    """
    import torch

    prefix = torch.cumsum(residue_masses, dim=-1)[..., :-1]
    mz, expected = fragment_ladder(prefix, peptide_mass_da(residue_masses), precursor_charge)
    sites = torch.arange(prefix.shape[-1], device=residue_masses.device)
    inside = sites < (lengths.unsqueeze(-1) - 1)
    return mz, inside.unsqueeze(-1) & expected


def merge_n_terminal(
    token_masses: torch.Tensor, lengths: torch.Tensor, n_terminal_first: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token masses as per-residue masses: an N-terminal modification token's mass joins
    the first residue's, so that it weighs in every b ion and no cleavage falls between them.

    ``token_masses`` ``[..., T]`` (Da, 0 at padding; soft expected masses are fine),
    ``lengths`` ``[...]`` tokens per peptide, ``n_terminal_first`` ``[...]`` bool: the
    first token is an N-terminal modification. Where it is, positions shift left by one
    (the mod's mass added to the new first) and the length drops by one; elsewhere
    nothing changes. The result feeds ``peptide_fragment_ladder``.
    """
    import torch

    pad = token_masses.new_zeros(*token_masses.shape[:-1], 1)
    first = (token_masses[..., 0] + token_masses[..., 1]).unsqueeze(-1)
    merged = torch.cat([first, token_masses[..., 2:], pad], dim=-1)
    masses = torch.where(n_terminal_first.unsqueeze(-1), merged, token_masses)
    return masses, lengths - n_terminal_first.long()
