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
    foundation_steps: int = 20, second_steps: int = 20, spectrum: float = 0.2, precursor: float = 0.02
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
