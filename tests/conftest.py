"""Shared fixtures: tiny real training runs (a small model, a few hundred steps at most)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curriculum_cli.curriculum import Curriculum, Stage
from curriculum_cli.engine import TrainConfig
from curriculum_cli.model import ModelConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

#: A model small enough that a test run of 100 steps takes a second or two on 2 cores.
TEST_MODEL = ModelConfig(
    d_model=32, n_encoder_layers=1, n_decoder_layers=1, n_heads=2, dim_feedforward=64
)


def two_stage_curriculum(
    foundation_steps: int = 20,
    second_steps: int = 20,
    spectrum: float = 0.2,
    precursor: float = 0.02,
) -> Curriculum:
    """Pure CE first, then both auxiliary losses on, with a little noise."""
    return Curriculum(
        name="test_two_stage",
        description="tiny test curriculum",
        stages=[
            Stage(name="foundation", steps=foundation_steps, min_length=6, max_length=8),
            Stage(
                name="physics",
                steps=second_steps,
                min_length=6,
                max_length=9,
                noise_peaks=2,
                peak_dropout=0.05,
                mass_error_ppm=5.0,
                spectrum_loss_weight=spectrum,
                precursor_loss_weight=precursor,
            ),
        ],
    )


def tiny_train_config(curriculum: Curriculum | None = None, **overrides) -> TrainConfig:
    """A CPU training config with the test model and small validation sets."""
    settings = dict(
        curriculum=curriculum or two_stage_curriculum(),
        curriculum_source="test",
        model=TEST_MODEL,
        model_preset="test",
        device="cpu",
        batch_size=8,
        lr=2e-3,
        val_size=16,
        decode_size=4,
        val_every=10,
        grad_every=10,
        checkpoint_every=10,
        log_every=5,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


@pytest.fixture
def tiny_curriculum_data() -> dict:
    """A valid two-stage curriculum as plain JSON data (1,000 steps, spectrum loss at 400)."""
    return {
        "schema_version": 1,
        "name": "tiny",
        "description": "two stages for tests",
        "stages": [
            {"name": "warmup", "steps": 400, "min_length": 7, "max_length": 10},
            {
                "name": "physics",
                "steps": 600,
                "min_length": 7,
                "max_length": 12,
                "noise_peaks": 2,
                "peak_dropout": 0.05,
                "mass_error_ppm": 5.0,
                "intensity_variation": 0.1,
                "spectrum_loss_weight": 0.1,
                "precursor_loss_weight": 0.02,
            },
        ],
    }


@pytest.fixture
def write_json(tmp_path):
    """Write data as JSON (or a str as is) to ``tmp_path/name``; returns the path."""

    def write(data, name: str = "curriculum.json") -> Path:
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
        return path

    return write


# ----------------------------------------------------------------------------
# MGF files: the real annotated sample and one small file per kind of bad input
# ----------------------------------------------------------------------------

SAMPLE_MGF = SHARED_DATA / "casanovo_sample_preprocessed_spectra.mgf"
"""128 real annotated spectra from Casanovo's repository (see shared/data/README.md)."""

_GOOD_SPECTRUM = (
    "BEGIN IONS\nTITLE=good\nPEPMASS=400.2\nCHARGE=2+\n100.0 1.0\n200.0 0.5\nEND IONS\n"
)

#: name -> (MGF text, the spectrum index and TITLE the error must name, words it must hold).
BAD_MGF_CASES = {
    "truncated": (
        _GOOD_SPECTRUM + "BEGIN IONS\nTITLE=cut\nPEPMASS=400.2\nCHARGE=2+\n100.0 1.0\n",
        "spectrum 1 (TITLE=cut",
        "truncated",
    ),
    "no_peaks": (
        _GOOD_SPECTRUM + "BEGIN IONS\nTITLE=empty\nPEPMASS=400.2\nCHARGE=2+\nEND IONS\n",
        "spectrum 1 (TITLE=empty",
        "no peaks",
    ),
    "non_numeric_peak": (
        _GOOD_SPECTRUM
        + "BEGIN IONS\nTITLE=words\nPEPMASS=400.2\nCHARGE=2+\n100.0 high\nEND IONS\n",
        "spectrum 1 (TITLE=words",
        "'100.0 high'",
    ),
    "missing_intensity": (
        _GOOD_SPECTRUM
        + "BEGIN IONS\nTITLE=half\nPEPMASS=400.2\nCHARGE=2+\n100.0\n200 1\nEND IONS\n",
        "spectrum 1 (TITLE=half",
        "no intensity",
    ),
    "missing_pepmass": (
        _GOOD_SPECTRUM + "BEGIN IONS\nTITLE=nomass\nCHARGE=2+\n100.0 1.0\nEND IONS\n",
        "spectrum 1 (TITLE=nomass",
        "PEPMASS",
    ),
    "bad_pepmass": (
        _GOOD_SPECTRUM + "BEGIN IONS\nTITLE=badmass\nPEPMASS=heavy\nCHARGE=2+\n100 1\nEND IONS\n",
        "spectrum 1 (TITLE=badmass",
        "PEPMASS=heavy",
    ),
    "missing_charge": (
        _GOOD_SPECTRUM + "BEGIN IONS\nTITLE=nocharge\nPEPMASS=400.2\n100.0 1.0\nEND IONS\n",
        "spectrum 1 (TITLE=nocharge",
        "CHARGE",
    ),
    "unknown_residue": (
        _GOOD_SPECTRUM
        + "BEGIN IONS\nTITLE=odd\nPEPMASS=400.2\nCHARGE=2+\nSEQ=PEPXK\n100.0 1.0\nEND IONS\n",
        "spectrum 1 (TITLE=odd",
        "'X'",
    ),
    "unknown_modification": (
        _GOOD_SPECTRUM
        + "BEGIN IONS\nTITLE=mod\nPEPMASS=400.2\nCHARGE=2+\nSEQ=PEM[Foo]K\n100.0 1.0\nEND IONS\n",
        "spectrum 1 (TITLE=mod",
        "M[Foo]",
    ),
}

#: name -> (file content, words the error must hold): files that are not MGF at all.
NOT_MGF_CASES = {
    "text": ("just some words\nand more words\n", "not an MGF file"),
    "empty": ("", "empty file"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00binary", "binary file"),
}


@pytest.fixture
def write_file(tmp_path):
    """Write text or bytes to ``tmp_path/name``; returns the path."""

    def write(content: str | bytes, name: str = "spectra.mgf") -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    return write


# ----------------------------------------------------------------------------
# Real runs for compare, ab and evaluate (made once per session)
# ----------------------------------------------------------------------------


def named_curriculum(name: str, foundation_steps: int, second_steps: int) -> Curriculum:
    """``two_stage_curriculum`` under another name (the name labels a compare column)."""
    curriculum = two_stage_curriculum(foundation_steps, second_steps)
    return curriculum.model_copy(update={"name": name})


#: Two A/B arms of 40 steps: both auxiliary losses on at step 20 ("late") or 10 ("early").
AB_ARMS = {"late": (20, 20), "early": (10, 30)}


@pytest.fixture(scope="session")
def ab_runs(tmp_path_factory) -> dict[str, list[Path]]:
    """Two curricula x seeds 0 and 1: four real 40-step runs of the test model (a few seconds)."""
    from curriculum_cli.engine import train

    root = tmp_path_factory.mktemp("ab_runs")
    runs: dict[str, list[Path]] = {}
    for name, (first, second) in AB_ARMS.items():
        for seed in (0, 1):
            run_dir = root / f"{name}-s{seed}"
            train(tiny_train_config(named_curriculum(name, first, second), seed=seed,
                                    decode_every=2), run_dir)  # fmt: skip
            runs.setdefault(name, []).append(run_dir)
    return runs


@pytest.fixture(scope="session")
def scaled_run(tmp_path_factory) -> Path:
    """A 2,000-step curriculum trained at --scale 0.02 (40 steps; losses on at nominal 1,000)."""
    from curriculum_cli.engine import train

    scale = 0.02
    curriculum = named_curriculum("scaled", 1000, 1000).scaled(scale)
    run_dir = tmp_path_factory.mktemp("scaled") / "run"
    train(tiny_train_config(curriculum, scale=scale, decode_every=2), run_dir)
    return run_dir
