"""Masses and fragment m/z against pyteomics; peptide parsing in every accepted spelling."""

from __future__ import annotations

import random

import pytest
import torch
from pyteomics import mass

from curriculum_cli.errors import PeptideError
from curriculum_cli.spectra.chemistry import (
    H2O_MASS_DA,
    RESIDUE_MASS_DA,
    fragment_ladder,
    mz_from_neutral_mass,
    parse_peptide,
    peptide_fragment_ladder,
    peptide_mass_da,
    peptide_neutral_mass_da,
)
from curriculum_cli.spectra.vocabulary import Vocabulary
from tests.helpers import OXIDATION_VOCAB

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


@pytest.mark.parametrize("precursor_charge", [2, 3])
def test_fragment_ladder_equals_pyteomics_fast_mass(precursor_charge):
    """b and y at charge 1 always; at charge 2 computed too but expected only for 3+."""
    vocab = OXIDATION_VOCAB
    peptides = _random_peptides(vocab, 200, seed=precursor_charge)
    masses, lengths = _residue_masses(peptides, vocab)
    charges = torch.full((len(peptides),), precursor_charge)
    ladder_mz, valid = peptide_fragment_ladder(masses, lengths, charges)
    assert ladder_mz.shape == valid.shape == (len(peptides), masses.shape[1] - 1, 4)
    for row, peptide in enumerate(peptides):
        letters = "".join(PYTEOMICS_LETTER[r] for r in peptide)
        for site in range(len(peptide) - 1):
            for ion, (ion_type, charge) in enumerate(zip("byby", (1, 1, 2, 2), strict=True)):
                fragment = letters[: site + 1] if ion_type == "b" else letters[site + 1 :]
                expected = mass.fast_mass(
                    fragment, ion_type=ion_type, charge=charge, aa_mass=PYTEOMICS_AA_MASS
                )
                assert ladder_mz[row, site, ion].item() == pytest.approx(expected, abs=1e-6)
                assert valid[row, site, ion] == (charge == 1 or precursor_charge >= 3)
        assert not valid[row, len(peptide) - 1 :].any()


def test_fragment_ladder_of_candidate_prefixes_uses_the_given_neutral_mass():
    """The per-candidate form: b from a prefix mass, y from the precursor's neutral mass."""
    prefix = torch.tensor([[57.021464, 57.021464 + 71.037114]], dtype=torch.float64)
    precursor = torch.tensor([57.021464 + 71.037114 + 87.032028 + H2O_MASS_DA], dtype=torch.float64)
    ladder_mz, expected = fragment_ladder(prefix, precursor, torch.tensor([2]))
    assert expected.tolist() == [[[True, True, False, False]]]
    b_g, y_as = mass.fast_mass("G", "b", 1), mass.fast_mass("AS", "y", 1)
    assert ladder_mz[0, 0, 0].item() == pytest.approx(b_g, abs=1e-6)
    assert ladder_mz[0, 0, 1].item() == pytest.approx(y_as, abs=1e-6)
    assert ladder_mz[0, 1, 3].item() == pytest.approx(
        mass.fast_mass("S", ion_type="y", charge=2), abs=1e-6
    )
    _, expected = fragment_ladder(prefix, precursor, torch.tensor([3]))
    assert expected.all()


@pytest.mark.parametrize("charge", [1, 2, 3])
def test_precursor_mz_equals_pyteomics_fast_mass(charge):
    vocab = OXIDATION_VOCAB
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


def test_fragment_ladder_works_on_soft_masses_and_padding():
    masses = torch.tensor([[57.021464, 71.037114, 0.0, 0.0]], dtype=torch.float64)
    ladder_mz, valid = peptide_fragment_ladder(masses, torch.tensor([2]), torch.tensor([2]))
    assert valid[..., :2].tolist() == [[[True, True], [False, False], [False, False]]]
    assert not valid[..., 2:].any()
    b_mz, y_mz = ladder_mz[0, 0, 0].item(), ladder_mz[0, 0, 1].item()
    assert b_mz == pytest.approx(mass.fast_mass("G", ion_type="b", charge=1), 1e-5)
    assert y_mz == pytest.approx(mass.fast_mass("A", ion_type="y", charge=1), 1e-5)


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
    assert OXIDATION_VOCAB.encode("M[Oxidation]")
