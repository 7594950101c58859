"""Run settings declared once: the options of train and ab, TrainOptions, and the RunConfig.

Nothing here lists a setting by hand: the tests walk ``RunConfig``'s fields and
``RUN_SETTINGS``, and check that each setting reaches the command line, the
options object and ``run.json`` from its one declaration.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from pydantic import ValidationError
from typer.testing import CliRunner

from curriculum_cli.analysis.ab import PER_RUN_SETTINGS
from curriculum_cli.analysis.evaluation import DecodeSettings
from curriculum_cli.cli import app as cli_app
from curriculum_cli.cli.app import app
from curriculum_cli.training.config import InitFrom, RunConfig
from curriculum_cli.training.resolve import (
    RunInputs,
    build_run_config,
    resolve_run_config,
    resume_conflicts,
)
from curriculum_cli.training.settings import RUN_SETTINGS, TrainOptions

runner = CliRunner()
#: RunConfig fields that no one sets: derived from the settings while resolving them
DERIVED = {"curriculum_source", "architecture"}


def _command(name: str):
    return typer.main.get_command(app).commands[name]


def _options_by_flag(name: str) -> dict[str, list]:
    """Flag -> the parameters of one ``pepcurr`` command that answer to it."""
    found: dict[str, list] = {}
    for param in _command(name).params:
        for flag in param.opts:
            found.setdefault(flag, []).append(param)
    return found


def test_every_run_config_field_is_one_declared_setting_with_one_help_text():
    for name, field in RunConfig.model_fields.items():
        assert field.description, name
        if name in DERIVED:
            assert name not in RUN_SETTINGS
            continue
        setting = RUN_SETTINGS[name]  # declared there, once
        assert field.description == setting.help, name  # run_field(name), not a retyped text
        for key, value in setting.bounds.items():  # and its bounds
            assert any(getattr(bound, key, None) == value for bound in field.metadata), name
    in_run_json = {name for name, setting in RUN_SETTINGS.items() if setting.in_run_json}
    assert in_run_json == set(RunConfig.model_fields) - DERIVED


@pytest.mark.parametrize("command", ["train", "ab"])
def test_every_setting_with_a_flag_is_exactly_one_option_with_its_help(command):
    options = _options_by_flag(command)
    flags = [setting.flag for setting in RUN_SETTINGS.values() if setting.flag]
    assert len(flags) == len(set(flags)) == len(TrainOptions.model_fields)
    for name, setting in RUN_SETTINGS.items():
        if setting.flag is None:
            assert setting.flag not in options
            continue
        if command == "ab" and name in ("curriculum", "seed"):
            assert setting.flag not in options  # set per run by ab
            continue
        [param] = options[setting.flag]
        assert param.name == name and param.help == setting.help, (command, name)
        shown = setting.shown_default()
        assert param.show_default == (shown if shown is not None else True), name


def _asked_through(command: str, words: list[str], monkeypatch):
    """What ``pepcurr COMMAND WORDS`` hands the library: ``train``'s ``TrainOptions``, or
    ``ab --plan``'s ``AbSpec`` (caught at the library's door, before anything trains)."""
    seen = []

    class Caught(Exception):
        pass

    def catch(*args, **kwargs):
        seen.append((args, kwargs))
        raise Caught

    if command == "train":
        monkeypatch.setattr("curriculum_cli.training.launch.run_training", catch)
    else:
        monkeypatch.setattr("curriculum_cli.analysis.ab.plan_commands", catch)
    result = runner.invoke(app, [command, *words])
    assert isinstance(result.exception, Caught), result.output
    [(args, kwargs)] = seen
    return args[1] if command == "train" else args[0]


ASKED = TrainOptions(
    curriculum="current", seed=3, scale=0.02, model="casanovo-tiny",
    residue_distribution="uniform", batch_size=8, data_shards=2, lr=5e-4, device="cpu",
    val_every=7, grad_every=9, val_size=64, decode_size=16, decode_every=3, log_every=2,
    checkpoint_every=11, train_data=(Path("a.mgf"), Path("b.mgf")),
    val_data=(Path("v.mgf"),), skip_invalid=True, store_dir=Path("stores"),
    init_from=Path("runs/r"), vocab="casanovo",
)  # fmt: skip


def test_every_option_of_train_reaches_its_train_options(monkeypatch):
    assert set(ASKED.given()) == set(TrainOptions.model_fields)
    assert _asked_through("train", ASKED.command_words(), monkeypatch) == ASKED


def test_every_option_of_ab_reaches_every_run_and_the_rest_the_spec(monkeypatch):
    assert cli_app.AB_PER_RUN == PER_RUN_SETTINGS
    shared = ASKED.model_copy(update=dict.fromkeys(PER_RUN_SETTINGS))
    words = ["revised", "current", "--seeds", "3", "--scale", "0.5", "--plan"]
    spec = _asked_through("ab", [*words, *shared.command_words()], monkeypatch)
    assert spec.options == shared and spec.scale == 0.5 and spec.seeds == 3
    assert spec.arms == ("revised", "current")
    assert spec.run_options("current", 4).given() == {
        **shared.given(),
        "curriculum": "current",
        "seed": 4,
        "scale": 0.5,
    }


def test_a_bad_option_value_is_one_line_naming_its_flag():
    result = runner.invoke(app, ["train", "--scale", "0"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --scale: Input should be greater than 0"


def test_options_the_command_line_cannot_give_are_refused_by_plan_words():
    from curriculum_cli.errors import PepcurrError
    from tests.helpers import OXIDATION_VOCAB

    with pytest.raises(PepcurrError, match="no option for vocab"):
        TrainOptions(vocab=OXIDATION_VOCAB).command_words()


def test_options_are_typed_and_frozen():
    with pytest.raises(ValidationError, match="batch_size"):
        TrainOptions(batch_size=0)
    with pytest.raises(ValidationError, match="extra"):
        TrainOptions(batchsize=8)
    with pytest.raises(ValidationError):
        TrainOptions().seed = 1  # type: ignore[misc]


def test_resolved_config_takes_given_options_and_defaults_for_the_rest():
    config = resolve_run_config(TrainOptions(curriculum="current", scale=0.01, seed=4, lr=5e-4))
    assert (config.curriculum_source, config.seed, config.lr, config.batch_size) == (
        "current", 4, 5e-4, RUN_SETTINGS["batch_size"].default,
    )  # fmt: skip
    assert config.total_steps == 1000 and config.val_every == 1000 // 50
    assert resume_conflicts(config, TrainOptions(seed=4, lr=5e-4)) == []
    assert resume_conflicts(config, TrainOptions(residue_distribution="uniform")) == [
        "warning: ignoring --residues uniform: the run was started with 'tryptic', and "
        "--resume continues it with its own settings"
    ]


def test_resolving_reads_nothing_from_disk_what_options_point_at_comes_as_inputs(tmp_path):
    from curriculum_cli.spectra.vocabulary import Vocabulary

    source = build_run_config("revised", scale=0.001, model="casanovo-tiny")
    gone = tmp_path / "gone" / "last.pt"  # the checkpoint is not there: it was read before
    record = InitFrom(path=str(gone), checkpoint_sha256="0" * 64, step=12)
    asked = TrainOptions(curriculum="current", scale=0.001, init_from=gone)
    inputs = RunInputs(vocab=Vocabulary.named("casanovo"), init=(record, source))
    config = resolve_run_config(asked, inputs)
    assert config.model == "casanovo-tiny" and config.architecture == source.architecture
    assert config.init_from.path == str(gone) and config.init_from.vocabulary.added
    assert resolve_run_config(asked, inputs) == config  # the same inputs, the same config
    with pytest.raises(ValueError, match="read_run_inputs"):
        resolve_run_config(asked)  # --init-from, and nothing read for it


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_evaluate_and_predict_offer_every_decode_setting_once(command):
    options = _options_by_flag(command)
    for name, field in DecodeSettings.model_fields.items():
        [param] = options[field.json_schema_extra["flag"]]
        assert param.name == name and param.help == field.description, (command, name)
        if field.default is not None and field.default is not False:
            assert param.default == field.default, (command, name)


def test_every_curriculum_preset_is_named_in_the_help():
    from curriculum_cli.curriculum.presets import ALL_PRESET_NAMES

    helps = " ".join(param.help or "" for param in _command("validate").params)
    assert all(name in helps for name in ALL_PRESET_NAMES)
