"""``pepcurr sweep`` (``analysis/sweep.py``): a tiny sweep trains every arm as a fork tree
and re-running it only analyses; a forked arm equals the same arm trained alone; the
analysis of fabricated groups against independent computations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from curriculum_cli.analysis.compare import compare_runs
from curriculum_cli.analysis.stats import holm
from curriculum_cli.analysis.sweep import SweepSpec, analyse_across_scales, analyse_scale
from curriculum_cli.cli.app import app
from curriculum_cli.curriculum.factors import Arm, Factor, parse_vary
from curriculum_cli.curriculum.files import curriculum_json, read_curriculum_file
from curriculum_cli.training.loop import train
from curriculum_cli.training.resolve import build_run_config
from tests.helpers import TEST_MODEL_FACTORY, fabricate_run, named_curriculum, two_stage_curriculum
from tests.test_engine import comparable, read_jsonl

runner = CliRunner()

SMALL = ["--model", TEST_MODEL_FACTORY, "--device", "cpu", "--batch-size", "8",
         "--val-size", "16", "--decode-size", "4", "--val-every", "10", "--grad-every", "10",
         "--checkpoint-every", "10", "--log-every", "5", "--lr", "0.002"]  # fmt: skip
NAMES = ["tiny.spectrum_start=20", "tiny.spectrum_start=0", "tiny.spectrum_start=never"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A 40-step base (spectrum and precursor loss on at 20) swept over spectrum_start
    0, 20 (its own level, the control) and never, 2 seeds, trained here."""
    folder = tmp_path_factory.mktemp("sweep")
    base = folder / "tiny.json"
    base.write_text(curriculum_json(two_stage_curriculum().model_copy(update={"name": "tiny"})))
    out = folder / "out"
    words = ["sweep", str(base), "--vary", "spectrum_start=0,never", "--seeds", "2", "-o",
             str(out), "--jobs", "1", "--margin", "0.05", *SMALL]  # fmt: skip
    first = runner.invoke(app, words)
    again = runner.invoke(app, [*words, "-f", "json"])
    return base, out, words, first, again


def test_a_tiny_sweep_trains_every_arm_with_shared_prefixes_once(swept):
    _, out, _, first, _ = swept
    assert first.exit_code == 0, first.output
    assert "sweep: 3 arms x 2 seeds x 1 scale(s) = 6 runs" in first.output
    assert "forked at step" in first.output
    assert sorted(p.name for p in (out / "arms").iterdir()) == sorted(f"{n}.json" for n in NAMES)
    for name in NAMES:
        for seed in (0, 1):
            assert (out / "scale-1" / f"{name}-s{seed}" / "last.pt").is_file()
    assert (out / "dose-response.png").stat().st_size > 10_000
    assert (out / "scale-1" / "curves.png").is_file()
    question = json.loads((out / "sweep.json").read_text())
    assert question["factors"] == {"spectrum_start": ["20", "0", "never"]}
    assert question["control"] == {"spectrum_start": "20"}
    for words in ("Omnibus, every level equal", "cannot be told from the best",
                  "Within ±0.05 of the best", "spectrum loss exposure"):  # fmt: skip
        assert words in first.output


def test_the_arms_are_ordinary_curriculum_files(swept):
    _, out, _, _, _ = swept
    never = read_curriculum_file(out / "arms" / f"{NAMES[2]}.json")
    assert never.introductions() == {"spectrum": None, "precursor": 20}
    result = runner.invoke(app, ["validate", str(out / "arms" / f"{NAMES[1]}.json")])
    assert result.exit_code == 0, result.output


def test_running_it_again_only_analyses_and_writes_json(swept):
    _, _, _, _, again = swept
    assert again.exit_code == 0, again.output
    assert "6 finished already" in again.output and "0 steps to train" in again.output
    data = json.loads(again.stdout[again.stdout.index("{") :])
    (scale,) = data["scales"]
    assert [level["name"] for level in scale["levels"]] == NAMES
    for level in scale["levels"]:
        assert {"name", "spectrum_start", "mean", "diff", "ci_low", "ci_high",
                "p_adjusted"} <= set(level)  # fmt: skip
    assert scale["omnibus"]["test"].startswith("within-seed permutation test")
    assert 0 < scale["omnibus"]["p"] <= 1
    assert set(scale["best"]) <= set(NAMES) and scale["best"]


def test_a_forked_arm_equals_the_same_arm_trained_alone(swept, tmp_path):
    _, out, _, _, _ = swept
    forked = out / "scale-1" / f"{NAMES[2]}-s0"
    curriculum = read_curriculum_file(out / "arms" / f"{NAMES[2]}.json")
    config = build_run_config(
        curriculum, seed=0, model=TEST_MODEL_FACTORY, device="cpu", batch_size=8, val_size=16,
        decode_size=4, val_every=10, grad_every=10, checkpoint_every=10, log_every=5, lr=0.002,
    )  # fmt: skip
    train(config, tmp_path / "alone")
    alone = comparable(read_jsonl(tmp_path / "alone" / "metrics.jsonl"))
    assert comparable(read_jsonl(forked / "metrics.jsonl")) == alone


def test_the_question_of_a_sweep_is_fixed(swept):
    _, _, words, _, _ = swept
    changed = [w if w != "0.05" else "0.01" for w in words]
    result = runner.invoke(app, changed)
    assert result.exit_code == 2
    assert "was planned with margin 0.05" in result.output


def test_plan_prints_the_commands_scale_by_scale(tmp_path):
    base = tmp_path / "tiny.json"
    base.write_text(curriculum_json(two_stage_curriculum().model_copy(update={"name": "tiny"})))
    result = runner.invoke(app, ["sweep", str(base), "--vary", "spectrum_start=0,never",
                                 "--scale", "0.5,1", "-o", str(tmp_path / "out"), "--plan",
                                 *SMALL])  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("# scale 0.5") and any(
        line.startswith("# scale 1") for line in lines
    )
    assert sum(line.startswith("pepcurr train") for line in lines) >= 2 * 2 * 3
    assert "--fork-from" in result.output


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--vary", "spectrum_begin=0"], "unknown factor 'spectrum_begin'"),
        (["--vary", "spectrum_start=0", "--scale", "0.1,x"], "'x' is not a number"),
        (["--vary", "spectrum_start=0", "--scale", "0.1,0.1"], "listed twice"),
        (["--vary", "spectrum_start=0", "--control", "spectrum_start=5"], "not one of the levels"),
        (["--vary", "spectrum_start=40"], "never comes on"),
    ],
)
def test_bad_sweeps_are_one_line_before_anything_trains(tmp_path, extra, says):
    base = tmp_path / "tiny.json"
    base.write_text(curriculum_json(two_stage_curriculum().model_copy(update={"name": "tiny"})))
    result = runner.invoke(app, ["sweep", str(base), "-o", str(tmp_path / "out"), *extra, *SMALL])
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "scale-1").exists()


# ----------------------------------------------------------------------------
# The analysis on fabricated groups
# ----------------------------------------------------------------------------


def _fabricated(tmp_path, effects: list[float], seeds=6, noise=0.004, seed_sd=0.01, rng=0,
                scale_tag="a"):  # fmt: skip
    """Runs of arms named ``L0`` (the control), ``L1``, ... whose final accuracy is
    0.7 + a seed effect + the arm's effect + noise; returns (arms, comparison, table)."""
    generator = np.random.default_rng(rng)
    seed_effect = generator.normal(0, seed_sd, seeds)
    table = 0.7 + seed_effect[:, None] + np.asarray(effects)[None, :] + generator.normal(
        0, noise, (seeds, len(effects)))  # fmt: skip
    dirs, arms = [], []
    for j in range(len(effects)):
        name = f"L{j}"
        arms.append(Arm({Factor.spectrum_start: j * 1000}, name, None, j == 0))
        for s in range(seeds):
            dirs.append(fabricate_run(tmp_path / scale_tag / f"{name}-s{s}",
                                      named_curriculum(name, 20, 20), s,
                                      {0: 0.1, 40: float(table[s, j])}))  # fmt: skip
    comparison = compare_runs(dirs, metric="residue_accuracy_hard", margin=0.01)
    return arms, comparison, table


def _spec(tmp_path):
    return SweepSpec(base="current", varied=(parse_vary("spectrum_start=0,1000"),),
                     out_dir=tmp_path, metric="residue_accuracy_hard", margin=0.01)  # fmt: skip


def test_a_planted_effect_is_found_and_left_out_of_the_best_set(tmp_path):
    arms, comparison, table = _fabricated(tmp_path, [0, 0, -0.03, 0])
    analysis = analyse_scale(_spec(tmp_path), arms, None, comparison)
    assert analysis.omnibus.p < 0.01
    assert [level.in_best for level in analysis.levels] == [True, True, False, True]
    worse = analysis.levels[2]
    assert worse.diff == pytest.approx(float((table[:, 2] - table[:, 0]).mean()), abs=1e-12)
    # Holm over 3 contrasts with 6 pairs: the smallest exact p is 3 x 2/64 > 0.05, so no
    # contrast can be a difference; the omnibus test and the best set still find the level
    assert worse.verdict.kind == "undecided"
    assert "too few untied pairs" in worse.verdict.reason
    assert worse.mcb_high == 0.0 and worse.mcb_low < -0.01


def test_the_contrasts_are_holm_adjusted_as_a_second_implementation_says(tmp_path):
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    arms, comparison, table = _fabricated(tmp_path, [0, 0.004, -0.01, 0.002])
    analysis = analyse_scale(_spec(tmp_path), arms, None, comparison)
    raw = [level.verdict.p_value for level in analysis.levels[1:]]
    # the exact sign-flip p of each contrast, enumerated here: 2^6 sign patterns
    for level, j in zip(analysis.levels[1:], range(1, 4), strict=True):
        d = table[:, j] - table[:, 0]
        signs = np.array(np.meshgrid(*[[-1, 1]] * 6)).reshape(6, -1).T
        sums = np.abs((signs * np.abs(d)).sum(axis=1))
        assert level.verdict.p_value == pytest.approx(
            float((sums >= abs(d.sum()) - 1e-12).mean()), abs=1e-12)  # fmt: skip
    expected = multipletests(raw, method="holm")[1]
    assert [level.verdict.p_adjusted for level in analysis.levels[1:]] == pytest.approx(
        list(expected), abs=1e-12)  # fmt: skip
    assert holm(raw) == pytest.approx(list(expected), abs=1e-12)


def test_an_all_equal_group_is_not_found(tmp_path):
    arms, comparison, _ = _fabricated(tmp_path, [0, 0, 0, 0], rng=3)
    analysis = analyse_scale(_spec(tmp_path), arms, None, comparison)
    assert analysis.omnibus.p > 0.05
    assert all(level.in_best for level in analysis.levels)


def test_the_interaction_across_scales(tmp_path):
    spec = SweepSpec(base="current", varied=(parse_vary("spectrum_start=0,1000,2000"),),
                     out_dir=tmp_path, scales=(0.5, 1.0),
                     metric="residue_accuracy_hard")  # fmt: skip
    same, moved = [], []
    for tag, effects in (("a", [0, 0.01, -0.01]), ("b", [0, 0.01, -0.01])):
        arms, comparison, _ = _fabricated(tmp_path, effects, rng=1 if tag == "a" else 2,
                                          scale_tag=tag)  # fmt: skip
        same.append(analyse_scale(spec, arms, 1.0, comparison))
    for tag, effects in (("c", [0, 0.015, -0.015]), ("d", [0, -0.015, 0.015])):
        arms, comparison, _ = _fabricated(tmp_path, effects, rng=1 if tag == "c" else 2,
                                          scale_tag=tag)  # fmt: skip
        moved.append(analyse_scale(spec, arms, 1.0, comparison))
    interactions, _ = analyse_across_scales(spec, arms, same)
    assert interactions["spectrum_start"].p > 0.05
    interactions, _ = analyse_across_scales(spec, arms, moved)
    # two scales, six seeds: 2^5 arrangements, so the smallest p is 1/32, reached here
    assert interactions["spectrum_start"].p == pytest.approx(1 / 32)
    assert math.isclose(interactions["spectrum_start"].arrangements, 2**5)
