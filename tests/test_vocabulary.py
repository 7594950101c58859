"""Vocabularies as data: named and file vocabularies, modified and N-terminal tokens, and how
decoding, the losses and the ion evidence see an N-terminal token (first token of a target)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from curriculum_cli.cli.app import app
from curriculum_cli.errors import VocabularyError
from curriculum_cli.model.decoding import beam_search, greedy_decode, parallel_decode
from curriculum_cli.model.losses import precursor_loss, spectrum_loss
from curriculum_cli.model.metrics import aa_match_metrics
from curriculum_cli.model.recursive import RecursiveConfig, RecursivePeptideModel
from curriculum_cli.model.transformer import EVIDENCE_FEATURES, ModelConfig, PeptideTransformer
from curriculum_cli.spectra.batch import SpectrumBatch
from curriculum_cli.spectra.chemistry import H2O_MASS_DA, peptide_neutral_mass_da
from curriculum_cli.spectra.vocabulary import (
    EOS_TOKEN,
    N_TERM,
    SPECIAL_TOKENS,
    Vocabulary,
    load_vocabulary,
)
from curriculum_cli.training.config import RunConfig
from tests.helpers import HCD_MGF, tiny_run_config
from tests.test_decoding import ScriptedModel, ScriptedParallelModel

runner = CliRunner()
CASANOVO = Vocabulary.named("casanovo")
# Unimod monoisotopic deltas (unimod.org), typed here independently of pepcurr's tables.
UNIMOD_DELTA_DA = {"Oxidation": 15.994915, "Deamidated": 0.984016, "Acetyl": 42.010565,
                   "Carbamyl": 43.005814, "Ammonia-loss": -17.026549}  # fmt: skip


def test_standard_is_todays_vocabulary_and_its_run_json_is_unchanged():
    standard = Vocabulary.named("standard")
    assert standard == Vocabulary.default() and not standard.modifications
    assert standard.residues == tuple("G A S P V T C[Carbamidomethyl] L N D Q K E M H F R Y W"
                                      .split())  # fmt: skip
    dumped = tiny_run_config().model_dump(mode="json")["vocab"]
    assert dumped == {"residues": list(standard.residues), "fold_il": True}


def test_casanovo_vocabulary_names_each_modification_its_site_and_delta():
    assert CASANOVO.size == 28  # as Casanovo 5's default: 26 residue tokens, <pad>, <eos>
    mods = {m.token: m for m in CASANOVO.modifications}
    assert list(mods) == ["M[Oxidation]", "N[Deamidated]", "Q[Deamidated]", "[Acetyl]-",
                          "[Carbamyl]-", "[Ammonia-loss]-", "[+25.980265]-"]  # fmt: skip
    for token, mod in list(mods.items())[:-1]:
        name = token[1:-2] if mod.n_terminal else token[2:-1]
        assert mod.delta_da == pytest.approx(UNIMOD_DELTA_DA[name], abs=2e-6), token
    for token, mod in mods.items():
        assert CASANOVO.tokens[mod.token_id] == token
        assert (mod.site, mod.unmodified) == ((N_TERM, None) if mod.n_terminal
                                              else (token[0], token[0]))  # fmt: skip
    # Casanovo's carbamylation + ammonia loss token: its mass as Casanovo writes it, 0.001 Da
    # above the sum of the two Unimod deltas (25.979265)
    assert mods["[+25.980265]-"].delta_da == 25.980265
    assert CASANOVO.n_terminal_ids == tuple(mods[t].token_id for t in list(mods)[3:])
    assert CASANOVO.encode("[+42.011]-PEM[+15.995]IK")[0] == mods["[Acetyl]-"].token_id
    assert CASANOVO.decode(CASANOVO.encode("+43.006-17.027QEK")) == "[+25.980265]-QEK"


def test_a_vocabulary_file_adds_tokens_with_their_masses(tmp_path):
    path = tmp_path / "phospho.yaml"
    path.write_text("base: casanovo\nresidues:\n  S[Phospho]: 166.998359\n"
                    "  T[+79.966331]: 181.014009\n  '[Formyl]-': 27.994915\n"
                    "  M[Oxidation]:\n")  # fmt: skip
    vocab = load_vocabulary(path)
    assert vocab.residues[-3:] == ("S[Phospho]", "T[+79.966331]", "[Formyl]-")
    assert vocab.masses_da == (("S[Phospho]", 166.998359), ("T[+79.966331]", 181.014009),
                               ("[Formyl]-", 27.994915))  # fmt: skip
    assert vocab.parse("[+27.995]-PS[+79.966]T[+79.97]K") == [
        "[Formyl]-", "P", "S[Phospho]", "T[+79.966331]", "K"]  # fmt: skip
    assert vocab.modifications[-3].delta_da == pytest.approx(79.966331, abs=1e-6)
    # recorded whole in run.json, read back equal
    config = tiny_run_config(vocab=vocab)
    again = RunConfig.model_validate_json(json.dumps(config.model_dump(mode="json")))
    assert again.vocab == vocab
    same = tmp_path / "same.json"
    same.write_text(json.dumps({"residues": {r: None for r in CASANOVO.residues}}))
    assert load_vocabulary(same) == CASANOVO
    # a training file's store is built once for the vocabulary, then found again
    from curriculum_cli.spectra.store import index_files
    from tests.helpers import SAMPLE_MGF

    indexed = []
    for _ in range(2):
        index_files([SAMPLE_MGF], vocab, 10, store_dir=tmp_path / "s", on_index=indexed.append)
    assert indexed == [SAMPLE_MGF.absolute()]


def test_a_bad_vocabulary_file_names_every_problem_on_its_own_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("fold_l: true\nresidues:\n  M[Oxidation]: 15.99\n  X: 100\n  S[Phospho]:\n"
                    "  K[+42.0]: 200\n  '[Foo]': 3\n")  # fmt: skip
    with pytest.raises(VocabularyError) as error:
        load_vocabulary(path)
    lines = str(error.value).splitlines()
    assert len(lines) == 6 and all(line.startswith(f"{path}: ") for line in lines)
    for expected in ("unknown key(s) fold_l", "residues.M[Oxidation]: 15.99 Da differs",
                     "residues.X: 'X' is not one of the 20", "S[Phospho]: a token pepcurr does "
                     "not know needs its mass", "K[+42.0]: 200 Da is not the residue",
                     "residues.[Foo]: not a token"):  # fmt: skip
        assert any(expected in line for line in lines), expected
    for arguments in (["--vocab", str(path)], ["--vocab", "casanova"]):
        result = runner.invoke(app, ["inspect", str(HCD_MGF),
                                     *arguments])  # fmt: skip
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert result.stderr.count("\n") == (6 if "bad" in arguments[1] else 1), result.stderr


# ----------------------------------------------------------------------------
# N-terminal tokens: decoding, losses, ion evidence
# ----------------------------------------------------------------------------


def _spectrum(peptide: str, vocab: Vocabulary = CASANOVO) -> SpectrumBatch:
    """One clean spectrum of ``peptide``: its b/y ions (charge 1), an N-terminal
    modification's mass in every b ion, computed from residue masses by hand."""
    names = vocab.parse(peptide)
    masses = [vocab.mass_da(n) for n in names]
    if names[0].startswith("["):
        masses = [masses[0] + masses[1], *masses[2:]]
    neutral = sum(masses) + H2O_MASS_DA
    b = [sum(masses[: i + 1]) + 1.007276 for i in range(len(masses) - 1)]
    mz = sorted(b + [neutral - x + 2 * 1.007276 for x in b])
    tokens = vocab.encode(names) + [EOS_TOKEN]
    return SpectrumBatch(
        mz=torch.tensor([mz]), intensity=torch.ones(1, len(mz)),
        peak_mask=torch.ones(1, len(mz), dtype=torch.bool),
        precursor_mass_da=torch.tensor([neutral]), precursor_charge=torch.tensor([2]),
        tokens=torch.tensor([tokens]), lengths=torch.tensor([len(tokens) - 1]),
    )  # fmt: skip


def test_losses_see_an_n_terminal_token_in_every_b_ion_and_in_the_precursor():
    batch = _spectrum("[Acetyl]-PEPTLDEK")
    probs = torch.nn.functional.one_hot((batch.tokens - 2).clamp(min=0), CASANOVO.size - 2)
    probs = probs.double()
    masses = CASANOVO.residue_masses(dtype=torch.float64)[2:]
    n_terminal = CASANOVO.n_terminal_mask()[2:]
    assert precursor_loss(probs, masses, batch).item() == pytest.approx(0.0, abs=1e-9)
    merged = spectrum_loss(probs, masses, batch, sigma_da=0.01, n_terminal=n_terminal)
    unmerged = spectrum_loss(probs, masses, batch, sigma_da=0.01)  # the mod as a residue
    assert merged.item() < 1e-4 and unmerged.item() > 0.05  # float32 peaks: not exactly 0


def test_n_terminal_candidates_get_mass_features_only_and_weigh_in_later_b_ions():
    torch.manual_seed(0)
    config = ModelConfig(d_model=16, n_encoder_layers=1, n_decoder_layers=1, n_heads=2,
                         dim_feedforward=32)  # fmt: skip
    model = PeptideTransformer(config, CASANOVO).eval()
    batch = _spectrum("[Acetyl]-GASPK")
    prefix = CASANOVO.residue_masses()[batch.tokens[:, :-1]].cumsum(-1)
    prefix = torch.cat([torch.zeros(1, 1), prefix], dim=1)
    evidence = model.evidence
    from curriculum_cli.model.transformer import candidate_ion_evidence

    features = candidate_ion_evidence(
        prefix, batch.precursor_mass_da, batch.precursor_charge, batch.mz, batch.intensity,
        batch.peak_mask, evidence.candidate_mass_da, 20.0, 50.0, evidence.n_terminal,
        evidence.lightest_residue_da,
    )[0]  # fmt: skip
    acetyl, glycine = CASANOVO.encode("[Acetyl]-G")
    ions = len(EVIDENCE_FEATURES) - 2
    assert features[0, acetyl, :ions].abs().sum() == 0  # no fragment of the mod alone
    b, y = EVIDENCE_FEATURES.index("b_match"), EVIDENCE_FEATURES.index("y_match")
    assert features[1, glycine, b] > 0.99 and features[1, glycine, y] > 0.99  # b1: mod + G
    assert features[0, glycine, b] < 0.01  # G alone: no such peak


def test_decoding_puts_an_n_terminal_token_first_only_and_a_residue_after_it():
    acetyl_everywhere = {"[Acetyl]-": 9.0, "[Ammonia-loss]-": 8.0}
    preferences = [{**acetyl_everywhere, "G": 1.0},
                   {**acetyl_everywhere, "<eos>": 8.5, "G": 5.0},
                   {**acetyl_everywhere, "G": 5.0}, {"<eos>": 9.0}]  # fmt: skip
    model = ScriptedModel(CASANOVO, preferences)
    batch = _spectrum("[Acetyl]-GGG")
    assert greedy_decode(model, batch, 3)[0].peptide == "[Acetyl]-GG"
    for precursor in ("[Acetyl]-GG", "[Ammonia-loss]-GG", "GGG"):
        mass_da = peptide_neutral_mass_da(precursor, CASANOVO.masses)
        fitted = replace(batch, precursor_mass_da=torch.tensor([mass_da], dtype=torch.float32))
        found = beam_search(model, fitted, beam_size=4, max_length=3)[0]
        assert found.peptide == precursor and found.fits_precursor, (precursor, found)
        assert all(t not in CASANOVO.n_terminal_ids for t in found.tokens[1:])


def test_parallel_decoding_puts_an_n_terminal_token_first_only_and_a_residue_after_it():
    acetyl_everywhere = {"[Acetyl]-": 9.0, "[Ammonia-loss]-": 8.0}
    preferences = [{**acetyl_everywhere, "G": 1.0},
                   {**acetyl_everywhere, "<eos>": 8.5, "G": 5.0},
                   {**acetyl_everywhere, "G": 5.0}, {"<eos>": 9.0}]  # fmt: skip
    model = ScriptedParallelModel(CASANOVO, preferences)
    batch = _spectrum("[Acetyl]-GGG")
    # the arg-max would be [Acetyl]- everywhere, and <eos> right after it
    assert parallel_decode(model, batch, 3, mass_aware=False).predictions[0].peptide == (
        "[Acetyl]-GG"
    )
    assert parallel_decode(model, batch, 1, mass_aware=False).predictions[0].peptide == "G"
    for precursor in ("[Acetyl]-GG", "[Ammonia-loss]-GG", "GGG"):  # the repair's picks
        mass_da = peptide_neutral_mass_da(precursor, CASANOVO.masses)
        fitted = replace(batch, precursor_mass_da=torch.tensor([mass_da], dtype=torch.float32))
        found = parallel_decode(model, fitted, 3).predictions[0]
        assert found.peptide == precursor and found.fits_precursor, (precursor, found)
    lone = replace(batch, precursor_mass_da=torch.tensor([H2O_MASS_DA + 42.010565]))
    found = parallel_decode(model, lone, 3).predictions[0]  # nothing fits: [Acetyl]- alone won't
    assert found.peptide == "[Acetyl]-GG" and not found.fits_precursor


def test_a_recursive_model_reads_an_n_terminal_token_at_position_0_only():
    model = RecursivePeptideModel(RecursiveConfig(d_model=8, n_heads=2, max_peptide_length=4),
                                  CASANOVO)  # fmt: skip
    answer = torch.full((1, 5, CASANOVO.size), -5.0)
    answer[..., CASANOVO.tokens.index("[Acetyl]-")] = 9.0  # the arg-max everywhere
    answer[..., CASANOVO.tokens.index("G")] = 5.0
    acetyl, glycine = UNIMOD_DELTA_DA["Acetyl"], 57.021464
    expected = [0.0] + [acetyl + i * glycine for i in range(4)]
    assert model._prefix_masses(answer)[0].tolist() == pytest.approx(expected, abs=1e-4)


def test_metrics_count_an_n_terminal_modification_as_its_own_token_of_its_delta():
    exact = aa_match_metrics(["[Acetyl]-PEPK"], ["[+42.011]-PEPK"], CASANOVO.masses)
    assert exact == {"aa_precision": 1.0, "aa_recall": 1.0, "peptide_recall": 1.0}
    missing = aa_match_metrics(["PEPK"], ["[Acetyl]-PEPK"], CASANOVO.masses)
    # Casanovo's aa_match: 4 of 4 predicted match (the suffix), 4 of 5 true tokens
    assert (missing["aa_precision"], missing["aa_recall"]) == (1.0, 0.8)
    assert missing["peptide_recall"] == 0.0
    assert not math.isnan(missing["aa_recall"]) and SPECIAL_TOKENS == ("<pad>", "<eos>")


# ----------------------------------------------------------------------------
# The done-when run: the casanovo vocabulary on the two real files, and its round trip
# ----------------------------------------------------------------------------


def test_casanovo_run_on_both_real_files_gives_every_spectrum_a_target_and_round_trips(
    tmp_path,
):
    from pyteomics import mztab

    from curriculum_cli.training.checkpoint import CKPT_VOCAB, vocab_record
    from tests.helpers import SAMPLE_MGF, TEST_MODEL_FACTORY

    massivekb = HCD_MGF
    curriculum = tmp_path / "real.json"
    curriculum.write_text(json.dumps({"schema_version": 1, "name": "real", "stages": [
        {"name": "real", "steps": 3, "min_length": 7, "max_length": 28, "real_fraction": 1.0,
         "spectrum_loss_weight": 0.1, "precursor_loss_weight": 0.01}]}))  # fmt: skip
    run = tmp_path / "run"
    common = ["-c", str(curriculum), "-o", str(run), "--model", TEST_MODEL_FACTORY, "--device",
              "cpu", "--batch-size", "4", "--val-size", "2", "--decode-size", "1",
              "-q"]  # fmt: skip
    first = runner.invoke(app, ["train", *common, "--vocab", "casanovo", "--train-data",
                                str(massivekb), "--train-data", str(SAMPLE_MGF), "--store",
                                str(tmp_path / "s"), "--max-steps", "2"])  # fmt: skip
    assert first.exit_code == 0, first.output
    config = json.loads((run / "run.json").read_text())["config"]
    # every spectrum of both files has a target: none skipped, none left out
    assert [(d["n_spectra"], d["n_skipped"]) for d in config["train_data"]] == [(250, 0), (128, 0)]
    assert config["vocab"]["residues"] == list(CASANOVO.residues)
    assert torch.load(run / "last.pt", weights_only=True)[CKPT_VOCAB] == vocab_record(CASANOVO)
    resumed = runner.invoke(app, ["train", "-o", str(run), "--resume", "-q"])
    assert resumed.exit_code == 0 and "finished at step 3/3" in resumed.stdout, resumed.output

    head = "END IONS".join(massivekb.read_text().split("END IONS")[:3]) + "END IONS\n"
    three = tmp_path / "three.mgf"
    three.write_text(head)
    evaluated = runner.invoke(app, ["evaluate", str(run), "--mgf", str(three), "--mztab",
                                    str(tmp_path / "e.mztab"), "--beam-size", "2",
                                    "--max-length", "4", "--device", "cpu"])  # fmt: skip
    assert evaluated.exit_code == 0 and "3 of 3 spectra annotated" in evaluated.stdout, (
        evaluated.output
    )
    bare = tmp_path / "bare.mgf"
    bare.write_text("".join(line + "\n" for line in head.splitlines()
                            if not line.startswith("SEQ=")))  # fmt: skip
    predicted = runner.invoke(app, ["predict", str(run), "--mgf", str(bare), "--mztab",
                                    str(tmp_path / "p.mztab"), "--beam-size", "2",
                                    "--max-length", "4", "--device", "cpu"])  # fmt: skip
    assert predicted.exit_code == 0, predicted.output
    table = mztab.MzTab(str(tmp_path / "p.mztab"))
    assert table.metadata["variable_mod[4]-site"] == "N-term"
    psms = table.spectrum_match_table
    assert len(psms) == 3
    for proforma in psms["opt_ms_run[1]_proforma"]:
        assert "".join(CASANOVO.parse(proforma)) == proforma  # the run's own tokens
