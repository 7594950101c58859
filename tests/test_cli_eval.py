"""``pepcurr evaluate``, ``compare`` and ``ab`` end to end, and ``run_ab``'s reuse and resume."""

from __future__ import annotations

import io
import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from curriculum_cli.analysis.ab import AbSpec, run_ab
from curriculum_cli.cli.app import app
from curriculum_cli.curriculum.files import save_curriculum
from curriculum_cli.errors import RunError
from curriculum_cli.training.runlog import TIMING_FIELDS
from tests.helpers import (
    AB_OPTIONS,
    SAMPLE_MGF,
    TEST_MODEL_FACTORY,
    named_curriculum,
    one_error_line,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def invoke(*arguments):
    return runner.invoke(app, [str(argument) for argument in arguments])


@pytest.fixture
def small_mgf(tmp_path):
    """The first 6 spectra of the Casanovo sample file (tests/data)."""
    text = SAMPLE_MGF.read_text()
    blocks = text.split("END IONS")[:6]
    path = tmp_path / "six.mgf"
    path.write_text("END IONS".join(blocks) + "END IONS\n")
    return path


def test_evaluate_decodes_real_spectra_and_writes_predictions(ab_runs, small_mgf, tmp_path):
    out = tmp_path / "predictions.csv"
    result = invoke("evaluate", ab_runs["late"][0], "--mgf", small_mgf, "--predictions", out,
                    "--beam-size", "2", "--max-length", "12")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "AA precision" in result.stdout and "6 of 6 spectra annotated" in result.stdout
    frame = pd.read_csv(out)
    assert len(frame) == 6
    assert list(frame.columns) == ["title", "charge", "precursor_mz", "true_peptide",
                                   "predicted_peptide", "score", "precursor_error_ppm",
                                   "isotope", "fits_precursor"]  # fmt: skip
    assert frame["true_peptide"].iloc[0] == "IAHYNKR"
    assert frame["predicted_peptide"].str.len().between(1, 12 * 20).all()


def test_evaluate_reads_a_checkpoint_path_too(ab_runs, small_mgf):
    result = invoke("evaluate", ab_runs["late"][0] / "last.pt", "--mgf", small_mgf,
                    "--beam-size", "1", "--max-length", "8", "--no-filter")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "precursor filter off" in result.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["evaluate", "{tmp}/nothing", "--mgf", "{mgf}"], "no such run directory or checkpoint"),
        (["evaluate", "{run}", "--mgf", "{tmp}/none.mgf"], "none.mgf: no such file"),
        (["evaluate", "{run}", "--mgf", "{mgf}", "--predictions", "{tmp}/no/p.csv"],
         "its directory does not exist"),
        (["compare", "{tmp}/nothing"], "no such run directory"),
        (["compare", "{run}", "--metric", "nope"], "unknown --metric 'nope'"),
        (["compare", "{run}", "--plot", "{tmp}/no/curves.png"], "no does not exist"),
        (["compare", "{run}", "--margin", "-0.01"], "--margin must be a number > 0"),
        (["compare", "{run}", "--margin", "nan"], "--margin must be a number > 0"),
        (["compare", "{run}", "--rescore", "100", "--at", "20"], "before its end (step 40)"),
        (["compare", "{run}", "--rescore", "100", "--metric", "val_ce_hard"],
         "--rescore re-scores teacher-forced accuracies"),
        (["ab", "revised", "current", "--margin", "0", "--plan"], "--margin must be a number > 0"),
        (["ab", "revised"], "an A/B needs at least two curricula"),
        (["ab", "revised", "{tmp}/missing.json"], "missing.json: no such file"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(ab_runs, small_mgf, tmp_path, arguments, message):
    values = {"tmp": tmp_path, "mgf": small_mgf, "run": ab_runs["late"][0]}
    line = one_error_line(invoke(*[argument.format(**values) for argument in arguments]))
    assert message in line


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        ("foo", "unknown --metric 'foo'; choose one of: residue_accuracy_easy"),
        ("residue_accuracy_real", "--metric residue_accuracy_real: no run has a val_real set"),
    ],
)
def test_ab_checks_its_metric_before_it_records_the_question_or_trains(
    arm_files, tmp_path, metric, message
):
    out = tmp_path / "ab"
    words = AB_OPTIONS.command_words()
    assert message in one_error_line(invoke("ab", *arm_files, "--out", out, "--metric", metric,
                                            *words))  # fmt: skip
    assert not out.exists()  # nothing trained, and no ab.json to hold the wrong question
    planned = invoke("ab", *arm_files, "--out", out, *words, "--plan")
    assert planned.exit_code == 0, planned.output


def test_compare_prints_each_format(ab_runs, tmp_path):
    runs = [run for group in ab_runs.values() for run in group]
    table = invoke("compare", *runs, "--at", "30", "--plot", tmp_path / "curves.png")
    assert table.exit_code == 0, table.output
    assert "Runs at nominal step 30" in table.stdout and "late (n=2)" in table.stdout
    assert (tmp_path / "curves.png").read_bytes().startswith(PNG_MAGIC)
    data = json.loads(invoke("compare", *runs, "--format", "json").stdout)
    assert data["columns"] == ["late", "early"] and data["at_nominal_step"] == 40
    csv = pd.read_csv(io.StringIO(invoke("compare", *runs, "-f", "csv").stdout))
    assert "token_accuracy_hard" in set(csv["key"])
    markdown = invoke("compare", *runs, "-f", "markdown").stdout
    assert "| | late (n=2) | early (n=2) |" in markdown


def test_compare_puts_warnings_on_stderr_for_machine_formats(ab_runs):
    result = invoke("compare", ab_runs["late"][0], "--at", "100", "-f", "json")
    assert result.exit_code == 0
    json.loads(result.stdout)
    assert "before --at 100" in result.stderr


def test_ab_reuses_finished_runs_and_compares(ab_runs, arm_files):
    out = ab_runs["late"][0].parent  # the fixture's runs are named <curriculum>-s<seed>
    result = invoke("ab", *arm_files, "--out", out, "--seeds", "2", "--model", TEST_MODEL_FACTORY,
                    "--batch-size", "8", "--lr", "0.002", "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["columns"] == ["late", "early"]
    assert result.stderr.count("finished already, reused") == 4
    assert (out / "curves.png").read_bytes().startswith(PNG_MAGIC)


def test_run_ab_trains_missing_runs_and_resumes_stopped_ones(ab_runs, arm_files, tmp_path):
    from curriculum_cli.training.launch import run_training

    out = tmp_path / "ab"
    late_options = AB_OPTIONS.model_copy(update={"curriculum": str(arm_files[0]), "seed": 0})
    stopped = run_training(out / "late-s0", late_options, max_steps=20)
    assert stopped.status == "stopped"
    result = run_ab(AbSpec(arm_files, out, seeds=1, options=AB_OPTIONS))
    assert result.actions == {str(out / "late-s0"): "resumed", str(out / "early-s0"): "trained"}
    assert set(result.comparison.runs["step"]) == {40}
    # The resumed run equals the fixture's uninterrupted one (same settings, seed 0).
    resumed = result.comparison.runs.set_index("group").loc["late", "token_accuracy_hard"]
    reference = compare_values(ab_runs["late"][0])
    assert resumed == reference
    again = run_ab(AbSpec(arm_files, out, seeds=1, options=AB_OPTIONS))
    assert set(again.actions.values()) == {"reused"}


def compare_values(run_dir) -> float:
    from curriculum_cli.analysis.compare import compare_runs

    return compare_runs([run_dir]).runs.iloc[0]["token_accuracy_hard"]


def test_run_ab_refuses_a_directory_holding_another_run(ab_runs, arm_files, tmp_path):
    out = tmp_path / "ab"
    shutil.copytree(ab_runs["late"][0], out / "late-s0")
    with pytest.raises(RunError, match="holds a run with another lr"):
        options = AB_OPTIONS.model_copy(update={"lr": 1e-3})
        run_ab(AbSpec(arm_files, out, seeds=1, options=options))


def _records(run_dir) -> list[dict]:
    """Metrics records without timing fields and the record marking a resume."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [
        {k: v for k, v in r.items() if k not in TIMING_FIELDS}
        for r in records
        if r["event"] != "resume"
    ]


def test_run_ab_trains_a_shared_prefix_once_and_forks_bit_identically(ab_runs, arm_files, tmp_path):
    import torch

    from curriculum_cli.training.checkpoint import CHECKPOINT_FILE, CKPT_MODEL, load_checkpoint

    out = tmp_path / "ab"
    result = run_ab(AbSpec(arm_files, out, seeds=1, options=AB_OPTIONS))
    # late and early share their first 10 steps (foundation stage); early continues from them
    assert result.actions == {str(out / "late-s0"): "trained",
                              str(out / "early-s0"): "forked at step 10"}  # fmt: skip
    assert result.steps_saved == 10 and result.steps_total == 80
    assert any("10 of 80 steps trained once" in m for m in result.messages)
    for name in ("late", "early"):
        forked, straight = out / f"{name}-s0", ab_runs[name][0]
        assert _records(forked) == _records(straight), name
        a = load_checkpoint(forked / CHECKPOINT_FILE)[CKPT_MODEL]
        b = load_checkpoint(straight / CHECKPOINT_FILE)[CKPT_MODEL]
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_ab_refuses_to_change_its_question_after_planning(ab_runs, arm_files, tmp_path):
    out = tmp_path / "ab"
    shutil.copytree(ab_runs["late"][0].parent, out)
    (out / "ab.json").unlink(missing_ok=True)
    first = invoke("ab", *arm_files, "--out", out, "--model", TEST_MODEL_FACTORY, "--batch-size",
                   "8", "--lr", "0.002", "--metric", "val_ce_hard", "--format", "json")  # fmt: skip
    assert first.exit_code == 0, first.output
    changed = invoke("ab", *arm_files, "--out", out, "--model", TEST_MODEL_FACTORY,
                     "--batch-size", "8", "--lr", "0.002",
                     "--metric", "peptide_recall_hard")  # fmt: skip
    line = one_error_line(changed)
    assert "was planned with metric 'val_ce_hard'" in line
    assert json.loads((out / "ab.json").read_text())["margin"] is None
    margin = invoke("ab", *arm_files, "--out", out, "--model", TEST_MODEL_FACTORY,
                    "--batch-size", "8", "--lr", "0.002", "--metric", "val_ce_hard",
                    "--margin", "0.01", "--plan")  # fmt: skip
    assert "was planned with margin None" in one_error_line(margin)


def test_ab_plan_prints_commands_that_reproduce_ab(tmp_path, monkeypatch):
    import shlex

    import curriculum_cli.analysis.plots

    # The curves figure takes seconds to lay out and is not what this test is about.
    monkeypatch.setattr(curriculum_cli.analysis.plots, "plot_curves", lambda comparison, path: path)

    arms = []
    for name, (first, second) in {"late": (4, 4), "early": (2, 6)}.items():
        arms.append(tmp_path / f"{name}.json")
        save_curriculum(named_curriculum(name, first, second), arms[-1])
    settings = ["--model", TEST_MODEL_FACTORY, "--batch-size", "8", "--lr", "0.002", "--device",
                "cpu", "--val-every", "8", "--grad-every", "4", "--decode-size", "4", "--seeds",
                "1", "--margin", "0.01"]  # fmt: skip
    planned, straight = tmp_path / "planned", tmp_path / "straight"

    plan = invoke("ab", *arms, "--out", planned, *settings, "--plan")
    assert plan.exit_code == 0, plan.output
    assert json.loads((planned / "ab.json").read_text())["margin"] == 0.01  # before training
    commands = plan.stdout.splitlines()
    # the shared prefix once, the run forked from it, then the prefix's own run trained on
    assert "--max-steps" in commands[0] and "late-s0" in commands[0]
    assert f"--fork-from {planned / 'late-s0'}" in commands[1] and "early-s0" in commands[1]
    assert commands[2].endswith("late-s0 --resume") and len(commands) == 3
    for command in commands:
        words = shlex.split(command)
        assert words[:2] == ["pepcurr", "train"]
        ran = invoke(*words[1:], "--quiet")
        assert ran.exit_code == 0, (command, ran.output)

    gathered = invoke("ab", *arms, "--out", planned, *settings, "--format", "json")
    assert gathered.exit_code == 0, gathered.output
    assert gathered.stderr.count("finished already, reused") == 2
    trained = invoke("ab", *arms, "--out", straight, *settings, "--format", "json")
    assert trained.exit_code == 0, trained.output

    def per_seed(result) -> list[dict]:
        runs = json.loads(result.stdout)["runs"]
        return [
            {k: v for k, v in run.items() if k not in ("run", "path", "run_dir")} for run in runs
        ]

    assert per_seed(gathered) == per_seed(trained)
