"""Hostile inputs to every command: one line on stderr, exit 2, no traceback, text as typed.

A table of command lines (each with the files it needs, made once per module in
``hostile``) and a fragment the one error line must hold; then the few hostile
inputs that are not errors but must warn (or print a user's text unmangled). The
files are tiny: subsets of ``data/massivekb_ms2pip_250.mgf``, spectra built from
pyteomics masses, vocabulary files, and one finished run of 4 steps.
"""

from __future__ import annotations

import json

import pytest
import typer
from pyteomics import mass
from typer.testing import CliRunner

from curriculum_cli.cli.app import app
from tests.helpers import HCD_MGF, tiny_run_config, two_stage_curriculum

runner = CliRunner()


def _spectra(text: str, n: int) -> str:
    """The first ``n`` spectra of an MGF text."""
    blocks = text.split("END IONS\n")
    return "END IONS\n".join(blocks[:n]) + "END IONS\n"


def _synthetic_spectrum(title: str, peptide: str, charge: int) -> str:
    """A spectrum holding exactly ``peptide``'s b and y ions at charges 1 and 2 (pyteomics
    masses): every peak explained, no noise, no 13C peak."""
    peaks = sorted(
        mass.fast_mass(peptide[:i] if kind == "b" else peptide[i:], ion_type=kind, charge=z)
        for i in range(1, len(peptide))
        for kind in "by"
        for z in (1, 2)
    )
    lines = [f"{mz:.5f} {100 + 10 * (i % 7)}" for i, mz in enumerate(peaks) if 50 < mz < 2500]
    precursor = mass.calculate_mass(sequence=peptide, ion_type="M", charge=charge)
    return (f"BEGIN IONS\nTITLE={title}\nPEPMASS={precursor}\nCHARGE={charge}+\n"
            f"SEQ={peptide}\n" + "\n".join(lines) + "\nEND IONS\n")  # fmt: skip


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, str]:
    """The files of the table, by name, and a tiny finished run (``run``)."""
    from curriculum_cli.training.loop import train

    root = tmp_path_factory.mktemp("hostile")
    text = HCD_MGF.read_text()
    files = {
        "one.mgf": _spectra(text, 1),  # one 4+ spectrum
        "three.mgf": _spectra(text, 3),
        "nine.mgf": _spectra(text, 9),
        "ten.mgf": _spectra(text, 10),
        "ten_alike.mgf": _spectra(text, 1) * 10,  # one backbone: no two halves
        "noseq.mgf": "".join(
            line
            for line in _spectra(text, 5).splitlines(keepends=True)
            if not line.startswith("SEQ=")
        ),
        "truncated.mgf": _spectra(text, 2)[:-200],
        "empty.mgf": "",
        "wrong_seq.mgf": "".join(
            line if not line.startswith("SEQ=") else "SEQ=GGGGGGGGK\n"
            for line in _spectra(text, 10).splitlines(keepends=True)
        ),
        "window.mgf": "BEGIN IONS\nTITLE=win\nPEPMASS=500.3\nCHARGE=2+\nSEQ=PEPTIDEK\n"
        "10.0 1\n20.0 2\nEND IONS\n",
        "long60.mgf": _synthetic_spectrum("long", ("PEPTIDEKLAGVESTNRQFWY" * 3)[:60], 4),
        "perfect.mgf": "".join(
            _synthetic_spectrum(f"syn{i}", ("PEPTIDEKLAGVESTNRQFWY" * 2)[: 10 + i], 3)
            for i in range(11)
        ),
        "empty.json": "",
        "binary.json": b"\x89PNG\r\n\x1a\n\x00\x00binary",
        "dup.yaml": "residues:\n  S[Phospho]: 166.998\n  S[Phospho]: 200.0\nbase: standard\n",
        "dup.json": '{"base": "standard",\n "residues": {\n  "S[Phospho]": 166.998,\n'
        '  "S[Phospho]": 200.0}}',
        "huge.yaml": "base: standard\nresidues:\n  S[Heavy]: 1.0e+300\n",
        "tiny.yaml": "base: standard\nresidues:\n  S[Light]: 1.0e-7\n",
        "big_nterm.yaml": "base: standard\nresidues:\n  '[Big]-': 5000\n",
        "two_spellings.yaml": "base: standard\nresidues:\n  C:\n  C[Carbamidomethyl]:\n",
        "unquoted.yaml": "base: standard\nresidues:\n  [Acetyl]-: 42.010565\n",
        "psms.tsv": "psm_id\tpeptide\n",
    }
    paths = {"tmp": str(root)}
    for name, content in files.items():
        path = root / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
        paths[name.replace(".", "_")] = str(path)
    (root / "dir").mkdir()
    paths["dir"] = str(root / "dir")
    run = root / "run"
    train(tiny_run_config(two_stage_curriculum(2, 2)), run)
    paths["run"] = str(run)
    return paths


def one_error_line(result) -> str:
    """The one line on stderr of a command refused with exit 2, printed as typed."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "🏭" not in result.output and "😄" not in result.output  # no emoji codes read
    return lines[0]


# (command line with {file} placeholders, fragment of the error line, module it needs)
CASES = [
    # parse errors: one line too, not Typer's box
    ("--nosuch", "No such option: --nosuch; see 'pepcurr --help'"),
    ("nosuch", "No such command 'nosuch'"),
    ("spectra -c current --step 0 -o {tmp}/x.mgf -n 0", "Invalid value for '--n' / '-n'"),
    ("compare {run} --at -1", "Invalid value for '--at'"),
    # generate, validate, plot-schedule
    ("generate current -o {dir}", "is a directory; give a file name"),
    ("generate phased --spectrum-at 10 --precursor-at 20 --total 1000000000000",
     "less than or equal to 100000000"),
    ("validate {binary_json}", "not a text file"),
    ("validate {empty_json}", "file is empty"),
    ("plot-schedule current -o {dir}", "is a directory; give a file name"),
    ("plot-schedule current -o {tmp}/schedule.txt", "cannot write a plot as .txt"),
    # spectra: bounds before any work, the stage's bounds, a step inside the curriculum
    ("spectra -c current --step 0 -o {tmp}/x.mgf -n 100000000000",
     "less than or equal to 100000"),
    ("spectra -c current --step 100000 -o {tmp}/x.mgf", "current has steps 0-99,999"),
    ("spectra -c current --step 0 -o {tmp}/x.mgf -n 5 --noise-peaks 100000000",
     "noise_peaks: Input should be less than or equal to 500"),
    ("spectra -c current --step 0 -o {tmp}/x.mgf -n 5 --mass-error-ppm 1e300",
     "mass_error_ppm: Input should be less than or equal to"),
    ("spectra -c current --step 0 -o {tmp}/x.mgf -n 5 --seed -1", "Invalid value for '--seed'"),
    ("spectra -c :factory: --step 0 -o {tmp}/x.mgf -n 5", ":factory:: no such file"),
    ("spectra -c current --step 0 -o {dir} -n 5", "is a directory; give a file name"),
    # vocabulary files: duplicates named with their lines, plausible masses
    ("inspect {one_mgf} --vocab {dup_yaml}", "S[Phospho]: given 2 times, on lines 2, 3"),
    ("inspect {one_mgf} --vocab {dup_json}", "S[Phospho]: given 2 times, on lines 3, 4"),
    ("inspect {one_mgf} --vocab {two_spellings_yaml}",
     "C[Carbamidomethyl]: the same token as C (lines 3 and 4)"),
    ("inspect {one_mgf} --vocab {huge_yaml}", "full mass must be from 30 to 3000 Da"),
    ("inspect {one_mgf} --vocab {tiny_yaml}", "from 30 to 3000 Da (docs/vocabulary.md), got 1e-07"),
    ("inspect {one_mgf} --vocab {big_nterm_yaml}", "mass delta must be from -500 to 500 Da"),
    ("inspect {one_mgf} --vocab {unquoted_yaml}", "quote a token that starts with '['"),
    ("train -c current --vocab {huge_yaml} -o {tmp}/r", "full mass must be"),
    # inspect
    ("inspect {dir}", "is a directory, expected an MGF file"),
    ("inspect {truncated_mgf}", "use --skip-invalid"),  # inspect has it
    ("inspect {one_mgf} --tolerance 1e300", "less than or equal to 1"),
    # calibrate: a minimum, files named, no option it lacks
    ("calibrate {one_mgf} -o {tmp}/c.json", "1 used (charge 4+ 1); calibrate needs at least 10"),
    ("calibrate {long60_mgf} -o {tmp}/c.json",
     "left out: 1 of fewer than 6 or more than 40 residues"),
    ("calibrate {truncated_mgf} -o {tmp}/c.json", "fix or remove it (pepcurr inspect"),
    ("calibrate {ten_mgf} {ten_mgf} -o {tmp}/c.json", "the same file is given twice"),
    ("calibrate {window_mgf} -o {tmp}/c.json",
     "window.mgf: spectrum 'win': no peak inside 50-2500 m/z"),
    ("calibrate {wrong_seq_mgf} -o {tmp}/c.json",
     "wrong_seq.mgf: none of the 10 spectra has 3 b/y ions"),
    ("calibrate {perfect_mgf} -o {tmp}/c.json", "perfect.mgf: no spectrum has a peak"),
    ("calibrate {ten_mgf} -o {dir}", "is a directory; give a file name"),
    # realism: a minimum of real spectra, a maximum of synthetic ones
    ("realism {three_mgf} -c current --stage stage_1_foundation -n 20",
     "3 annotated spectra with peaks; realism needs at least 10"),
    ("realism {nine_mgf} -c current --stage stage_1_foundation -n 20", "realism needs at least"),
    ("realism {ten_mgf} -c current -n 20001", "at most 20,000 synthetic spectra"),
    ("realism {truncated_mgf} -c current", "fix or remove it (pepcurr inspect"),
    ("realism {ten_mgf} {ten_mgf} -c current", "the same file is given twice"),
    # split, annotate
    ("split {one_mgf} -o {one_mgf}", "is a file; --out must be a directory"),
    ("split {one_mgf} -o {tmp}/s --val 1", "--val must be a fraction in [0, 1)"),
    ("annotate {one_mgf} --psms {psms_tsv} -o {dir}", "is a directory; give a file name"),
    ("annotate {one_mgf} --psms {psms_tsv} -o {dir} --force", "is a directory; give a file name"),
    ("annotate {one_mgf} --psms {psms_tsv} -o {tmp}/a.mgf --fdr 0", "--fdr must be in (0, 1]"),
    # evaluate, predict: checked before decoding
    ("evaluate {run} --mgf {noseq_mgf}", "no spectrum has a SEQ, so there is nothing to score"),
    ("evaluate {run} --mgf {one_mgf} --predictions {dir}", "is a directory; give a file name"),
    ("evaluate {run} --mgf {one_mgf} --predictions {tmp}/p.csv --mztab {tmp}/p.csv",
     "given for both --predictions and --mztab"),
    ("evaluate {run} --mgf {one_mgf} --beam-size 1000000000", "less than or equal to 100"),
    ("evaluate {one_mgf} --mgf {one_mgf}", "neither a run directory nor a checkpoint in one"),
    ("predict {run} --mgf {noseq_mgf} --mztab {run}/last.pt", "is an input"),
    ("predict {run} --mgf {noseq_mgf} --mztab {noseq_mgf}", "is an input"),
    # compare, export-tensorboard
    ("compare {run} --rescore 1000000000", "less than or equal to 100000"),
    ("compare {run} --target 5", "--target is the fraction"),
    ("compare {run} --plot {dir}", "is a directory; give a file name"),
    ("export-tensorboard {one_mgf}", "not a run directory", "tensorboard"),
    ("export-tensorboard {run} --out {one_mgf}", "is a file; give a directory", "tensorboard"),
    # train, ab
    ("train -c current -o {one_mgf}", "is a file; give a run directory"),
    ("train -c current --batch-size 100000000 -o {tmp}/r", "less than or equal to 16384"),
    ("train -c current --val-size 1000000000 -o {tmp}/r", "less than or equal to 100000"),
    ("train -c current --scale 1e300 -o {tmp}/r", "a stage lasts at most 100,000,000"),
    ("train -c current --threads 100000 -o {tmp}/r", "less than or equal to 256"),
    ("train -c current --seed 99999999999999999999999 -o {tmp}/r", "Invalid value for '--seed'"),
    ("train -c current --model {tmp}/models/raises.py:factory -o {tmp}/r",
     "models/raises.py:factory: "),  # read as an emoji code before
    ("ab current revised --plan --seeds 1000000", "less than or equal to 1000"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_a_hostile_input_is_one_line_and_exit_2(hostile, case):
    command, fragment, *needs = case
    for module in needs:
        pytest.importorskip(module)
    line = one_error_line(runner.invoke(app, command.format(**hostile).split()))
    assert fragment in line


def test_an_invalid_spectrum_is_not_told_to_use_an_option_the_command_lacks(hostile):
    for command in ("calibrate {truncated_mgf} -o {tmp}/c.json",
                    "realism {truncated_mgf} -c current"):  # fmt: skip
        line = one_error_line(runner.invoke(app, command.format(**hostile).split()))
        assert "--skip-invalid to skip" not in line


def test_bounds_that_are_open_are_not_shown_as_closed_in_help():
    command = typer.main.get_command(app)
    fdr = next(p for p in command.commands["annotate"].params if p.name == "fdr")
    lr = next(p for p in command.commands["train"].params if p.name == "lr")
    # "0.0<=x<=1.0" for a q-value that must be above 0; "x>=0" for a rate that must be too
    assert (fdr.min, fdr.max, lr.min) == (None, None, None)


def test_user_text_is_printed_as_typed_not_as_markup_or_emoji(hostile):
    odd = f"{hostile['tmp']}/[red]spectra:smile:.mgf"
    result = runner.invoke(app, ["spectra", "-c", "current", "--step", "0", "-o", odd, "-n", "2"])
    assert result.exit_code == 0, result.output
    assert f"wrote 2 spectra to {odd}" in result.stdout


def test_a_plot_without_a_suffix_is_reported_under_the_name_written(hostile):
    result = runner.invoke(app, ["compare", hostile["run"], "--plot", f"{hostile['tmp']}/curves"])
    assert result.exit_code == 0, result.output
    assert f"wrote {hostile['tmp']}/curves.png" in result.stderr


def test_evaluate_warns_of_targets_longer_than_the_model_decodes(hostile):
    result = runner.invoke(app, ["evaluate", hostile["run"], "--mgf", hostile["long60_mgf"],
                                 "--beam-size", "1", "--max-length", "100"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "--max-length 100: the model decodes at most 40 tokens" in result.stdout
    assert ("1 of the 1 annotated spectra have peptides longer than the 40 tokens decoded"
            in result.stdout)  # fmt: skip
    assert "at most 40 residues" in result.stdout  # the decoding's own limit, as decoded


def test_inspect_does_not_call_a_peptide_no_stage_takes_a_training_target(hostile):
    result = runner.invoke(app, ["inspect", hostile["long60_mgf"]])
    assert result.exit_code == 0, result.output
    assert "every peptide is a training target" not in result.stdout
    assert "1 peptides of fewer than 6 or more than 40 residues" in result.stdout
    result = runner.invoke(app, ["inspect", hostile["ten_mgf"], "--json"])
    assert json.loads(result.stdout)["n_outside_lengths"] == 0


def test_realism_on_the_fewest_spectra_warns_of_nothing_and_leaves_out_halves(hostile):
    result = runner.invoke(app, ["realism", hostile["ten_alike_mgf"], "-c", "current", "--stage",
                                 "stage_1_foundation", "-n", "20", "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.stderr  # scikit-learn's, on too few spectra per fold
    data = json.loads(result.stdout)
    assert data["n_real"] == 10 and data["halves_n"] == [10, 0] and data["halves"] == {}
