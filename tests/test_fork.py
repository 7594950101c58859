"""Shared prefixes of A/B arms: which steps runs have in common, and the training plan."""

from __future__ import annotations

import json
from pathlib import Path

from curriculum_cli.training.fork import plan_segments, shared_prefix, steps_saved
from curriculum_cli.training.resolve import build_run_config
from curriculum_cli.training.runlog import TIMING_FIELDS
from curriculum_cli.training.settings import TrainOptions
from tests.helpers import TEST_MODEL_FACTORY, gated_curriculum


def _config(curriculum: str, **options):
    return build_run_config(curriculum, **options)


def test_shipped_curricula_share_their_foundation():
    current, revised, conservative = (_config(n) for n in ("current", "revised", "conservative"))
    # stages agree until 10,000 (current's spectrum loss), 15,000 (revised's); gradients are
    # measured every 500 steps within 2,000 of an introduction, so records differ from
    # the first such step that is not a regular (every 2,000) one
    assert shared_prefix(current, revised) == 8_500
    assert shared_prefix(revised, conservative) == 13_000
    assert shared_prefix(current, conservative) == 8_500
    assert shared_prefix(revised, revised) == 100_000
    assert shared_prefix(_config("revised", scale=0.02), _config("current", scale=0.02)) == 170


def test_nothing_is_shared_across_seeds_or_settings():
    assert shared_prefix(_config("current"), _config("revised", seed=1)) == 0
    assert shared_prefix(_config("current"), _config("revised", lr=5e-4)) == 0


def test_three_arms_train_each_shared_prefix_once():
    runs = [(Path(name), _config(name)) for name in ("current", "revised", "conservative")]
    segments = plan_segments(runs)
    shown = [(str(s.run_dir), s.start, s.stop, s.copy_from and str(s.copy_from)) for s in segments]
    assert shown == [
        ("current", 0, 8_500, None),  # the common prefix, once
        ("revised", 8_500, 13_000, "current"),  # revised and conservative share 4,500 more
        ("conservative", 13_000, None, "revised"),
        ("revised", 13_000, None, None),
        ("current", 8_500, None, None),
    ]
    assert steps_saved(segments) == 8_500 + 8_500 + 4_500


def test_a_lone_run_is_one_segment():
    (segment,) = plan_segments([(Path("r"), _config("revised"))])
    assert (segment.start, segment.stop, segment.copy_from) == (0, None, None)
    assert steps_saved([segment]) == 0


def test_gated_arms_share_their_steps_up_to_the_first_gates_earliest_start():
    gated_revised, gated_current = _config("gated-revised"), _config("gated-current")
    assert shared_prefix(gated_revised, gated_current) == 1_000
    assert shared_prefix(gated_revised, _config("revised")) == 0  # other first-stage data


def test_gated_arms_fork_bit_identically(tmp_path, monkeypatch):
    import torch

    import curriculum_cli.analysis.plots
    from curriculum_cli.analysis.ab import AbSpec, run_ab
    from curriculum_cli.curriculum.files import save_curriculum
    from curriculum_cli.training.checkpoint import CHECKPOINT_FILE, CKPT_MODEL, load_checkpoint
    from curriculum_cli.training.loop import train

    monkeypatch.setattr(curriculum_cli.analysis.plots, "plot_curves", lambda comparison, path: path)
    options = {"model": TEST_MODEL_FACTORY, "batch_size": 8, "lr": 2e-3, "device": "cpu",
               "val_every": 7, "grad_every": 6, "val_size": 16, "decode_size": 4,
               "checkpoint_every": 10, "log_every": 5}  # fmt: skip
    paths = []
    for name, at_least in (("never", 1.0), ("opens", 0.0)):  # the spectrum gate
        curriculum = gated_curriculum(at_least, 30).model_copy(update={"name": name})
        paths.append(tmp_path / f"{name}.json")
        save_curriculum(curriculum, paths[-1])
    spec = AbSpec(arms=[str(p) for p in paths], out_dir=tmp_path / "ab", seeds=1,
                  options=TrainOptions(**options))  # fmt: skip
    result = run_ab(spec)
    assert result.actions[str(tmp_path / "ab" / "opens-s0")] == "forked at step 5"

    def records(run_dir) -> list[dict]:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        return [
            {k: v for k, v in r.items() if k not in TIMING_FIELDS}
            for r in map(json.loads, lines)
            if r["event"] != "resume"
        ]

    for path in paths:
        straight = tmp_path / f"{path.stem}-straight"
        train(build_run_config(str(path), seed=0, **options), straight)
        forked = tmp_path / "ab" / f"{path.stem}-s0"
        assert records(forked) == records(straight), path.stem
        a = load_checkpoint(forked / CHECKPOINT_FILE)[CKPT_MODEL]
        b = load_checkpoint(straight / CHECKPOINT_FILE)[CKPT_MODEL]
        assert all(torch.equal(a[k], b[k]) for k in a)


def _three_stages(name: str, **middle):
    """18 steps: CE only, then the spectrum loss, then both; ``middle`` changes stage 2."""
    from curriculum_cli.curriculum.schema import Curriculum, Stage

    data = dict(min_length=7, max_length=8)
    return Curriculum(name=name, stages=[
        Stage(name="first", steps=6, **data),
        Stage(name="middle", steps=6, spectrum_loss_weight=0.2, **{**data, **middle}),
        Stage(name="last", steps=6, spectrum_loss_weight=0.2, precursor_loss_weight=0.02, **data),
    ])  # fmt: skip


def test_arms_share_a_prefix_only_if_everything_they_log_in_it_is_the_same(tmp_path):
    from curriculum_cli.training.launch import read_run_inputs
    from curriculum_cli.training.resolve import resolve_run_config
    from tests.helpers import SAMPLE_MGF

    def config(curriculum, **options):
        asked = TrainOptions(curriculum=curriculum, model=TEST_MODEL_FACTORY, **options)
        return resolve_run_config(asked, read_run_inputs(asked))

    quiet, noisy = _three_stages("quiet", noise_peaks=1), _three_stages("noisy", noise_peaks=3)
    assert shared_prefix(config(quiet), config(noisy)) == 6  # the first stage
    # a middle stage with longer peptides: validations decode up to 11 residues, not 8
    assert shared_prefix(config(quiet), config(_three_stages("long", max_length=11))) == 0
    # shorter ones: val_real (real spectra of the curriculum's lengths) holds 6-8, not 7-8
    short = _three_stages("short", min_length=6)
    assert shared_prefix(config(quiet), config(short)) == 6  # no val_real
    real = {"val_data": [SAMPLE_MGF], "skip_invalid": True, "store_dir": tmp_path}
    assert shared_prefix(config(quiet, **real), config(short, **real)) == 0


def test_arms_whose_middle_stages_differ_fork_exactly_like_solo_runs(tmp_path, monkeypatch):
    """Every record of an arm forked by ab, decoded metrics and val_real in the shared
    prefix included, equals that of the arm trained alone (an arm whose middle stage changes
    what is logged is not forked at all: the test above)."""
    import curriculum_cli.analysis.plots
    from curriculum_cli.analysis.ab import AbSpec, run_ab
    from curriculum_cli.curriculum.files import save_curriculum
    from curriculum_cli.training.launch import read_run_inputs
    from curriculum_cli.training.loop import train
    from curriculum_cli.training.resolve import resolve_run_config
    from tests.helpers import SAMPLE_MGF

    # the curves figure takes seconds to lay out and is not what this test is about
    monkeypatch.setattr(curriculum_cli.analysis.plots, "plot_curves", lambda comparison, path: path)
    options = {"model": TEST_MODEL_FACTORY, "batch_size": 8, "lr": 2e-3, "device": "cpu",
               "val_every": 6, "decode_every": 1, "grad_every": 3, "val_size": 8,
               "decode_size": 4, "checkpoint_every": 6, "log_every": 3,
               "val_data": [SAMPLE_MGF], "skip_invalid": True,
               "store_dir": tmp_path / "store"}  # fmt: skip
    paths = []
    for curriculum in (
        _three_stages("quiet", noise_peaks=1),
        _three_stages("noisy", noise_peaks=3),
    ):
        paths.append(tmp_path / f"{curriculum.name}.json")
        save_curriculum(curriculum, paths[-1])
    spec = AbSpec(arms=[str(p) for p in paths], out_dir=tmp_path / "ab", seeds=1,
                  options=TrainOptions(**options))  # fmt: skip
    result = run_ab(spec)
    assert result.actions[str(tmp_path / "ab" / "noisy-s0")] == "forked at step 6"

    def records(run_dir) -> list[dict]:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in r.items() if k not in TIMING_FIELDS}
                for r in map(json.loads, lines) if r["event"] != "resume"]  # fmt: skip

    solo = tmp_path / "noisy-solo"
    asked = TrainOptions(curriculum=str(paths[1]), seed=0, **options)
    train(resolve_run_config(asked, read_run_inputs(asked)), solo)
    forked = records(tmp_path / "ab" / "noisy-s0")
    assert any(r["event"] == "val" and r["split"] == "val_real" and "peptide_recall" in r
               and r["step"] < 6 for r in forked)  # a decoded val_real in the prefix  # fmt: skip
    assert forked == records(solo)


def test_arms_of_different_worlds_share_no_prefix_and_the_world_is_a_confound(tmp_path):
    from curriculum_cli.analysis.confounds import confounds
    from curriculum_cli.curriculum.files import load_curriculum
    from curriculum_cli.training.runlog import read_run
    from tests.helpers import fabricate_run

    plain = load_curriculum("current").scaled(0.001)
    realistic = load_curriculum("realistic-current").scaled(0.001)
    assert plain.stages == realistic.stages  # the same schedule; only the spectra differ
    assert shared_prefix(_config(plain), _config(plain)) == plain.total_steps
    assert shared_prefix(_config(plain), _config(realistic)) == 0

    runs = [fabricate_run(tmp_path / name, curriculum, 0, {10: 0.5})
            for name, curriculum in (("plain", plain), ("realistic", realistic))]  # fmt: skip
    lines = confounds([read_run(run) for run in runs], ["plain", "realistic"])
    (line,) = [line for line in lines if line.startswith("synthetic spectra differ")]
    assert "plain the plain generator" in line
    assert "realistic a world calibrated on 125 spectra of train.mgf" in line


def test_progress_counts_a_shared_prefix_once_and_a_fork_from_its_copy(tmp_path):
    from curriculum_cli.analysis.ab import Progress
    from curriculum_cli.training.fork import Segment
    from tests.helpers import tiny_run_config

    config = tiny_run_config()  # 40 steps
    holder, fork = tmp_path / "holder", tmp_path / "fork"
    chain = [Segment(holder, config, 0, 15), Segment(fork, config, 15, None, holder),
             Segment(holder, config, 15, None)]  # fmt: skip

    def log(run_dir: Path, last: int) -> None:
        run_dir.mkdir(exist_ok=True)
        records = [{"event": "train", "step": step} for step in range(5, last + 1, 5)]
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    now = [0.0]
    log(holder, 10)
    progress = Progress([chain], clock=lambda: now[0])
    assert progress.total == 15 + 25 + 25 and progress.done_at_start == 10
    log(holder, 10)
    with (holder / "metrics.jsonl").open("a") as file:  # stopped at 15 between train records
        file.write(json.dumps({"event": "end", "step": 15, "status": "stopped"}) + "\n")
    log(fork, 25)  # copied at 15, trained 10 more
    now[0] = 20.0
    line = progress.line()
    assert line.startswith("progress: 25 of 65 steps (38%), 0.75 steps/s, about 1 min left")
    assert "running: fork step 25/40" in line
