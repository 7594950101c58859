"""Parallel models (``decoding = "parallel"``): a user's model from a file and pepcurr's recursive
model train with every refinement step in the loss, resume and fork bit for bit, and decode in
one forward pass per batch; a model with dropout resumes bit for bit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from curriculum_cli.analysis.evaluation import (
    DecodeSettings,
    evaluate_checkpoint,
    predict_checkpoint,
)
from curriculum_cli.cli.app import app
from curriculum_cli.errors import ModelError
from curriculum_cli.model.factory import build_model, check_model, parameters_without_gradient
from curriculum_cli.model.recursive import RECURSIVE_PRESETS, RecursiveConfig
from curriculum_cli.spectra.vocabulary import PAD_TOKEN, Vocabulary
from curriculum_cli.training.checkpoint import (
    CHECKPOINT_FILE,
    CKPT_RNG,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from curriculum_cli.training.fork import fork_run, shared_prefix
from curriculum_cli.training.loop import train
from curriculum_cli.training.resolve import build_run_config
from curriculum_cli.training.runlog import METRICS_FILE
from curriculum_cli.training.validation import decoded_metrics, make_validation_sets
from tests.helpers import SAMPLE_MGF, TEST_DATA, tiny_run_config, two_stage_curriculum
from tests.test_engine import comparable, read_jsonl

REFINER = f"{TEST_DATA / 'parallel_model.py'}:tiny_refiner"
VOCAB = Vocabulary.default()


def refiner_config(spectrum: float = 0.2, **overrides):
    """12 steps of the user's parallel model: CE for 6, then both auxiliary losses."""
    settings = dict(model=REFINER, val_every=4, grad_every=4, checkpoint_every=4, log_every=2)
    return tiny_run_config(two_stage_curriculum(6, 6, spectrum=spectrum),
                           **{**settings, **overrides})  # fmt: skip


def records(run_dir) -> list[dict]:
    return comparable(read_jsonl(run_dir / METRICS_FILE))


@pytest.fixture(scope="module")
def refiner_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("refiner") / "run"
    train(refiner_config(), run_dir)
    return run_dir


@pytest.fixture(scope="module")
def mgf(tmp_path_factory):
    """The first 10 spectra of the Casanovo sample file."""
    path = tmp_path_factory.mktemp("mgf") / "ten.mgf"
    blocks = SAMPLE_MGF.read_text().split("END IONS")[:10]
    path.write_text("END IONS".join(blocks) + "END IONS\n")
    return path


class CountForwardPasses:
    """Counts the calls of every parallel model's ``forward`` while active (a global hook)."""

    def __enter__(self):
        self.calls = 0

        def hook(module, inputs, output):
            if getattr(module, "decoding", None) == "parallel":
                self.calls += 1

        self._handle = torch.nn.modules.module.register_module_forward_hook(hook)
        return self

    def __exit__(self, *exc):
        self._handle.remove()


def test_every_refinement_step_is_in_the_loss_with_its_weight(refiner_run):
    config = refiner_config()
    torch.manual_seed(config.seed)  # as the run built its model
    model = build_model(config.model, None, config.vocab).eval()
    val = make_validation_sets(config, torch.device("cpu"))["val_easy"]
    with torch.no_grad():
        steps = model(val.without_targets())  # three answers over the canvas
    width = val.tokens.shape[1]
    ce = [
        F.cross_entropy(s[:, :width].reshape(-1, VOCAB.size), val.tokens.reshape(-1),
                        ignore_index=PAD_TOKEN).item()
        for s in steps
    ]  # fmt: skip
    expected = (1 * ce[0] + 2 * ce[1] + 3 * ce[2]) / 6
    first = next(r for r in records(refiner_run) if r["event"] == "val")
    assert first["step"] == 0 and first["split"] == "val_easy"
    assert first["ce"] == pytest.approx(expected, rel=1e-6)
    assert abs(expected - ce[2]) > 1e-3  # the last step alone would be another number
    assert len(first["residue_accuracy_by_step"]) == 3
    assert first["residue_accuracy_by_step"][-1] == first["residue_accuracy"]
    assert first["ce_by_step"] == pytest.approx(ce, rel=1e-6)  # each step's own, as logged


def test_records_hold_each_refinement_steps_own_loss_terms(refiner_run, tmp_path):
    """``<term>_by_step`` in train and val records: combined with the model's step weights
    they give the logged term; a step the model does not weight for a term has None."""
    weights = (1 / 6, 2 / 6, 3 / 6)
    logged = [r for r in records(refiner_run) if r["event"] in ("train", "val")]
    assert {r["event"] for r in logged} == {"train", "val"}
    for record in logged:
        for name in ("ce", "spectrum", "precursor"):
            by_step = record[f"{name}_by_step"]
            combined = sum(w * v for w, v in zip(weights, by_step, strict=True))
            assert combined == pytest.approx(record[name], rel=1e-5), (record, name)
    config = refiner_config(model=f"{TEST_DATA / 'parallel_model.py'}:aux_on_last_step")
    train(config, tmp_path / "run", max_steps=4)
    for record in records(tmp_path / "run"):
        if record["event"] in ("train", "val"):
            assert None not in record["ce_by_step"]
            assert record["spectrum_by_step"][:2] == [None, None]  # weight 0: not computed
            assert record["spectrum_by_step"][2] == pytest.approx(record["spectrum"], rel=1e-6)
            assert record["precursor_by_step"][2] == pytest.approx(record["precursor"], rel=1e-6)


def test_a_parallel_model_resumes_and_forks_bit_for_bit(refiner_run, tmp_path):
    config, other = refiner_config(), refiner_config(spectrum=0.5)  # they share steps 0-5
    assert shared_prefix(config, other) == 6  # validation_plan: they validate alike
    stopped = tmp_path / "stopped"
    train(config, stopped, max_steps=5)
    fork_run(stopped, tmp_path / "forked", other)
    # a checkpoint of an older pepcurr (no global generators) resumes too: this model draws
    # nothing at random, so exactly
    state = load_checkpoint(stopped / CHECKPOINT_FILE)
    del state[CKPT_RNG]
    save_checkpoint(stopped / CHECKPOINT_FILE, state)
    train(config, stopped, resume=True)
    assert records(stopped) == records(refiner_run)
    train(other, tmp_path / "forked", resume=True)
    train(other, tmp_path / "other")
    assert records(tmp_path / "forked") == records(tmp_path / "other")
    assert records(tmp_path / "other") != records(refiner_run)


def test_a_model_with_dropout_resumes_bit_for_bit(tmp_path):
    config = tiny_run_config(two_stage_curriculum(6, 6),
                             model=f"{TEST_DATA / 'custom_model.py'}:tiny_gru_dropout",
                             val_every=4, grad_every=4, log_every=1)  # fmt: skip
    train(config, tmp_path / "straight")
    train(config, tmp_path / "resumed", max_steps=5)
    train(config, tmp_path / "resumed", resume=True)
    assert records(tmp_path / "resumed") == records(tmp_path / "straight")
    assert not any("ce_by_step" in r for r in records(tmp_path / "straight"))  # one step


def test_evaluate_and_predict_decode_in_one_forward_pass_per_batch(refiner_run, mgf, monkeypatch):
    from curriculum_cli.analysis import evaluation

    monkeypatch.setattr(evaluation, "DECODE_BATCH_SIZE", 4)  # 10 spectra: 3 batches
    with CountForwardPasses() as passes:
        result = evaluate_checkpoint(refiner_run, mgf, DecodeSettings(beam_size=5))
    assert passes.calls == 3 + 1  # the batches, and check_model's probe when loading
    assert result.n_spectra == 10 and result.settings["decoding"].startswith("in one pass, with")
    assert any("--beam-size 5 does not apply" in warning for warning in result.warnings)
    with CountForwardPasses() as passes:
        predicted = predict_checkpoint(
            refiner_run, mgf, mgf.with_suffix(".mztab"), DecodeSettings(beam_size=1)
        )
    assert passes.calls == 3 + 1 and not predicted.warnings
    psm_lines = [line for line in mgf.with_suffix(".mztab").read_text().splitlines()
                 if line.startswith("PSM\t")]  # fmt: skip
    assert len(psm_lines) == predicted.n_predicted > 0
    model, config = load_model(refiner_run)
    val = make_validation_sets(config, torch.device("cpu"))["val_hard"]
    with CountForwardPasses() as passes:
        scores = decoded_metrics(model, val, config.curriculum.max_length)
    assert passes.calls == 1 and 0 <= scores["aa_recall"] <= 1


def test_evaluate_says_that_a_beam_size_does_not_apply_only_when_one_is_given(refiner_run, mgf):
    result = CliRunner().invoke(app, ["evaluate", str(refiner_run), "--mgf", str(mgf),
                                      "--beam-size", "5"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "warning: --beam-size 5 does not apply to" in result.output
    assert "decoded in one pass, with the mass-aware repair" in result.output
    for command in (["evaluate"], ["predict", "--mztab", str(mgf.with_suffix(".mztab"))]):
        quiet = CliRunner().invoke(app, [*command, str(refiner_run), "--mgf", str(mgf)])
        assert quiet.exit_code == 0, quiet.output
        assert "beam" not in quiet.output, quiet.output  # not given: nothing to warn of


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("no_step_weights", "returns 3 refinement steps but has no step_weights"),
        ("narrow_canvas", "W >= max_peptide_length + 1 = 21"),
    ],
)
def test_a_broken_parallel_model_is_one_clear_error(factory, message):
    spec = f"{TEST_DATA / 'parallel_model.py'}:{factory}"
    with pytest.raises(ModelError, match=message.replace("+", r"\+")):
        build_model(spec, None, VOCAB)


def test_parameters_without_a_gradient_are_named():
    spec = f"{TEST_DATA / 'parallel_model.py'}:unused_parameter"
    model = build_model(spec, None, VOCAB)
    assert parameters_without_gradient(model, VOCAB) == ["spare.weight", "spare.bias"]
    assert parameters_without_gradient(build_model(REFINER, None, VOCAB), VOCAB) == []


SMALL_TRM = RecursiveConfig(d_model=32, n_heads=2, dim_feedforward=64, n_encoder_layers=1,
                            supervision_steps=2, cycles=2, max_peptide_length=10)  # fmt: skip


def test_the_recursive_presets_follow_the_parallel_interface():
    torch.manual_seed(0)
    model = build_model("trm-tiny", RECURSIVE_PRESETS["trm-tiny"], VOCAB)
    check_model(model, "trm-tiny", VOCAB)
    assert parameters_without_gradient(model, VOCAB) == []  # torchrun's DDP needs none
    assert model.step_weights == pytest.approx((0.1, 0.2, 0.3, 0.4))
    core = build_model("small", RecursiveConfig(**{**SMALL_TRM.__dict__, "answer_update": "core"}),
                       VOCAB)  # fmt: skip
    check_model(core, "small", VOCAB)


def test_a_recursive_model_moves_into_another_vocabulary():
    from curriculum_cli.model.token_transfer import transfer_token_weights

    casanovo = Vocabulary.named("casanovo")
    trained, wider = build_model("s", SMALL_TRM, VOCAB), build_model("s", SMALL_TRM, casanovo)
    old, new = trained.state_dict(), wider.state_dict()
    assert set(wider.per_token_parameters()) == {n for n in new if new[n].shape != old[n].shape}
    wider.load_state_dict(transfer_token_weights(old, wider, VOCAB, casanovo, "--init-from x"))
    oxidised, methionine = casanovo.tokens.index("M[Oxidation]"), VOCAB.tokens.index("M")
    assert torch.equal(wider.head.weight[oxidised], trained.head.weight[methionine])


def test_a_small_recursive_model_trains_and_evaluates(tmp_path, mgf):
    config = build_run_config(two_stage_curriculum(4, 4), model="small-trm",
                              architecture=SMALL_TRM, device="cpu", batch_size=8, val_size=8,
                              val_every=4, grad_every=4, log_every=4, decode_every=2)  # fmt: skip
    result = train(config, tmp_path / "run")
    assert result.status == "finished"
    last = [r for r in records(tmp_path / "run") if r["event"] == "val"][-1]
    assert len(last["residue_accuracy_by_step"]) == 2 and "aa_recall" in last
    assert any(r["event"] == "grad" for r in records(tmp_path / "run"))
    evaluated = evaluate_checkpoint(
        tmp_path / "run", mgf, DecodeSettings(beam_size=1, no_filter=True)
    )
    assert evaluated.settings["decoding"] == "in one pass, arg-max (no precursor filter)"
    assert len(evaluated.predictions) == 10


def test_compare_rescores_a_parallel_model_from_its_last_refinement_step(refiner_run):
    from curriculum_cli.analysis.rescore import rescore_runs
    from curriculum_cli.training.runlog import read_run

    rescored = rescore_runs([read_run(refiner_run)], ["refiner"], "residue_accuracy_hard", 4)
    logged = [r for r in records(refiner_run) if r["event"] == "val" and r["split"] == "val_hard"]
    # its own set, re-scored per spectrum and pooled, is the logged last-step accuracy
    assert rescored.values[str(refiner_run)]["own"] == pytest.approx(logged[-1]["residue_accuracy"])


def test_a_recursive_model_trains_on_realistic_spectra_and_writes_n_terminal_tokens_first(
    tmp_path, mgf
):
    """The calibrated world draws N-terminal modifications of the casanovo vocabulary; with a
    head that prefers them everywhere, decoding still puts one first only, and mzTab says so."""
    from pyteomics import mztab

    casanovo = Vocabulary.named("casanovo")
    small = RecursiveConfig(**{**SMALL_TRM.__dict__, "max_peptide_length": 20})
    config = build_run_config("realistic-revised", scale=0.00004, model="small-trm",
                              architecture=small, vocab=casanovo, device="cpu", batch_size=8,
                              val_size=8, decode_size=4, val_every=3, log_every=3)  # fmt: skip
    assert train(config, tmp_path / "run", max_steps=3).status == "stopped"
    val = [r for r in records(tmp_path / "run") if r["event"] == "val"]
    assert len(val) == 4 and all(len(r["residue_accuracy_by_step"]) == 2 for r in val)

    checkpoint = tmp_path / "run" / CHECKPOINT_FILE
    state = load_checkpoint(checkpoint)
    state["model"]["head.bias"][list(casanovo.n_terminal_ids)] += 30.0  # the arg-max everywhere
    save_checkpoint(checkpoint, state)
    predicted = predict_checkpoint(tmp_path / "run", mgf, tmp_path / "p.mztab")
    psms = mztab.MzTab(str(tmp_path / "p.mztab")).spectrum_match_table
    assert len(psms) == predicted.n_predicted == 10
    n_terminal = {casanovo.tokens[i] for i in casanovo.n_terminal_ids}
    for proforma, scores in zip(psms["opt_ms_run[1]_proforma"], psms["opt_ms_run[1]_aa_scores"],
                                strict=True):  # fmt: skip
        tokens = casanovo.parse(proforma)
        assert tokens[0] in n_terminal and not n_terminal & set(tokens[1:]), proforma
        assert len(scores.split(",")) == len(tokens)


def test_compare_shows_each_refinement_step_on_request(refiner_run, tmp_path):
    from curriculum_cli.analysis.compare import compare_runs

    last = [r for r in records(refiner_run) if r["event"] == "val" and r["split"] == "val_hard"][-1]
    plain = compare_runs([refiner_run])
    assert not any("step1" in row.key for row in plain.rows)
    found = compare_runs([refiner_run], per_step=True)
    run = found.runs.iloc[0]
    for k in range(3):
        assert run[f"val_ce_hard_step{k + 1}"] == pytest.approx(last["ce_by_step"][k])
        accuracy = run[f"residue_accuracy_hard_step{k + 1}"]
        assert accuracy == pytest.approx(last["residue_accuracy_by_step"][k])
    assert f"val_ce_hard_step{4}" not in run
    table = CliRunner().invoke(app, ["compare", str(refiner_run), "--per-step"])
    assert table.exit_code == 0 and "val CE, hard, refinement step 3" in table.output
    assert "refinement step" not in CliRunner().invoke(app, ["compare", str(refiner_run)]).output
    one_step = tiny_run_config(two_stage_curriculum(2, 2), val_every=2, log_every=2)
    train(one_step, tmp_path / "one")
    alone = compare_runs([tmp_path / "one"], per_step=True)
    assert any("--per-step: no run given logged values per refinement step" in w
               for w in alone.warnings)  # fmt: skip
