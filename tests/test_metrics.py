"""Token accuracy and the Casanovo-compatible AA / peptide metrics, on hand-made cases."""

import math

import pytest
import torch

from curriculum_cli.errors import PeptideError
from curriculum_cli.model.metrics import (
    aa_match,
    aa_match_metrics,
    mass_error_ppm,
    residue_accuracy,
    token_accuracy,
)
from curriculum_cli.spectra.chemistry import parse_peptide, peptide_neutral_mass_da
from curriculum_cli.spectra.vocabulary import EOS_TOKEN, PAD_TOKEN


def _match(predicted: str, true: str) -> tuple[list[bool], bool]:
    return aa_match(parse_peptide(predicted) if predicted else [], parse_peptide(true))


def test_token_accuracy_ignores_padding_and_counts_eos():
    tokens = torch.tensor([[5, 6, EOS_TOKEN, PAD_TOKEN], [7, EOS_TOKEN, PAD_TOKEN, PAD_TOKEN]])
    predicted = torch.tensor([[5, 6, 9, 3], [7, EOS_TOKEN, 4, 4]])  # one wrong <eos>; pads ignored
    logits = torch.nn.functional.one_hot(predicted, 10).float()
    assert token_accuracy(logits, tokens) == pytest.approx(4 / 5)


def test_residue_accuracy_counts_residue_positions_only():
    tokens = torch.tensor([[5, 6, EOS_TOKEN, PAD_TOKEN], [7, EOS_TOKEN, PAD_TOKEN, PAD_TOKEN]])
    # A wrong <eos> and wrong pads do not count; <eos> predicted at a residue is wrong.
    predicted = torch.tensor([[5, EOS_TOKEN, 9, 3], [7, 2, 4, 4]])
    logits = torch.nn.functional.one_hot(predicted, 10).float()
    assert residue_accuracy(logits, tokens) == pytest.approx(2 / 3)
    assert token_accuracy(logits, tokens) == pytest.approx(2 / 5)
    assert math.isnan(residue_accuracy(logits, torch.full((2, 4), EOS_TOKEN)))


def test_token_accuracy_is_nan_without_targets():
    tokens = torch.full((2, 3), PAD_TOKEN)
    assert math.isnan(token_accuracy(torch.zeros(2, 3, 5), tokens))


def test_residue_accuracy_leaves_out_eos_and_padding():
    tokens = torch.tensor([[5, 6, EOS_TOKEN, PAD_TOKEN], [7, EOS_TOKEN, PAD_TOKEN, PAD_TOKEN]])
    # residues: 5 right, 6 wrong, 7 right; a wrong <eos> and wrong pads do not count
    predicted = torch.tensor([[5, 9, 3, 3], [7, 4, 4, 4]])
    logits = torch.nn.functional.one_hot(predicted, 10).float()
    assert residue_accuracy(logits, tokens) == pytest.approx(2 / 3)
    assert token_accuracy(logits, tokens) == pytest.approx(2 / 5)


def test_residue_accuracy_is_nan_without_residues():
    tokens = torch.tensor([[EOS_TOKEN, PAD_TOKEN]])
    assert math.isnan(residue_accuracy(torch.zeros(1, 2, 5), tokens))


def test_casanovo_documented_case_reproduced():
    # Casanovo's tests/unit_tests/test_unit.py::test_eval_metrics, same numbers.
    predicted = ["SPEIK", "SPAEL", "SPAEKL", "ASPEKL", "SPEKL", "SPELQ", "PSEKL", "SPEK"]
    true = ["SPELK"] * len(predicted)
    scores = aa_match_metrics(predicted, true)
    assert scores["peptide_recall"] == pytest.approx(2 / 8)
    assert scores["aa_recall"] == pytest.approx(26 / 40)
    assert scores["aa_precision"] == pytest.approx(26 / 41)


def test_i_and_l_are_the_same_residue():
    matches, peptide_match = _match("PEPTIDE", "PEPTLDE")
    assert all(matches) and peptide_match


def test_swapped_residues_with_equal_total_mass_leave_the_rest_matched():
    # "TP" and "PT" have the same mass: prefix alignment resumes after them.
    matches, peptide_match = _match("PEPTPIDEK", "PEPPTIDEK")
    assert matches == [True, True, True, False, False, True, True, True, True]
    assert not peptide_match
    # GG (114.043) and N (114.043): one residue against two, total mass equal.
    matches, peptide_match = _match("PEGGTIDE", "PENTIDE")
    assert sum(matches) == 6 and not peptide_match


def test_missing_residue_is_unmatched_but_neighbours_match_by_suffix():
    matches, peptide_match = _match("PEPIDE", "PEPTIDE")
    assert sum(matches) == 6  # P E P (prefix), I D E (suffix)
    assert not peptide_match
    scores = aa_match_metrics(["PEPIDE"], ["PEPTIDE"])
    assert scores == pytest.approx({"aa_precision": 1.0, "aa_recall": 6 / 7, "peptide_recall": 0.0})


def test_longer_prediction_never_matches_the_whole_peptide():
    scores = aa_match_metrics(["PEPTIDEK"], ["PEPTIDE"])
    assert scores == pytest.approx({"aa_precision": 7 / 8, "aa_recall": 1.0, "peptide_recall": 0.0})


def test_empty_prediction_scores_zero_and_counts_no_residues():
    scores = aa_match_metrics(["", "PEPTIDE"], ["PEPTIDE", "PEPTIDE"])
    assert scores == pytest.approx({"aa_precision": 1.0, "aa_recall": 0.5, "peptide_recall": 0.5})
    assert aa_match_metrics([""], ["PEPTIDE"]) == {
        "aa_precision": 0.0,
        "aa_recall": 0.0,
        "peptide_recall": 0.0,
    }


def test_modifications_are_compared_by_mass_in_any_spelling():
    assert aa_match_metrics(["PEPM[Oxidation]K"], ["PEPM+15.995K"])["peptide_recall"] == 1.0
    assert aa_match_metrics(["PEPCK"], ["PEPC[Carbamidomethyl]K"])["peptide_recall"] == 1.0
    # Oxidised M (147.0354) and F (147.0684) are within 0.1 Da: Casanovo counts them as a match.
    assert aa_match_metrics(["PEPFK"], ["PEPM[Oxidation]K"])["peptide_recall"] == 1.0
    # Unmodified M is 16 Da lighter: no match at that position, the suffix K still matches.
    assert aa_match_metrics(["PEPMK"], ["PEPM[Oxidation]K"])["aa_recall"] == pytest.approx(4 / 5)
    # An N-terminal modification is its own token, as in Casanovo: an extra one is unmatched,
    # the residues after it match by suffix.
    scores = aa_match_metrics(["[Acetyl]-PEPK"], ["PEPK"])
    assert scores == pytest.approx({"aa_precision": 4 / 5, "aa_recall": 1.0, "peptide_recall": 0.0})
    assert aa_match_metrics(["[Acetyl]-PEPK"], ["[+42.011]-PEPK"])["peptide_recall"] == 1.0


def test_argument_order_does_not_matter():
    for predicted, true in [("SPAEKL", "SPELK"), ("PEGGTIDE", "PENTIDE"), ("PSEKL", "SPELK")]:
        assert _match(predicted, true) == _match(true, predicted)


def test_bad_input_is_reported():
    with pytest.raises(ValueError, match="equal-length"):
        aa_match_metrics(["PEPTIDE"], [])
    with pytest.raises(PeptideError, match="unknown residue"):
        aa_match_metrics(["PEPXIDE"], ["PEPTIDE"])


def test_precursor_error_in_ppm():
    mass = peptide_neutral_mass_da("PEPTIDE")
    assert mass_error_ppm(mass, mass) == pytest.approx(0.0, abs=1e-9)
    assert mass_error_ppm(mass, mass * (1 - 10e-6)) == pytest.approx(10.0, rel=1e-4)
    # One 13C spacing heavier precursor, read at isotope 1: no error.
    assert mass_error_ppm(mass, mass + 1.003355, isotope=1) == pytest.approx(0.0, abs=1e-9)
    tensor = mass_error_ppm(torch.tensor([mass]), torch.tensor([mass]))
    assert tensor.abs().item() < 0.1
