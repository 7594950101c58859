"""Fixtures: tiny real training runs (a small model, a few dozen steps), JSON and MGF writers.

Plain helpers (the test model, curricula, MGF cases) are in ``tests/helpers.py``.
Tests run torch on one thread: their tensors are small, and one thread is
faster than two contending ones on a shared 2-core machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.helpers import AB_ARMS, named_curriculum, tiny_run_config

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """Rich wraps at the terminal width: tests read text unwrapped, whatever the checkout path."""
    monkeypatch.setenv("COLUMNS", "240")


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


@pytest.fixture
def arm_files(tmp_path) -> list[Path]:
    """The ``ab_runs`` arms as curriculum JSON files: ``[late.json, early.json]``."""
    from curriculum_cli.curriculum.files import save_curriculum

    paths = []
    for name, (first, second) in AB_ARMS.items():
        path = tmp_path / f"{name}.json"
        save_curriculum(named_curriculum(name, first, second), path)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def ab_runs(tmp_path_factory) -> dict[str, list[Path]]:
    """Two curricula x seeds 0 and 1: four real 40-step runs of the test model (a few seconds)."""
    from curriculum_cli.training.loop import train

    root = tmp_path_factory.mktemp("ab_runs")
    runs: dict[str, list[Path]] = {}
    for name, (first, second) in AB_ARMS.items():
        for seed in (0, 1):
            run_dir = root / f"{name}-s{seed}"
            config = tiny_run_config(named_curriculum(name, first, second), seed=seed,
                                     decode_every=2)  # fmt: skip
            train(config, run_dir)
            runs.setdefault(name, []).append(run_dir)
    return runs


@pytest.fixture(scope="session")
def scaled_run(tmp_path_factory) -> Path:
    """A 2,000-step curriculum trained at --scale 0.02 (40 steps; losses on at nominal 1,000)."""
    from curriculum_cli.training.loop import train

    scale = 0.02
    curriculum = named_curriculum("scaled", 1000, 1000)
    run_dir = tmp_path_factory.mktemp("scaled") / "run"
    train(tiny_run_config(curriculum, scale=scale, decode_every=2), run_dir)
    return run_dir
