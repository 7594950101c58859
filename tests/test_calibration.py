"""``pepcurr calibrate``: a world fitted to annotated spectra, and its bad inputs.

One fit of 16 real spectra (about a second); the facts it must hold are computed here
from the file itself, independently of pepcurr's reader.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from pyteomics import mgf
from typer.testing import CliRunner

from curriculum_cli.cli.app import app
from curriculum_cli.curriculum.files import read_curriculum_file
from curriculum_cli.spectra.synthetic import SpectrumSettings, generate_spectra
from curriculum_cli.spectra.vocabulary import Vocabulary
from tests.helpers import HCD_MGF

runner = CliRunner()


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    """The first 16 spectra of the MassIVE-KB file."""
    path = tmp_path_factory.mktemp("calibrate") / "small.mgf"
    with mgf.read(str(HCD_MGF), use_index=False) as reader:
        mgf.write([spectrum for _, spectrum in zip(range(16), reader, strict=False)],
                  str(path), file_mode="w")  # fmt: skip
    return path


@pytest.fixture(scope="module")
def calibrated(small_file):
    out = small_file.parent / "calibrated.json"
    result = runner.invoke(app, ["calibrate", str(small_file), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return result.output, read_curriculum_file(out)


def test_calibrate_fits_the_files_spectra(small_file, calibrated):
    output, curriculum = calibrated
    world = curriculum.world
    with mgf.read(str(small_file), use_index=False) as reader:
        spectra = list(reader)
    charges = [int(re.sub(r"\D", "", str(s["params"]["charge"]))) for s in spectra]
    sequences = [s["params"]["seq"] for s in spectra]
    residues = [re.sub(r"\[[^\]]*\]-?", "", seq) for seq in sequences]
    assert world.spectra.charge == charges
    assert world.spectra.length == [len(r) for r in residues]
    assert world.source.sha256 == [hashlib.sha256(small_file.read_bytes()).hexdigest()]
    oxidized = sum(seq.count("M[Oxidation]") for seq in sequences)
    methionines = sum(r.count("M") for r in residues)
    if oxidized:
        assert world.modifications["M[Oxidation]"].rate == pytest.approx(oxidized / methionines)
    # MassIVE-KB's files have no peak within 20 Da of the precursor (data/README.md)
    assert world.instrument.precursor_gap_da >= 19.9
    assert min(world.spectra.peaks) >= 1 and max(world.spectra.peaks) <= 150
    stage = curriculum.stages[0]
    assert (stage.min_length, stage.max_length) == (min(world.spectra.length),
                                                    max(world.spectra.length))  # fmt: skip
    for part in ("intensity model:", "noise:", "errors:", "isotopes:", "modifications:"):
        assert part in output
    assert "spectra: 16 used (charge 2+ " in output
    assert "warning: a world fitted to 16 spectra" in output  # under FEW_SPECTRA
    # the world draws spectra
    batch = generate_spectra(SpectrumSettings.from_stage(stage, world=world), 16,
                             Vocabulary.named("casanovo"), seed=0)  # fmt: skip
    assert len(batch) == 16 and bool(batch.peak_mask.any(-1).all())


def one_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_calibrate_bad_inputs_are_one_line(tmp_path, small_file, calibrated):
    unannotated = tmp_path / "plain.mgf"
    unannotated.write_text("BEGIN IONS\nTITLE=x\nPEPMASS=500.3\nCHARGE=2+\n200 1\nEND IONS\n")
    line = one_error(runner.invoke(app, ["calibrate", str(unannotated), "-o",
                                         str(tmp_path / "a.json")]))  # fmt: skip
    assert "spectrum 0 (TITLE=x): no SEQ" in line
    line = one_error(runner.invoke(app, ["calibrate", str(tmp_path / "none.mgf"), "-o",
                                         str(tmp_path / "a.json")]))  # fmt: skip
    assert "none.mgf" in line
    exists = small_file.parent / "calibrated.json"
    line = one_error(runner.invoke(app, ["calibrate", str(small_file), "-o", str(exists)]))
    assert "file exists; use --force" in line
