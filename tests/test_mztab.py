"""mzTab out: ``evaluate --mztab`` and ``predict`` (spectra without SEQ), read back by pyteomics."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from pyteomics import mass, mztab
from typer.testing import CliRunner

from curriculum_cli.cli.app import app
from curriculum_cli.spectra.mztab import (
    _modification_metadata,
    modifications,
    plain_sequence,
    proforma,
)
from curriculum_cli.spectra.vocabulary import Vocabulary
from tests.helpers import SAMPLE_MGF

runner = CliRunner()
CARBAMIDOMETHYL_DA = 57.021464


@pytest.fixture
def six_spectra(tmp_path) -> tuple:
    """The first 6 spectra of the Casanovo sample: annotated, and with every SEQ line removed."""
    blocks = SAMPLE_MGF.read_text().split("END IONS")[:6]
    annotated = tmp_path / "six.mgf"
    annotated.write_text("END IONS".join(blocks) + "END IONS\n")
    bare = tmp_path / "six-bare.mgf"
    lines = annotated.read_text().splitlines(keepends=True)
    bare.write_text("".join(line for line in lines if not line.startswith("SEQ=")))
    pepmass = [float(line[8:].split()[0]) for line in lines if line.startswith("PEPMASS=")]
    charges = [int(line[7:].strip(" +\n")) for line in lines if line.startswith("CHARGE=")]
    return annotated, bare, pepmass, charges


def test_modifications_are_spelled_as_casanovo_writes_them():
    casanovo = Vocabulary.named("casanovo")
    residues = ["[Acetyl]-", "P", "E", "C[Carbamidomethyl]", "M[Oxidation]", "K"]
    assert modifications(residues, casanovo) == (
        "0-Acetyl (N-term):UNIMOD:1; 3-Carbamidomethyl (C):UNIMOD:4; 4-Oxidation (M):UNIMOD:35"
    )
    assert plain_sequence(residues) == "PECMK"
    assert proforma(residues) == "[Acetyl]-PEC[Carbamidomethyl]M[Oxidation]K"
    assert modifications(["[+25.980265]-", "G", "K"], casanovo) == "0-[+25.9803]"
    assert modifications(["G", "K"], casanovo) == "null"
    phospho = Vocabulary(Vocabulary.default().residues + ("S[Phospho]",),
                         masses_da=(("S[Phospho]", 166.998359),))  # fmt: skip
    assert modifications(["G", "S[Phospho]", "K"], phospho) == "2-[+79.9663]"


def test_metadata_names_each_modification_of_the_vocabulary_and_its_site():
    metadata = dict(_modification_metadata(Vocabulary.named("casanovo")))
    assert metadata["variable_mod[1]"] == "[UNIMOD, UNIMOD:35, Oxidation, ]"
    assert metadata["variable_mod[4]"] == "[UNIMOD, UNIMOD:1, Acetyl, ]"
    assert metadata["variable_mod[4]-site"] == "N-term"
    assert metadata["variable_mod[7]"] == "[CHEMMOD, CHEMMOD:+25.980265, , ]"
    assert "variable_mod[8]" not in metadata
    standard = dict(_modification_metadata(Vocabulary.default()))
    assert standard["variable_mod[1]"].startswith("[MS, MS:1002454")


def test_predict_writes_mztab_that_pyteomics_reads_with_the_right_values(
    ab_runs, six_spectra, tmp_path
):
    annotated, bare, pepmass, charges = six_spectra
    run = ab_runs["late"][0]
    out = tmp_path / "bare.mztab"
    result = runner.invoke(app, ["predict", str(run), "--mgf", str(bare), "--mztab", str(out),
                                 "--beam-size", "2", "--max-length", "10"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "6 of 6 spectra got a peptide" in result.stdout

    table = mztab.MzTab(str(out))
    assert (table.version, table.mode, table.type) == ("1.0.0", "Summary", "Identification")
    assert table.metadata["ms_run[1]-location"] == bare.resolve().as_uri()
    assert table.metadata["fixed_mod[1]-site"] == "C"
    psms = table.spectrum_match_table
    assert list(psms["spectra_ref"]) == [f"ms_run[1]:index={i}" for i in range(6)]
    assert list(psms["PSM_ID"]) == [1, 2, 3, 4, 5, 6]
    assert list(psms["exp_mass_to_charge"]) == pepmass
    assert list(psms["charge"]) == charges
    for _, row in psms.iterrows():
        sequence, charge = row["sequence"], row["charge"]
        assert sequence.isalpha() and sequence.isupper() and 1 <= len(sequence) <= 10
        expected_mz = mass.fast_mass(sequence, charge=charge) + (
            sequence.count("C") * CARBAMIDOMETHYL_DA / charge
        )
        assert row["calc_mass_to_charge"] == pytest.approx(expected_mz, abs=1e-6)
        aa_scores = [float(x) for x in row["opt_ms_run[1]_aa_scores"].split(",")]
        assert len(aa_scores) == len(sequence) and all(0 < s <= 1 for s in aa_scores)
        # the peptide's probability (residues and <eos>) is at most its least likely residue's;
        # a peptide that misses the precursor scores 1 lower (Casanovo's rule)
        score = row["search_engine_score[1]"]
        assert -1 <= score <= 1
        assert score + (1 if score < 0 else 0) <= min(aa_scores) + 1e-5

    # evaluate --mztab on the same spectra, annotated: the same peptides, scores from the CSV
    csv_path, annotated_out = tmp_path / "p.csv", tmp_path / "annotated.mztab"
    result = runner.invoke(app, ["evaluate", str(run), "--mgf", str(annotated), "--mztab",
                                 str(annotated_out), "--predictions", str(csv_path),
                                 "--beam-size", "2", "--max-length", "10"])  # fmt: skip
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(csv_path)
    psms_annotated = mztab.MzTab(str(annotated_out)).spectrum_match_table
    assert list(psms_annotated["opt_ms_run[1]_proforma"]) == list(frame["predicted_peptide"])
    assert list(psms_annotated["sequence"]) == list(psms["sequence"])
    for score, csv_row in zip(psms_annotated["search_engine_score[1]"], frame.itertuples(),
                              strict=True):  # fmt: skip
        n_tokens = len(csv_row.predicted_peptide.replace("[Carbamidomethyl]", "")) + 1
        expected = math.exp(csv_row.score * n_tokens) - (0 if csv_row.fits_precursor else 1)
        assert score == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_predict_bad_input_is_one_line_and_exit_2(ab_runs, six_spectra, tmp_path):
    bare = six_spectra[1]
    cases = [
        ([str(tmp_path / "none"), "--mgf", str(bare), "--mztab", str(tmp_path / "a.mztab")],
         "no such run directory or checkpoint"),
        ([str(ab_runs["late"][0]), "--mgf", str(bare), "--mztab", str(tmp_path / "no/a.mztab")],
         "its directory does not exist"),
    ]  # fmt: skip
    for arguments, message in cases:
        result = runner.invoke(app, ["predict", *arguments])
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], result.output
