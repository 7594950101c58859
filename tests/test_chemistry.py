"""Masses and fragment m/z against pyteomics; peptide parsing in every accepted spelling."""

from __future__ import annotations

import random

import pytest
import torch
from pyteomics import mass

from curriculum_cli.chemistry import (
    H2O_MASS_DA,
    RESIDUE_MASS_DA,
    Vocabulary,
    fragment_mz,
    mz_from_neutral_mass,
    parse_peptide,
    peptide_mass_da,
    peptide_neutral_mass_da,
)
from curriculum_cli.errors import PeptideError

# pyteomics sums one mass per character: single letters stand for pepcurr's residues,
# with their masses taken from pepcurr's table, so the comparison checks the ion-type
# conventions (b = prefix + proton, y = suffix + H2O + proton, charge z), not the table.
PYTEOMICS_LETTER = {name: name for name in RESIDUE_MASS_DA if len(name) == 1}
PYTEOMICS_LETTER.update({"C[Carbamidomethyl]": "C", "M[Oxidation]": "m"})
PYTEOMICS_AA_MASS = {letter: RESIDUE_MASS_DA[name] for name, letter in PYTEOMICS_LETTER.items()}


def _random_peptides(vocab: Vocabulary, n: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [rng.choices(vocab.residues, k=rng.randint(2, 25)) for _ in range(n)]


def _residue_masses(peptides: list[list[str]], vocab: Vocabulary) -> tuple[torch.Tensor, ...]:
    width = max(len(p) for p in peptides)
    tokens = torch.zeros(len(peptides), width, dtype=torch.int64)
    for row, peptide in enumerate(peptides):
        tokens[row, : len(peptide)] = torch.tensor(vocab.encode(peptide))
    masses = vocab.residue_masses(dtype=torch.float64)[tokens]
    lengths = torch.tensor([len(p) for p in peptides])
    return masses, lengths


@pytest.mark.parametrize("charge", [1, 2])
def test_b_and_y_ions_equal_pyteomics_fast_mass(charge):
    vocab = Vocabulary.default(oxidation=True)
    peptides = _random_peptides(vocab, 200, seed=charge)
    masses, lengths = _residue_masses(peptides, vocab)
    b_mz, y_mz, valid = fragment_mz(masses, lengths, charge=charge)
    for row, peptide in enumerate(peptides):
        letters = "".join(PYTEOMICS_LETTER[r] for r in peptide)
        for site in range(len(peptide) - 1):
            assert valid[row, site]
            expected_b = mass.fast_mass(
                letters[: site + 1], ion_type="b", charge=charge, aa_mass=PYTEOMICS_AA_MASS
            )
            expected_y = mass.fast_mass(
                letters[site + 1 :], ion_type="y", charge=charge, aa_mass=PYTEOMICS_AA_MASS
            )
            assert b_mz[row, site].item() == pytest.approx(expected_b, abs=1e-6)
            assert y_mz[row, site].item() == pytest.approx(expected_y, abs=1e-6)
        assert not valid[row, len(peptide) - 1 :].any()


@pytest.mark.parametrize("charge", [1, 2, 3])
def test_precursor_mz_equals_pyteomics_fast_mass(charge):
    vocab = Vocabulary.default(oxidation=True)
    peptides = _random_peptides(vocab, 200, seed=10 + charge)
    masses, _ = _residue_masses(peptides, vocab)
    precursor_mz = mz_from_neutral_mass(peptide_mass_da(masses), charge)
    for row, peptide in enumerate(peptides):
        letters = "".join(PYTEOMICS_LETTER[r] for r in peptide)
        expected = mass.fast_mass(letters, charge=charge, aa_mass=PYTEOMICS_AA_MASS)
        assert precursor_mz[row].item() == pytest.approx(expected, abs=1e-6)
        assert peptide_neutral_mass_da(peptide) == pytest.approx(
            mass.fast_mass(letters, aa_mass=PYTEOMICS_AA_MASS), abs=1e-6
        )


def test_residue_table_matches_pyteomics_compositions():
    """Casanovo's 6-decimal table against exact masses from elemental compositions.

    Casanovo's T (101.047670) is 8.5e-6 Da below the exact 101.047679; every
    other residue is within 1e-6 Da.
    """
    exact = dict(mass.std_aa_mass)
    exact["C[Carbamidomethyl]"] = exact["C"] + mass.calculate_mass(formula="C2H3NO")
    exact["M[Oxidation]"] = exact["M"] + mass.calculate_mass(formula="O")
    exact["N[Deamidated]"] = exact["N"] + mass.calculate_mass(formula="H-1N-1O")
    exact["Q[Deamidated]"] = exact["Q"] + mass.calculate_mass(formula="H-1N-1O")
    for name, mass_da in RESIDUE_MASS_DA.items():
        tolerance = 1e-5 if name == "T" else 1e-6
        assert mass_da == pytest.approx(exact[name], abs=tolerance), name
    assert H2O_MASS_DA == pytest.approx(mass.calculate_mass(formula="H2O"), abs=1e-6)


def test_fragment_mz_works_on_soft_masses_and_padding():
    masses = torch.tensor([[57.021464, 71.037114, 0.0, 0.0]], dtype=torch.float64)
    b_mz, y_mz, valid = fragment_mz(masses, torch.tensor([2]))
    assert valid.tolist() == [[True, False, False]]
    assert b_mz[0, 0].item() == pytest.approx(mass.fast_mass("G", ion_type="b", charge=1), 1e-5)
    assert y_mz[0, 0].item() == pytest.approx(mass.fast_mass("A", ion_type="y", charge=1), 1e-5)


@pytest.mark.parametrize(
    ("peptide", "expected"),
    [
        ("PEPTIDE", ["P", "E", "P", "T", "I", "D", "E"]),
        ("PEPC", ["P", "E", "P", "C[Carbamidomethyl]"]),
        ("M[Oxidation]C[Carbamidomethyl]K", ["M[Oxidation]", "C[Carbamidomethyl]", "K"]),
        ("M[oxidation]K", ["M[Oxidation]", "K"]),
        ("N[Deamidated]Q[Deamidated]", ["N[Deamidated]", "Q[Deamidated]"]),
        ("M[+15.995]K", ["M[Oxidation]", "K"]),
        ("C[+57.021]K", ["C[Carbamidomethyl]", "K"]),
        ("M+15.995C+57.021K", ["M[Oxidation]", "C[Carbamidomethyl]", "K"]),
        ("N+0.984K", ["N[Deamidated]", "K"]),
        ("[Acetyl]-PEPK", ["[Acetyl]-", "P", "E", "P", "K"]),
        ("[+42.011]-PEPK", ["[Acetyl]-", "P", "E", "P", "K"]),
        ("+42.011PEPK", ["[Acetyl]-", "P", "E", "P", "K"]),
        ("+43.006-17.027PEPK", ["[+25.980265]-", "P", "E", "P", "K"]),
    ],
)
def test_parse_peptide_accepts_proforma_deltas_and_casanovo_v4(peptide, expected):
    assert parse_peptide(peptide) == expected


@pytest.mark.parametrize(
    ("peptide", "named"),
    [
        ("PEPXIDE", "'X'"),
        ("PEPTIDE-", "'-'"),
        ("pep", "'p'"),
        ("M[Foo]K", "M[Foo]"),
        ("M[+99.0]K", "M[+99.0]"),
        ("K+15.995", "K+15.995"),
        ("[Foo]-PEPK", "[Foo]-"),
        ("M[Oxidation", "'['"),
    ],
)
def test_parse_peptide_names_the_unknown_residue_or_modification(peptide, named):
    with pytest.raises(PeptideError, match=named.replace("[", r"\[").replace("+", r"\+")):
        parse_peptide(peptide)


def test_parse_peptide_rejects_empty_and_modification_only():
    with pytest.raises(PeptideError, match="empty"):
        parse_peptide("  ")
    with pytest.raises(PeptideError, match="no residues"):
        parse_peptide("[Acetyl]-")


def test_vocabulary_folds_i_into_l_by_default_and_can_keep_it():
    folded, kept = Vocabulary.default(), Vocabulary.default(fold_il=False)
    assert folded.encode("LI") == folded.encode("LL")
    assert kept.encode("LI") != kept.encode("LL")
    assert kept.decode(kept.encode("PEPTIDE")) == "PEPTIDE"
    assert folded.decode(folded.encode("PEPTIDE")) == "PEPTLDE"


def test_vocabulary_names_a_residue_it_cannot_encode():
    with pytest.raises(PeptideError, match=r"M\[Oxidation\]"):
        Vocabulary.default().encode("PEM[Oxidation]K")
    assert Vocabulary.default(oxidation=True).encode("M[Oxidation]")
