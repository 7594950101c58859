"""``pepcurr realism``: per-spectrum features checked by hand, the classifier's AUC at its two
ends, and the command on real spectra."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pyteomics import mgf
from rich.console import Console
from typer.testing import CliRunner

from curriculum_cli.analysis.realism import (
    FEATURES,
    RealismReport,
    StageRealism,
    classifier_auc,
    spectrum_features,
)
from curriculum_cli.cli.app import app
from curriculum_cli.cli.render.realism import render_realism
from curriculum_cli.spectra.chemistry import (
    H2O_MASS_DA,
    PROTON_MASS_DA,
    RESIDUE_MASS_DA,
    STANDARD_MASSES,
)
from curriculum_cli.spectra.fragments import annotated_spectrum
from tests.helpers import HCD_MGF

runner = CliRunner()


def test_features_of_a_hand_made_spectrum():
    """PEPTIDEK 2+: its 14 b/y (1+) ions (y at 1.0, b at 0.5) and one peak far above any
    ion (0.25)."""
    masses = [RESIDUE_MASS_DA[r] for r in "PEPTIDEK"]
    peptide = sum(masses) + H2O_MASS_DA
    prefix = np.cumsum(masses)[:-1]
    b = prefix + PROTON_MASS_DA
    y = peptide - prefix + PROTON_MASS_DA
    mz = np.r_[b, y, 1500.9]
    intensity = np.r_[np.full(7, 0.5), np.full(7, 1.0), 0.25]
    order = np.argsort(mz)
    spectrum = annotated_spectrum(mz[order], intensity[order], 2,
                                  (peptide + 2 * PROTON_MASS_DA) / 2, "PEPTIDEK",
                                  STANDARD_MASSES)  # fmt: skip
    f = spectrum_features(spectrum)
    assert set(f) == set(FEATURES)
    assert f["n_peaks"] == 15
    assert f["by_peak_share"] == pytest.approx(14 / 15)
    assert f["by_intensity_share"] == pytest.approx(10.5 / 10.75)
    assert f["by_coverage"] == 1.0 and f["ladder_run"] == 1.0 and f["base_is_by"] == 1.0
    assert f["explained_share"] == pytest.approx(14 / 15)
    assert f["y_over_b_log10"] == pytest.approx(math.log10(7.01 / 3.51))
    assert f["above_precursor_share"] == pytest.approx(np.mean(mz > spectrum.precursor_mz))
    assert f["isotope_pair_share"] == 0.0 and f["a_or_loss_share"] == 0.0


def test_classifier_auc_cannot_tell_one_distribution_and_tells_two_apart():
    rng = np.random.default_rng(0)
    same = classifier_auc(rng.normal(size=(150, 3)), rng.normal(size=(150, 3)))[0]
    apart = classifier_auc(rng.normal(size=(150, 3)), rng.normal(3.0, size=(150, 3)))[0]
    assert 0.35 < same < 0.65 and apart > 0.99


@pytest.fixture(scope="module")
def real_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("realism") / "real.mgf"
    with mgf.read(str(HCD_MGF), use_index=False) as reader:
        mgf.write([spectrum for _, spectrum in zip(range(40), reader, strict=False)],
                  str(path), file_mode="w")  # fmt: skip
    return path


def test_realism_of_a_plain_stage_as_json_and_as_a_table(real_file):
    result = runner.invoke(app, ["realism", str(real_file), "-c", "revised", "--stage",
                                 "stage_10_realistic", "-n", "40", "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["n_real"] == 40 and not data["world"]
    (stage,) = data["stages"]
    assert stage["stage"] == "stage_10_realistic" and stage["n"] == 40
    assert stage["medians"]["n_peaks"] < data["real_medians"]["n_peaks"] / 1.5  # the issue's
    assert stage["auc"]["table"][0] > 0.9  # easily told apart
    # the table of the same report
    report = RealismReport(**{**data, "stages": [StageRealism(**s) for s in data["stages"]]})
    console = Console(record=True, width=200)
    render_realism(console, report)
    text = console.export_text()
    assert "revised (the plain b/y-ladder generator)" in text
    assert "every feature, stage_10_realistic" in text  # one stage: every feature


def test_realism_of_unannotated_spectra_is_one_line(tmp_path):
    path = tmp_path / "plain.mgf"
    path.write_text("BEGIN IONS\nTITLE=x\nPEPMASS=500.3\nCHARGE=2+\n200 1\nEND IONS\n")
    result = runner.invoke(app, ["realism", str(path), "-c", "revised"])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no SEQ" in lines[0]
