"""What the training benchmarks share: pepcurr's real loop timed on the last stage of revised.

``bench_train.py`` and ``bench_gpu.py`` time ``engine.train`` on a one-stage
curriculum equal to the last stage of ``revised`` (lengths 7-18, 10 noise
peaks, all three losses on), or of another preset (``realistic-revised``: the same
stage in the calibrated world), with validation, gradient measurement and
checkpoints kept out of the timed windows, and read steps/s from its
``train`` records. ``bench_models.py`` times the first stage of ``revised`` too.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from curriculum_cli.curriculum.presets import preset
from curriculum_cli.curriculum.schema import Curriculum
from curriculum_cli.training.config import RunConfig
from curriculum_cli.training.loop import train
from curriculum_cli.training.resolve import build_run_config
from curriculum_cli.training.runlog import read_run


def stage_config(
    steps: int, window: int, curriculum: str = "revised", stage: int = -1, **options
) -> RunConfig:
    """A ``steps``-step run of one stage of a preset (``stage``, an index: -1 the last, 0
    the first, clean one; in the preset's world, if it has one), one ``train`` record per
    ``window`` steps."""
    source = preset(curriculum)
    chosen = source.stages[stage]
    where = "last_stage" if stage == -1 else f"stage_{stage}"
    stage = chosen.model_copy(update={"steps": steps, "name": f"{where}_of_{curriculum}"})
    return build_run_config(
        Curriculum(name="bench", world=source.world, stages=[stage]),
        val_size=32,
        decode_size=4,
        val_every=10**9,
        grad_every=10**9,
        checkpoint_every=10**9,
        log_every=window,
        **options,
    )


def loop_steps_per_second(config: RunConfig) -> list[float]:
    """steps/s of the real loop over its timing windows, the first (warm-up) one dropped."""
    with tempfile.TemporaryDirectory() as workdir:
        train(config, Path(workdir) / "run")
        return read_run(Path(workdir) / "run").events("train")["steps_per_s"].tolist()[1:]
