"""Peptide-spectrum matches out as mzTab 1.0, the file Casanovo writes (``evaluate``, ``predict``).

The layout follows Casanovo 5.1's ``MztabWriter`` (``casanovo/data/ms_io.py``),
so that tools reading Casanovo's output (ProteoBench, pyteomics'
``mztab.MzTab``) read pepcurr's:

- metadata (``MTD``): mzTab-version 1.0.0, mode Summary, type
  Identification, a description, the software, the PSM score's CV term, the
  fixed modification (carbamidomethylated C: pepcurr's ``C`` always is) and
  the variable ones the vocabulary holds, the decoding settings, and the MGF
  file as ``ms_run[1]-location``;
- one ``PSM`` row per spectrum with a prediction: ``sequence`` (plain
  letters), ``PSM_ID`` (1, 2, ... in file order), ``accession`` null,
  ``search_engine_score[1]``, ``modifications`` (``4-Carbamidomethyl
  (C):UNIMOD:4``, ``;``-separated, null if none), ``charge``,
  ``exp_mass_to_charge`` (PEPMASS as in the file), ``calc_mass_to_charge``
  (the predicted peptide's m/z at that charge), ``spectra_ref``
  (``ms_run[1]:index=N``, N the spectrum's 0-based position in the file),
  ``opt_ms_run[1]_aa_scores`` (per-residue probabilities, 5 decimals, comma
  separated) and ``opt_ms_run[1]_proforma`` (``PEPC[Carbamidomethyl]K``).

Scores are Casanovo's: the peptide score is the product of the model's
probabilities of every residue and of ``<eos>``, minus 1 when the peptide does
not fit the precursor mass (so -1 to 1; positive = fits); the residue scores
are each residue's probability. ``docs/mztab.md`` documents the file.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from curriculum_cli import __version__
from curriculum_cli.errors import PepcurrError
from curriculum_cli.spectra.chemistry import C_UNMODIFIED_MASS_DA
from curriculum_cli.spectra.vocabulary import Vocabulary

#: Unimod accessions of the modifications pepcurr's chemistry names (unimod.org).
UNIMOD_ACCESSION = {
    "Carbamidomethyl": 4,
    "Oxidation": 35,
    "Deamidated": 7,
    "Acetyl": 1,
    "Carbamyl": 5,
    "Ammonia-loss": 385,
}

PSM_COLUMNS = (
    "sequence", "PSM_ID", "accession", "unique", "database", "database_version",
    "search_engine", "search_engine_score[1]", "modifications", "retention_time", "charge",
    "exp_mass_to_charge", "calc_mass_to_charge", "spectra_ref", "pre", "post", "start", "end",
    "opt_ms_run[1]_aa_scores", "opt_ms_run[1]_proforma",
)  # fmt: skip


@dataclass(frozen=True)
class Psm:
    """One peptide-spectrum match: a spectrum's predicted peptide and its scores.

    ``residues``: canonical residue names (``chemistry.parse_peptide``), N to C;
    ``spectrum_index``: 0-based position of the spectrum in the MGF file;
    ``exp_mz``/``calc_mz``: observed (PEPMASS) and predicted precursor m/z;
    ``score``: ``peptide_score``; ``aa_scores``: one probability per residue.
    """

    residues: tuple[str, ...]
    spectrum_index: int
    charge: int
    exp_mz: float
    calc_mz: float
    score: float
    aa_scores: tuple[float, ...]


def peptide_score(log_probability: float, fits_precursor: bool) -> float:
    """Casanovo's peptide score: the peptide's probability (residues and ``<eos>``), minus 1
    when it does not fit the precursor mass. ``log_probability`` is the summed log (nats)."""
    return math.exp(log_probability) - (0.0 if fits_precursor else 1.0)


def plain_sequence(residues: tuple[str, ...] | list[str]) -> str:
    """The residue letters only: ``C[Carbamidomethyl]`` -> ``C``, N-terminal mods dropped."""
    return "".join(r[0] for r in residues if not r.startswith("["))


def proforma(residues: tuple[str, ...] | list[str]) -> str:
    """The peptide in ProForma, as Casanovo 5 writes it: ``[Acetyl]-PEPC[Carbamidomethyl]K``."""
    return "".join(residues)


def _mod_name(token: str) -> str:
    """``M[Oxidation]`` -> ``Oxidation``, ``[Acetyl]-`` -> ``Acetyl``."""
    return token[1:-2] if token.startswith("[") else token[2:-1]


def modifications(residues: tuple[str, ...] | list[str], vocab: Vocabulary) -> str:
    """mzTab's ``modifications`` as Casanovo writes them: ``4-Carbamidomethyl (C):UNIMOD:4``.

    Positions are 1-based (0 for the N-terminus), several joined by ``; ``;
    ``null`` when the peptide has none. A modification without a Unimod name
    here is written as its mass delta, ``0-[+25.9803]``.
    """
    parts, position = [], 0
    for residue in residues:
        if residue.startswith("["):
            site, at, delta_da = "N-term", 0, vocab.mass_da(residue)
        else:
            position += 1
            if "[" not in residue:
                continue
            site, at = residue[0], position
            delta_da = vocab.mass_da(residue) - (C_UNMODIFIED_MASS_DA if site == "C"
                                                 else vocab.mass_da(site))  # fmt: skip
        name = _mod_name(residue)
        if name in UNIMOD_ACCESSION:
            parts.append(f"{at}-{name} ({site}):UNIMOD:{UNIMOD_ACCESSION[name]}")
        else:
            parts.append(f"{at}-[{delta_da:+.4f}]")
    return "; ".join(parts) or "null"


def _modification_metadata(vocab: Vocabulary) -> list[tuple[str, str]]:
    """``fixed_mod`` and ``variable_mod`` lines: C+57 is fixed, the vocabulary's modified
    tokens variable (a name without a Unimod accession here as ``CHEMMOD:+delta``, as
    Casanovo writes it)."""
    lines = [
        ("fixed_mod[1]", "[UNIMOD, UNIMOD:4, Carbamidomethyl, ]"),
        ("fixed_mod[1]-site", "C"),
    ]
    if not vocab.modifications:
        return lines + [
            ("variable_mod[1]", "[MS, MS:1002454, No variable modifications searched, ]")
        ]
    for number, mod in enumerate(vocab.modifications, start=1):
        name = _mod_name(mod.token)
        term = (f"[UNIMOD, UNIMOD:{UNIMOD_ACCESSION[name]}, {name}, ]" if name in UNIMOD_ACCESSION
                else f"[CHEMMOD, CHEMMOD:{mod.delta_da:+.6f}, , ]")  # fmt: skip
        lines.append((f"variable_mod[{number}]", term))
        lines.append((f"variable_mod[{number}]-site", mod.site))
    return lines


def write_mztab(
    path: Path | str,
    psms: list[Psm],
    mgf_path: Path | str,
    vocab: Vocabulary,
    settings: dict[str, object],
) -> Path:
    """Write ``psms`` of one MGF file as an mzTab 1.0 identification file (see the module doc).

    ``settings`` become ``software[1]-setting[i]`` lines (``key = value``).
    """
    path = Path(path)
    metadata = [
        ("mzTab-version", "1.0.0"),
        ("mzTab-mode", "Summary"),
        ("mzTab-type", "Identification"),
        ("description", f"pepcurr identification file {path.stem}"),
        ("software[1]", f"[, , pepcurr, {__version__}]"),
        ("psm_search_engine_score[1]", "[MS, MS:1001143, search engine specific score for PSMs, ]"),
        *_modification_metadata(vocab),
        *[(f"software[1]-setting[{i}]", f"{key} = {value}")
          for i, (key, value) in enumerate(settings.items(), start=1)],
        ("ms_run[1]-location", Path(mgf_path).resolve().as_uri()),
    ]  # fmt: skip
    software = f"[, , pepcurr, {__version__}]"
    try:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerows(["MTD", key, value] for key, value in metadata)
            writer.writerow(["PSH", *PSM_COLUMNS])
            for psm_id, psm in enumerate(psms, start=1):
                writer.writerow([
                    "PSM", plain_sequence(psm.residues), psm_id, "null", "null", "null", "null",
                    software, repr(psm.score), modifications(psm.residues, vocab), "null",
                    psm.charge,
                    repr(psm.exp_mz), repr(psm.calc_mz), f"ms_run[1]:index={psm.spectrum_index}",
                    "null", "null", "null", "null",
                    ",".join(f"{score:.5f}" for score in psm.aa_scores), proforma(psm.residues),
                ])  # fmt: skip
    except OSError as error:
        raise PepcurrError(f"{path}: cannot write the mzTab file: {error.strerror}") from None
    return path
