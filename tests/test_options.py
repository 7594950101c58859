"""TrainOptions: one typed object from the command line, one way to a RunConfig."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from pydantic import ValidationError

from curriculum_cli.cli.app import app
from curriculum_cli.cli.options import train_options
from curriculum_cli.training.options import TrainOptions, resolve_run_config, resume_conflicts


def _command_options(name: str) -> dict[str, str]:
    """Flag -> parameter name of one ``pepcurr`` command."""
    command = typer.main.get_command(app).commands[name]
    return {flag: param.name for param in command.params for flag in param.opts}


@pytest.mark.parametrize("command", ["train", "ab"])
def test_every_train_option_is_an_option_of_train_and_ab_under_its_own_name(command):
    options = _command_options(command)
    for name in TrainOptions.model_fields:
        flag = TrainOptions.flag(name)
        if flag is None or (command == "ab" and name in ("curriculum", "seed")):
            continue  # set per run by ab
        assert options.get(flag) == name, (command, flag)


def test_command_words_give_the_same_options_back_through_the_command_line():
    asked = TrainOptions(
        curriculum="current", seed=3, scale=0.02, model="casanovo-tiny",
        residue_distribution="uniform", batch_size=8, data_shards=2, lr=5e-4, device="cpu",
        val_every=7, grad_every=9, val_size=64, decode_size=16, decode_every=3, log_every=2,
        checkpoint_every=11, train_data=(Path("a.mgf"), Path("b.mgf")),
        val_data=(Path("v.mgf"),), skip_invalid=True, store_dir=Path("stores"),
        init_from=Path("runs/r"), vocab="casanovo",
    )  # fmt: skip
    assert set(asked.given()) == set(TrainOptions.model_fields)
    command = typer.main.get_command(app).commands["train"]
    context = command.make_context("train", asked.command_words())
    assert train_options(context.params) == asked


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
        "current", 4, 5e-4, 32,
    )  # fmt: skip
    assert config.total_steps == 1000 and config.val_every == 1000 // 50
    assert resume_conflicts(config, TrainOptions(seed=4, lr=5e-4)) == []
    assert resume_conflicts(config, TrainOptions(residue_distribution="uniform")) == [
        "warning: ignoring --residues uniform: the run was started with 'tryptic', and "
        "--resume continues it with its own settings"
    ]
