"""``compare_runs`` on small real runs: facts, --at and --scale, groups, statistics, renderers."""

from __future__ import annotations

import io
import json
import math
import shutil
import statistics

import pandas as pd
import pytest
from rich.console import Console

from curriculum_cli.analysis.compare import compare_runs
from curriculum_cli.cli.render.comparison import (
    comparison_csv,
    comparison_json,
    comparison_markdown,
    render_comparison,
)
from curriculum_cli.errors import PepcurrError, RunError
from curriculum_cli.training.loop import train
from curriculum_cli.training.runlog import METRICS_FILE, read_run
from tests.helpers import fabricate_run, gated_curriculum, named_curriculum, tiny_run_config


def _all(ab_runs) -> list:
    return [run for runs in ab_runs.values() for run in runs]


def _val(run_dir, split: str) -> pd.DataFrame:
    """Validation records of a split, read independently of compare (json, full precision)."""
    lines = (run_dir / METRICS_FILE).read_text().splitlines()
    frame = pd.DataFrame.from_records([json.loads(line) for line in lines])
    return frame[(frame["event"] == "val") & (frame["split"] == split)]


@pytest.fixture(scope="module")
def grouped(ab_runs):
    return compare_runs(_all(ab_runs))


def test_values_are_those_of_the_last_validation_at_or_before_step(ab_runs):
    run = ab_runs["late"][0]
    comparison = compare_runs([run], at=25)  # validations every 10 steps: step 20 is read
    facts = comparison.runs.iloc[0]
    hard = _val(run, "val_hard")
    assert facts["step"] == 20
    assert facts["token_accuracy_hard"] == hard.loc[hard["step"] == 20, "token_accuracy"].item()
    assert facts["val_ce_hard"] == hard.loc[hard["step"] == 20, "ce"].item()
    # decoded metrics come every 2nd validation (steps 0, 20, 40): step 20 too
    assert facts["decoded_step"] == 20
    assert facts["spectrum_introduced"] == 20 and facts["precursor_introduced"] == 20


def test_runs_of_one_curriculum_form_a_group_with_mean_and_sd(ab_runs, grouped):
    assert grouped.groups == ["late", "early"] and grouped.grouped
    for group, runs in ab_runs.items():
        finals = [_val(run, "val_hard")["token_accuracy"].iloc[-1] for run in runs]
        assert grouped.mean.loc["token_accuracy_hard", group] == pytest.approx(sum(finals) / 2)
        assert grouped.std.loc["token_accuracy_hard", group] == pytest.approx(
            abs(finals[0] - finals[1]) / math.sqrt(2)
        )
        assert grouped.runs.loc[grouped.runs["group"] == group, "seeds"].iloc[0] == "0, 1"
    assert grouped.mean.loc["spectrum_introduced"].to_dict() == {"late": 20, "early": 10}


def test_two_arms_with_two_seed_pairs_get_no_verdict_and_say_why(grouped):
    (verdict,) = grouped.verdicts
    assert (verdict.baseline, verdict.arm) == ("late", "early")
    assert verdict.kind == "undecided" and verdict.winner is None
    assert verdict.paired and verdict.n_pairs == 2
    assert "2 seed pairs" in verdict.reason and "at least 3" in verdict.reason
    assert grouped.verdict == verdict.sentence
    assert "residue_accuracy_hard" in grouped.verdict and "40" in grouped.verdict


def test_one_run_per_arm_cannot_be_judged(ab_runs):
    comparison = compare_runs([ab_runs["late"][0], ab_runs["early"][0]])
    assert not comparison.grouped
    assert comparison.columns == ["late s0", "early s0"]
    (verdict,) = comparison.verdicts
    assert verdict.kind == "undecided" and "1 seed pair" in verdict.reason


def test_same_curriculum_under_two_names_gives_identical_results(tmp_path):
    from curriculum_cli.training.loop import train
    from tests.helpers import named_curriculum, tiny_run_config

    runs = []
    for name in ("a", "b"):
        for seed in (0, 1, 2):
            run_dir = tmp_path / f"{name}-s{seed}"
            train(tiny_run_config(named_curriculum(name, 5, 5), seed=seed, val_every=5), run_dir)
            runs.append(run_dir)
    comparison = compare_runs(runs)
    (verdict,) = comparison.verdicts
    assert verdict.kind == "identical" and verdict.n_pairs == 3
    assert "gave identical residue_accuracy_hard" in verdict.sentence


def test_what_else_differs_between_the_arms_is_listed(grouped):
    confounds = " | ".join(grouped.confounds)
    # late switches the losses on at step 20, early at 10: data of steps 10-19 differ
    assert "data at nominal steps 10-19: late lengths 6-8" in confounds
    assert "spectrum loss exposure (sum of weight x nominal steps as trained, mean over seeds): " \
        "late 4; early 6 (+50%)" in confounds  # fmt: skip


def test_steps_to_target_counts_seeds_that_never_reached_it(ab_runs):
    comparison = compare_runs(_all(ab_runs), target=0.0)
    assert comparison.censored["late"]["n_reached"] == 2
    never = compare_runs(_all(ab_runs), target=1.0)
    assert never.censored["late"]["text"].startswith("0 of 2 reached")


def test_at_is_nominal_and_maps_through_the_scale(scaled_run):
    comparison = compare_runs([scaled_run], at=1000)  # 1000 * 0.02 = step 20
    facts = comparison.runs.iloc[0]
    assert facts["step"] == 20 and facts["scale"] == 0.02
    assert facts["spectrum_introduced"] == 1000  # scaled 20, shown nominal
    assert compare_runs([scaled_run]).at_nominal == 2000  # default: the nominal end
    assert compare_runs([scaled_run]).runs.iloc[0]["step"] == 40


def test_runs_that_differ_in_scale_are_flagged(ab_runs, scaled_run):
    comparison = compare_runs([ab_runs["late"][0], scaled_run], at=20)
    assert "scale: late 1.0; scaled 0.02" in comparison.confounds


def test_run_shorter_than_step_is_flagged(ab_runs, tmp_path):
    from curriculum_cli.training.loop import train
    from tests.helpers import named_curriculum, tiny_run_config

    short = tmp_path / "short"
    train(tiny_run_config(named_curriculum("late", 20, 20)), short, max_steps=20)
    comparison = compare_runs([short, ab_runs["late"][1]], at=40)
    warnings = " ".join(comparison.warnings)
    assert "the run is stopped at step 20" in warnings
    assert "ends at step 20 (nominal 20), before --at 40" in warnings
    assert comparison.runs.set_index("seed").loc[0, "step"] == 20


def _copy(run_dir, tmp_path):
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    return copy


def test_truncated_last_line_is_tolerated_with_a_warning(ab_runs, tmp_path):
    run = _copy(ab_runs["late"][0], tmp_path)
    with open(run / METRICS_FILE, "a") as handle:
        handle.write('{"event": "val", "step": 41, "spl')
    comparison = compare_runs([run])
    assert any("truncated" in warning for warning in comparison.warnings)
    assert comparison.runs.iloc[0]["step"] == 40


def _edit_config(run, **changes):
    """Rewrite run.json's config: a value of None removes the key."""
    data = json.loads((run / "run.json").read_text())
    for key, value in changes.items():
        if value is None:
            del data["config"][key]
        else:
            data["config"][key] = value
    (run / "run.json").write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda run: (run / METRICS_FILE).write_text("garbage\n" * 3), "line 1 is not a metrics"),
        (lambda run: (run / METRICS_FILE).unlink(), "missing metrics file"),
        (
            lambda run: (run / METRICS_FILE).write_text('{"event": "val", "step": "x"}\n' * 2),
            "'step' must be an integer",
        ),
        (lambda run: (run / METRICS_FILE).write_text(""), "no validation records"),
        (lambda run: (run / "run.json").write_text("{oops"), "corrupt run.json"),
        (lambda run: (run / "run.json").write_text("{}"), "not a pepcurr run"),
        (lambda run: _edit_config(run, scale=None), r"config: scale: required field is missing"),
        (lambda run: _edit_config(run, batch_size="32"), r"config: batch_size: .*got '32'"),
        (lambda run: _edit_config(run, bogus=1), r"config: bogus: unknown key"),
    ],
)
def test_corrupt_runs_are_clear_errors(ab_runs, tmp_path, damage, message):
    run = _copy(ab_runs["late"][0], tmp_path)
    damage(run)
    with pytest.raises(RunError, match=message):
        compare_runs([run])


def test_bad_options_are_clear_errors(ab_runs, tmp_path):
    run = ab_runs["late"][0]
    with pytest.raises(PepcurrError, match="unknown --metric 'accuracy'; choose one of"):
        compare_runs([run], metric="accuracy")
    with pytest.raises(PepcurrError, match="--at must be a step >= 0"):
        compare_runs([run], at=-1)
    with pytest.raises(RunError, match="no such run directory"):
        compare_runs([tmp_path / "nothing"])


def _final(run_dir, event: str, column: str, split: str | None = None) -> float:
    """The last logged value of ``column`` (read from the file, not through compare)."""
    frame = _val(run_dir, split) if split else _events(run_dir, event)
    return float(frame[column].iloc[-1])


def _events(run_dir, event: str) -> pd.DataFrame:
    lines = (run_dir / METRICS_FILE).read_text().splitlines()
    frame = pd.DataFrame.from_records([json.loads(line) for line in lines])
    return frame[frame["event"] == event]


def test_table_marks_the_better_value_of_each_scored_row(ab_runs, grouped):
    accuracy = {g: sum(_final(r, "val", "token_accuracy", "val_hard") for r in runs) / 2
                for g, runs in ab_runs.items()}  # fmt: skip
    # train CE smoothed over the last 2% of 40 steps: the step-40 record alone
    ce = {g: sum(_final(r, "train", "ce") for r in runs) / 2 for g, runs in ab_runs.items()}
    assert accuracy["late"] != accuracy["early"] and ce["late"] != ce["early"]
    assert grouped.best_columns("token_accuracy_hard") == [max(accuracy, key=accuracy.get)]
    assert grouped.best_columns("train_ce") == [min(ce, key=ce.get)]
    assert grouped.best_columns("spectrum_introduced") == []  # a fact, not a score
    console = Console(file=io.StringIO(), width=140, record=True)
    render_comparison(console, grouped)
    text = console.export_text()
    assert "late (n=2)" in text and "early (n=2)" in text
    assert "val residue accuracy, hard" in text and " ± " in text
    assert "What else differs between the arms:" in text
    assert grouped.verdict.split(":")[0] in text.replace("\n", " ")


def test_json_output_holds_rows_runs_and_difference(ab_runs, grouped):
    data = json.loads(comparison_json(grouped))
    assert data["columns"] == ["late", "early"] and data["grouped"] is True
    rows = {row["key"]: row for row in data["rows"]}
    late = [_final(run, "val", "token_accuracy", "val_hard") for run in ab_runs["late"]]
    early = [_final(run, "val", "token_accuracy", "val_hard") for run in ab_runs["early"]]
    assert rows["token_accuracy_hard"]["values"]["late"] == pytest.approx(sum(late) / 2)
    assert rows["token_accuracy_hard"]["sd"]["early"] == pytest.approx(
        abs(early[0] - early[1]) / math.sqrt(2)
    )
    assert len(data["runs"]) == 4 and data["sentence"] == grouped.verdict
    assert data["verdict"] == "undecided" and "2 seed pairs" in data["reason"]
    assert data["test"].startswith("paired") and data["winner"] is None
    assert data["comparisons"][0]["kind"] == "undecided"
    assert data["steps_to_target"]["late"]["n"] == 2


def test_csv_output_is_one_line_per_row_with_sd_columns(grouped):
    frame = pd.read_csv(io.StringIO(comparison_csv(grouped)))
    assert list(frame.columns) == ["key", "label", "better", "late", "late sd", "early", "early sd"]
    assert list(frame["key"]) == [row.key for row in grouped.rows]
    row = frame.set_index("key").loc["val_ce_hard"]
    assert float(row["early"]) == pytest.approx(grouped.mean.loc["val_ce_hard", "early"])


def test_markdown_output_is_a_table_with_the_better_value_in_bold(grouped):
    text = comparison_markdown(grouped)
    lines = text.splitlines()
    assert lines[2] == "| | late (n=2) | early (n=2) |"
    assert all(line.count("|") == 4 for line in lines[2 : 3 + len(grouped.rows)])
    assert "**" in text and grouped.verdict in text


def test_a_gated_run_reports_the_step_its_gates_opened(tmp_path):
    curriculum = gated_curriculum(spectrum_at_least=0.0, spectrum_latest=30)
    train(tiny_run_config(curriculum, val_every=7), tmp_path / "run")
    starts = {r["stage_index"]: r["step"] for r in read_run(tmp_path / "run").events("stage")
              .to_dict(orient="records")}  # fmt: skip
    assert starts[1] == 7  # the first validation from the earliest start (5)
    assert starts[1] != curriculum.introductions()["spectrum"]
    facts = compare_runs([tmp_path / "run"]).runs.iloc[0]
    assert facts["spectrum_introduced"] == starts[1]
    assert facts["precursor_introduced"] == starts[2]


def test_rescore_scores_final_checkpoints_per_spectrum_paired_and_reproduces_the_log(
    ab_runs, tmp_path, monkeypatch
):
    runs = [_copy(run, tmp_path) for run in _all(ab_runs)]
    comparison = compare_runs(runs, rescore=40)
    found = comparison.rescore
    own = {}
    for run in runs:
        logged = _val(run, "val_hard")["residue_accuracy"].iloc[-1]  # the final validation
        own[run.name] = found.values[str(run)]["own"]
        assert own[run.name] == pytest.approx(logged, abs=1e-12)
        assert found.steps[str(run)] == 40 and (run / "rescore-val_hard-40.json").is_file()
    assert list(comparison.runs["rescored"]) == [found.values[str(r)]["fixed"] for r in runs]
    (boot,) = found.own
    assert (boot.arm, boot.n_spectra, boot.n_pairs) == ("early", 16, 2)
    differences = [own[f"early-s{s}"] - own[f"late-s{s}"] for s in (0, 1)]
    assert boot.paired_sd == pytest.approx(abs(differences[0] - differences[1]) / math.sqrt(2))
    assert found.fixed[0].n_spectra == 40
    (verdict,) = comparison.rescore_verdicts
    assert verdict.kind == "undecided" and "40 fixed spectra" in verdict.metric
    assert "re-scored" in comparison_markdown(comparison)

    import curriculum_cli.training.validation as validation

    def no_scoring(*_):
        raise AssertionError("scored again")

    monkeypatch.setattr(validation, "accuracy_per_spectrum", no_scoring)
    again = compare_runs(runs, rescore=40)  # the files beside the runs are reused
    assert again.rescore.values == found.values


def test_rescore_refuses_what_it_cannot_score(ab_runs):
    runs = _all(ab_runs)
    with pytest.raises(PepcurrError, match="scores each run's final checkpoint .* before its end"):
        compare_runs(runs, at=20, rescore=40)
    with pytest.raises(PepcurrError, match="re-scores teacher-forced accuracies"):
        compare_runs(runs, metric="peptide_recall_hard", rescore=40)


def test_paired_bootstrap_matches_the_exact_bootstrap_distribution():
    """Three spectra: all 27 resamples are equally likely, so the bootstrap distribution of
    two pairs' differences can be enumerated (the second method); the sampled figures must
    agree with it."""
    import itertools

    from curriculum_cli.analysis.rescore import paired_bootstrap

    residues = [4, 6, 5]
    correct = (([4, 3, 1], [2, 3, 4]), ([3, 5, 2], [3, 2, 2]))  # per pair: arm, baseline
    pairs = [[{"residues": residues, "residues_correct": counts} for counts in pair]
             for pair in correct]  # fmt: skip
    observed = [(sum(arm) - sum(base)) / 15 for arm, base in correct]
    draws = []  # per resample, each pair's difference
    for picks in itertools.product(range(3), repeat=3):
        total = sum(residues[i] for i in picks)
        draws.append([sum(arm[i] - base[i] for i in picks) / total for arm, base in correct])
    per_pair = [statistics.pvariance([d[j] for d in draws]) for j in (0, 1)]
    means = [sum(d) / 2 for d in draws]
    between = sum(statistics.variance([d[j] - observed[j] for j in (0, 1)]) for d in draws) / 27
    boot = paired_bootstrap("B", pairs, "residue_accuracy_hard")
    assert boot.sd_pair == pytest.approx(math.sqrt(sum(per_pair) / 2), rel=0.05)  # ~1.6% sd
    assert boot.se_mean == pytest.approx(statistics.pstdev(means), rel=0.05)
    assert boot.sd_between == pytest.approx(math.sqrt(between), rel=0.05)
    assert boot.paired_sd == pytest.approx(abs(observed[0] - observed[1]) / math.sqrt(2))


def test_confounds_name_the_run_length_and_the_learning_rate_at_the_compare_step(tmp_path):
    dirs = [fabricate_run(tmp_path / f"{name}-s0", named_curriculum(name, steps, steps), 0,
                          {0: 0.1, 150: 0.5})
            for name, steps in (("short", 100), ("long", 200))]  # fmt: skip
    lines = compare_runs(dirs, at=150).confounds
    assert "total steps: short 200 (nominal 200); long 400 (nominal 400); the learning-rate " \
        "schedule follows each run's length" in lines  # fmt: skip
    # warm-up 10 and 20 steps, then cosine to 0.1 of lr 0.002 by hand: at step 150
    # short: 0.1 + 0.9 * (1 + cos(pi * 140/190)) / 2 = 0.2452; long: 130/380 -> 0.7642
    assert "learning rate at nominal step 150: short 0.00049 (0.245 of its peak); long " \
        "0.00153 (0.764 of its peak)" in lines  # fmt: skip


def test_confounds_name_the_decoding_limit_of_arms_with_longer_middle_stages(tmp_path):
    from curriculum_cli.analysis.confounds import data_text
    from curriculum_cli.curriculum.schema import Curriculum, Stage

    def three(name, middle_max):
        data = dict(min_length=6, max_length=8)
        return Curriculum(name=name, stages=[Stage(name="a", steps=10, **data),
                                             Stage(name="b", steps=10, min_length=6,
                                                   max_length=middle_max),
                                             Stage(name="c", steps=20, **data)])  # fmt: skip

    dirs = [fabricate_run(tmp_path / f"{name}-s0", three(name, top), 0, {0: 0.1, 40: 0.5})
            for name, top in (("short", 8), ("long", 12))]  # fmt: skip
    lines = " | ".join(compare_runs(dirs).confounds)
    assert "decoded peptides have at most the curriculum's longest peptide's residues: short 8; " \
        "long 12" in lines  # fmt: skip
    assert "validation sets differ: val_easy" not in lines  # first and last stages agree
    mixed = Stage(name="m", steps=1, min_length=6, max_length=8, real_fraction=0.5)
    assert data_text(mixed).endswith(", real fraction 0.5")


def test_confounds_of_gated_arms_are_read_from_their_logs(tmp_path):
    def stages(*starts):
        return tuple({"event": "stage", "step": step, "stage_index": index,
                      "w_spectrum": [0, 0.2, 0.2][index], "w_precursor": [0, 0, 0.02][index]}
                     for index, step in enumerate(starts))  # fmt: skip

    dirs = []
    for name, threshold, starts in (("slow", 0.9, [(0, 7, 15), (0, 9, 17)]),
                                    ("fast", 0.1, [(0, 5, 11), (0, 5, 11)])):  # fmt: skip
        curriculum = gated_curriculum(threshold).model_copy(update={"name": name})
        for seed, seed_starts in enumerate(starts):
            dirs.append(fabricate_run(tmp_path / f"{name}-s{seed}", curriculum, seed,
                                      {0: 0.1, 40: 0.5}, stages(*seed_starts)))  # fmt: skip
    lines = compare_runs(dirs).confounds
    assert "spectrum loss came on at (nominal, as logged; median and range over seeds): slow 8 " \
        "(7-9); fast 5" in lines  # fmt: skip
    # as trained, to step 40: slow 0.2 * (33 + 31) / 2 = 6.4, fast 0.2 * 35 = 7
    assert "spectrum loss exposure (sum of weight x nominal steps as trained, mean over seeds): " \
        "slow 6; fast 7 (+9%)" in lines  # fmt: skip


def test_a_table_written_to_a_file_keeps_long_arm_names_whole(tmp_path):
    names = ("realistic-current-long", "realistic-revised-long")
    dirs = [fabricate_run(tmp_path / f"{name}-s{seed}", named_curriculum(name, 100, 100), seed,
                          {0: 0.1, 100: 0.5 + seed / 100})
            for name in names for seed in (0, 1)]  # fmt: skip
    comparison = compare_runs(dirs)
    piped = Console(file=io.StringIO(), width=80)  # not a terminal: a log file or a pipe
    render_comparison(piped, comparison)
    lines = piped.file.getvalue().splitlines()
    header = next(line for line in lines if names[0] in line)  # "(n=2)" on the line below
    assert all(name in header for name in names) and "…" not in "".join(lines)
    terminal = Console(file=io.StringIO(), width=80, force_terminal=True, record=True)
    render_comparison(terminal, comparison)  # a terminal keeps its width: wider would wrap
    header = next(line for line in terminal.export_text().splitlines() if "…" in line)
    assert len(header) <= 80 and names[0] not in header
