"""`pepcurr spectra` and `pepcurr inspect` through Typer's CliRunner: files, exit codes."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from curriculum_cli.cli.app import app
from curriculum_cli.spectra.chemistry import MAX_PEAK_MZ, MIN_PEAK_MZ, peptide_fragment_ladder
from curriculum_cli.spectra.mgf import read_mgf
from curriculum_cli.spectra.peaks import PeakFilter
from curriculum_cli.spectra.vocabulary import Vocabulary
from tests.helpers import BAD_MGF_CASES, NOT_MGF_CASES, SAMPLE_MGF

runner = CliRunner()


def _error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_spectra_writes_n_spectra_of_the_stage(tmp_path, write_json, tiny_curriculum_data):
    curriculum = write_json(tiny_curriculum_data)
    out = tmp_path / "physics.mgf"
    args = ["spectra", "-c", str(curriculum), "--stage", "physics", "--n", "40", "-o", str(out)]
    result = runner.invoke(app, [*args, "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "wrote 40 spectra" in result.stdout
    text = out.read_text()
    for key in ("TITLE=tiny:physics:seed5:0", "PEPMASS=", "CHARGE=", "SEQ="):
        assert key in text
    batch = read_mgf(out, Vocabulary.default(), PeakFilter.keep_all()).batch
    assert len(batch) == 40
    assert 7 <= int(batch.lengths.min()) and int(batch.lengths.max()) <= 12


def test_spectra_by_step_and_explicit_overrides(tmp_path, write_json, tiny_curriculum_data):
    curriculum = write_json(tiny_curriculum_data)
    out = tmp_path / "clean.mgf"
    args = ["spectra", "-c", str(curriculum), "--step", "500", "-n", "20", "-o", str(out)]
    clean = ["--noise-peaks", "0", "--peak-dropout", "0", "--mass-error-ppm", "0"]
    result = runner.invoke(app, [*args, *clean])
    assert result.exit_code == 0, result.output
    assert "stage physics" in result.stdout and "0 noise peaks" in result.stdout
    batch = read_mgf(out, Vocabulary.default(), PeakFilter.keep_all()).batch
    # Every ion of the ladder inside the m/z window, and nothing else.
    masses = Vocabulary.default().residue_masses(dtype=torch.float64)[batch.tokens[:, :-1]]
    ladder_mz, valid = peptide_fragment_ladder(masses, batch.lengths, batch.precursor_charge)
    inside = valid & (ladder_mz >= MIN_PEAK_MZ) & (ladder_mz <= MAX_PEAK_MZ)
    assert batch.peak_mask.sum(-1).tolist() == inside.flatten(1).sum(-1).tolist()


@pytest.mark.parametrize(("residues", "all_tryptic"), [(None, True), ("uniform", False)])
def test_spectra_residues_option_picks_tryptic_or_uniform_peptides(tmp_path, residues, all_tryptic):
    out = tmp_path / "peptides.mgf"
    args = ["spectra", "-c", "revised", "--step", "0", "-n", "60", "-o", str(out)]
    result = runner.invoke(app, args + (["--residues", residues] if residues else []))
    assert result.exit_code == 0, result.output
    assert f"{residues or 'tryptic'} residues" in result.stdout
    batch = read_mgf(out, Vocabulary.default(), PeakFilter.keep_all()).batch
    assert all(p.endswith(("K", "R")) for p in batch.peptides) == all_tryptic


def test_spectra_is_deterministic_for_a_seed(tmp_path):
    outputs = []
    for name, seed in (("a.mgf", "1"), ("b.mgf", "1"), ("c.mgf", "2")):
        out = tmp_path / name
        args = ["spectra", "-c", "revised", "--step", "0", "-n", "10", "--seed", seed]
        assert runner.invoke(app, [*args, "-o", str(out)]).exit_code == 0
        outputs.append(out.read_text().replace(f"seed{seed}", "seed"))
    assert outputs[0] == outputs[1] != outputs[2]


def test_spectra_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "out.mgf"
    out.write_text("precious")
    args = ["spectra", "-c", "revised", "--step", "0", "-n", "5", "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert _error_lines(result) == [f"error: {out}: file exists; use --force to overwrite it"]
    assert out.read_text() == "precious"
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    assert out.read_text().startswith("BEGIN IONS")


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ([], "exactly one of --stage"),
        (["--stage", "warmup", "--step", "3"], "exactly one of --stage"),
        (["--stage", "nope"], "no stage 'nope'; its stages: warmup, physics"),
    ],
)
def test_spectra_stage_choice_errors(extra, words, tmp_path, write_json, tiny_curriculum_data):
    curriculum = write_json(tiny_curriculum_data)
    args = ["spectra", "-c", str(curriculum), "-n", "5", "-o", str(tmp_path / "x.mgf"), *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = _error_lines(result)
    assert len(lines) == 1 and words in lines[0]


def test_inspect_real_sample_as_table_and_json():
    result = runner.invoke(app, ["inspect", str(SAMPLE_MGF)])
    assert result.exit_code == 0, result.output
    for words in ("128 spectra", "2+: 127, 3+: 1", "C[Carbamidomethyl] 23", "b/y ions found"):
        assert words in result.stdout
    result = runner.invoke(app, ["inspect", str(SAMPLE_MGF), "--json", "--tolerance", "0.05"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["n_spectra"] == 128
    assert report["fragment_coverage"]["tolerance_da"] == 0.05
    assert abs(report["precursor_error_ppm"]["worst"]) < 20


@pytest.mark.parametrize("case", sorted(BAD_MGF_CASES))
def test_inspect_bad_mgf_exits_2_with_one_line_naming_index_and_title(case, write_file):
    text, where, words = BAD_MGF_CASES[case]
    result = runner.invoke(app, ["inspect", str(write_file(text))])
    assert result.exit_code == 2
    lines = _error_lines(result)
    assert len(lines) == 1, lines
    assert where in lines[0] and words in lines[0] and "Traceback" not in result.output


@pytest.mark.parametrize("case", sorted(NOT_MGF_CASES))
def test_inspect_a_file_that_is_not_mgf_exits_2(case, write_file):
    content, words = NOT_MGF_CASES[case]
    result = runner.invoke(app, ["inspect", str(write_file(content))])
    assert result.exit_code == 2
    lines = _error_lines(result)
    assert len(lines) == 1 and words in lines[0]


def test_inspect_skip_invalid_reports_how_many_were_skipped(write_file):
    text = "".join(BAD_MGF_CASES[case][0] for case in ("no_peaks", "missing_charge"))
    result = runner.invoke(app, ["inspect", str(write_file(text)), "--skip-invalid", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_spectra"] == 2 and report["n_skipped"] == 2
    result = runner.invoke(app, ["inspect", str(write_file(text)), "--skip-invalid"])
    assert "2 invalid spectra" in result.stdout and "skipped:" in result.stdout


def test_spectra_of_a_world_show_its_modifications_and_errors_in_inspect(tmp_path):
    out = tmp_path / "world.mgf"
    result = runner.invoke(app, ["spectra", "-c", "realistic-revised", "--stage",
                                 "stage_10_realistic", "-n", "80", "--vocab", "casanovo",
                                 "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "the world's peptides" in result.output
    result = runner.invoke(app, ["inspect", str(out), "--vocab", "casanovo", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n_spectra"] == 80
    assert set(report["modifications"]) & {"M[Oxidation]", "N[Deamidated]", "[Acetyl]-"}
    assert report["n_outside_vocabulary"] == 0
