"""Training on real annotated MGF: the store, the batch mix, exact resume, val_real, bad input."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from curriculum_cli.analysis.compare import compare_runs
from curriculum_cli.cli.app import app
from curriculum_cli.errors import PepcurrError
from curriculum_cli.spectra import store as store_module
from curriculum_cli.spectra.batch_source import RealSpectra
from curriculum_cli.spectra.chemistry import MAX_CHARGE
from curriculum_cli.spectra.mgf import read_mgf
from curriculum_cli.spectra.store import default_store_path, open_store
from curriculum_cli.spectra.vocabulary import Vocabulary
from curriculum_cli.training.config import RUN_FILE, read_run_config
from curriculum_cli.training.loop import train
from curriculum_cli.training.runlog import METRICS_FILE
from tests.helpers import SAMPLE_MGF, TEST_MODEL_FACTORY
from tests.test_engine import comparable, read_jsonl

runner = CliRunner()
VOCAB = Vocabulary.default()

#: Half real spectra (lengths 6-9) in the first stage, all real (6-12) in the second.
MIX_CURRICULUM = {
    "schema_version": 1,
    "name": "mix",
    "stages": [
        {"name": "half", "steps": 8, "min_length": 6, "max_length": 9, "real_fraction": 0.5},
        {"name": "real", "steps": 8, "min_length": 6, "max_length": 12,
         "spectrum_loss_weight": 0.1, "precursor_loss_weight": 0.01},
    ],
}  # fmt: skip


def invoke(*arguments):
    return runner.invoke(app, [str(argument) for argument in arguments])


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def train_args(curriculum, out, *data):
    return ["train", "-c", curriculum, "-o", out, "--model", TEST_MODEL_FACTORY,
            "--device", "cpu", "--batch-size", 8, "--val-every", 8, "--grad-every", 4,
            "--val-size", 32, "--decode-size", 4, "-q", *data]  # fmt: skip


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    """Synthetic MGF from ``pepcurr spectra`` + the 128 real spectra, trained through the CLI
    (8 steps: the curriculum at scale 0.5); returns (run dir, data dir, CLI output)."""
    root = tmp_path_factory.mktemp("realdata")
    curriculum = root / "mix.json"
    curriculum.write_text(json.dumps(MIX_CURRICULUM))
    shutil.copy(SAMPLE_MGF, root / "real.mgf")
    result = invoke("spectra", "-c", curriculum, "--stage", "half", "-n", 64,
                    "-o", root / "synthetic.mgf")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = ["--train-data", root / "synthetic.mgf", "--train-data", root / "real.mgf",
            "--val-data", root / "real.mgf", "--skip-invalid"]  # fmt: skip
    run_dir = root / "run"
    result = invoke(*train_args(curriculum, run_dir, *data), "--scale", 0.5)
    assert result.exit_code == 0, result.output
    return run_dir, root, result.output


def test_real_and_synthetic_run_resumes_exactly(mixed_run, tmp_path):
    run_dir, root, output = mixed_run
    config = read_run_config(run_dir)
    assert [s.real_fraction for s in config.curriculum.stages] == [0.5, 1.0]  # default resolved
    real_file = next(f for f in config.train_data if f.path.endswith("real.mgf"))
    assert real_file.sha256 == hashlib.sha256((root / "real.mgf").read_bytes()).hexdigest()
    # 5 spectra carry M[Oxidation] or N[Deamidated], outside the default vocabulary
    assert (real_file.n_spectra, real_file.n_skipped) == (123, 5) and config.skip_invalid
    assert "5 invalid spectra skipped" in output
    assert "finished at step 8/8" in output and "val_real" in output
    # stopped at step 3 and resumed, the run gives the numbers of an uninterrupted one
    config = config.model_copy(update=dict(val_size=16, val_every=4, checkpoint_every=3))
    train(config, tmp_path / "straight")
    assert train(config, tmp_path / "resumed", max_steps=3).status == "stopped"
    assert train(config, tmp_path / "resumed", resume=True).status == "finished"
    straight = comparable(read_jsonl(tmp_path / "straight" / METRICS_FILE))
    assert comparable(read_jsonl(tmp_path / "resumed" / METRICS_FILE)) == straight
    assert any(r["event"] == "val" and r["split"] == "val_real" for r in straight)


def test_store_matches_read_mgf_and_is_sorted_by_length(tmp_path, monkeypatch):
    # small record batches, so that rows are read across several of them
    monkeypatch.setattr(store_module, "_FLUSH_ROWS", 4)
    monkeypatch.setattr(store_module, "_STORE_BATCH_ROWS", 10)
    path = SAMPLE_MGF
    store = open_store(path, default_store_path(path, tmp_path), VOCAB, MAX_CHARGE, True)
    assert len(store._chunks) > 10
    rows = np.random.default_rng(0).permutation(len(store))
    batch = store.batch(rows)
    assert store.batch(np.arange(len(store))).lengths.tolist() == sorted(batch.lengths.tolist())
    read = read_mgf(path, VOCAB).batch
    row = {title: i for i, title in enumerate(read.titles)}
    for i, title in enumerate(batch.titles):
        j, n = row[title], int(batch.peak_mask[i].sum())
        assert torch.equal(batch.mz[i, :n], read.mz[j, :n]) and int(read.peak_mask[j].sum()) == n
        assert torch.equal(batch.intensity[i, :n], read.intensity[j, :n])
        assert batch.precursor_mass_da[i] == read.precursor_mass_da[j]
        assert batch.peptides[i] == read.peptides[j]


def test_stage_length_range_selects_the_spectra_drawn(mixed_run):
    _, root, _ = mixed_run
    path = (root / "real.mgf").absolute()
    store = open_store(path, default_store_path(path, None), VOCAB, MAX_CHARGE, True)
    real = RealSpectra([store])
    generator = torch.Generator().manual_seed(0)
    batch = real.draw(200, 8, 9, generator, token_width=10)
    assert set(batch.lengths.tolist()) == {8, 9}
    assert real.count(8, 9) == sum(1 for n in read_lengths(path) if 8 <= n <= 9)
    assert real.count(30, 40) == 0


def read_lengths(path):
    return [n for n in read_mgf(path, VOCAB, skip_invalid=True).batch.lengths.tolist() if n]


def test_changed_file_is_reindexed(tmp_path):
    path = tmp_path / "six.mgf"
    blocks = SAMPLE_MGF.read_text().split("END IONS")
    path.write_text("END IONS".join(blocks[:6]) + "END IONS\n")
    indexed = []

    def store():
        return open_store(path, default_store_path(path, tmp_path / "stores"), VOCAB, MAX_CHARGE,
                          on_index=indexed.append)  # fmt: skip

    assert len(store()) == 6 and len(store()) == 6 and len(indexed) == 1  # built once
    mtime = path.stat().st_mtime_ns
    path.write_text("END IONS".join(blocks[:7]) + "END IONS\n")
    os.utime(path, ns=(mtime, mtime))  # same time: the new size gives it away
    assert len(store()) == 7 and len(indexed) == 2


def test_val_real_in_compare(mixed_run, scaled_run):
    run_dir, _, _ = mixed_run
    comparison = compare_runs([run_dir], metric="residue_accuracy_real")
    assert 0 <= comparison.runs["residue_accuracy_real"].iloc[0] <= 1
    assert np.isfinite(comparison.runs["val_ce_real"].iloc[0])
    synthetic_only = compare_runs([scaled_run])
    assert not [row for row in synthetic_only.rows if row.key.endswith("_real")]
    with pytest.raises(PepcurrError, match="val_real"):
        compare_runs([scaled_run], metric="residue_accuracy_real")


GOOD = (
    "BEGIN IONS\nTITLE=good\nPEPMASS=400.2\nCHARGE=2+\nSEQ=PEPTIDEK\n150.0 1.0\n250.0 0.5\n"
    "END IONS\n"
)

#: name -> (the second spectrum, words the one error line must hold)
BAD_TRAINING_SPECTRA = {
    "unknown_modification": ("SEQ=PEM[Foo]K\nCHARGE=2+", "M[Foo]"),
    "outside_vocabulary": ("SEQ=PEN[Deamidated]K\nCHARGE=2+", "N[Deamidated]"),
    "no_seq": ("CHARGE=2+", "no SEQ"),
    "charge_above_limit": (f"SEQ=PEPTIDEK\nCHARGE={MAX_CHARGE + 1}+", "above the model's limit"),
}


@pytest.mark.parametrize("case", BAD_TRAINING_SPECTRA)
def test_bad_training_spectrum_is_one_line_naming_it(case, tmp_path):
    fields, words = BAD_TRAINING_SPECTRA[case]
    path = tmp_path / "bad.mgf"
    path.write_text(GOOD + f"BEGIN IONS\nTITLE=bad\nPEPMASS=400.2\n{fields}\n150 1\nEND IONS\n")
    line = one_error_line(invoke(*train_args("revised", tmp_path / "run", "--train-data", path)))
    assert "spectrum 1 (TITLE=bad" in line and words in line and "--skip-invalid" in line
    assert not (tmp_path / "run" / RUN_FILE).exists()


def test_file_empty_after_filtering_is_an_error_even_when_skipping(tmp_path):
    path = tmp_path / "empty.mgf"  # its only peaks are below m/z 50: none is kept
    path.write_text(GOOD.replace("150.0 1.0\n250.0 0.5", "20.0 1.0\n30.0 0.5"))
    arguments = train_args("revised", tmp_path / "run", "--train-data", path)
    assert "no peak left after preprocessing" in one_error_line(invoke(*arguments))
    line = one_error_line(invoke(*arguments, "--skip-invalid"))
    assert "no valid training spectrum (1 skipped)" in line


def test_real_fraction_without_training_data_is_an_error(tmp_path):
    curriculum = tmp_path / "mix.json"
    curriculum.write_text(json.dumps(MIX_CURRICULUM))
    line = one_error_line(invoke(*train_args(curriculum, tmp_path / "run")))
    assert "stages.0.real_fraction" in line and "--train-data" in line
