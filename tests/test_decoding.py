"""Greedy decoding, the mass-filtered beam search and one-pass parallel decoding, with a real tiny
model and scripted ones."""

import math
from dataclasses import replace

import pytest
import torch

from curriculum_cli.model.decoding import beam_search, greedy_decode, parallel_decode
from curriculum_cli.model.metrics import C13_C12_DELTA_DA, mass_error_ppm
from curriculum_cli.model.transformer import ModelConfig, PeptideTransformer
from curriculum_cli.spectra.chemistry import H2O_MASS_DA, peptide_neutral_mass_da
from curriculum_cli.spectra.synthetic import SpectrumSettings, generate_spectra
from curriculum_cli.spectra.vocabulary import EOS_TOKEN, PAD_TOKEN, Vocabulary
from curriculum_cli.training.validation import decoded_metrics

TOL_PPM = 20.0


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary.default()


@pytest.fixture(scope="module")
def model(vocab):
    torch.manual_seed(0)
    config = ModelConfig(
        d_model=32, n_encoder_layers=1, n_decoder_layers=1, n_heads=2, dim_feedforward=64,
        max_peptide_length=12,
    )  # fmt: skip
    return PeptideTransformer(config, vocab).eval()


@pytest.fixture(scope="module")
def batch(vocab):
    return generate_spectra(SpectrumSettings(min_length=6, max_length=8), 12, vocab, seed=3)


def _with_precursors(batch, peptides: list[str], isotope: int = 0):
    """The batch with each precursor replaced by a peptide's neutral mass (+ isotope spacings)."""
    masses = [peptide_neutral_mass_da(p) + isotope * C13_C12_DELTA_DA for p in peptides]
    return replace(batch, precursor_mass_da=torch.tensor(masses, dtype=torch.float32))


def test_greedy_equals_beam_size_one_without_filter(model, batch):
    greedy = greedy_decode(model, batch, 10)
    beam = beam_search(model, batch, beam_size=1, max_length=10, precursor_tol_ppm=None)
    assert greedy == beam


def test_decoding_is_deterministic(model, batch):
    assert greedy_decode(model, batch, 10) == greedy_decode(model, batch, 10)
    first = beam_search(model, batch, beam_size=4, max_length=10, precursor_tol_ppm=TOL_PPM)
    assert first == beam_search(model, batch, beam_size=4, max_length=10, precursor_tol_ppm=TOL_PPM)


def test_greedy_decoding_sees_the_decoded_prefix_as_teacher_forcing_sees_a_true_one(model, batch):
    """Ion evidence comes from the prefix given to ``decode``: decoding the greedy peptide
    again with teacher forcing gives the same arg-max at every step."""
    assert model.config.ion_evidence
    memory, memory_mask = model.encode(batch.mz, batch.intensity, batch.peak_mask)
    for row, prediction in enumerate(greedy_decode(model, batch, 10)):
        one = slice(row, row + 1)
        prefix = torch.tensor([prediction.tokens])
        logits = model.decode(
            prefix, batch.precursor_mass_da[one], batch.precursor_charge[one], memory[one],
            memory_mask[one], batch.mz[one], batch.intensity[one],
        )[0]  # fmt: skip
        logits[:, 0] = -math.inf  # <pad> is never decoded
        logits[0, EOS_TOKEN] = -math.inf  # nor <eos> first
        if len(prediction.tokens) == 10:
            logits[-1, EOS_TOKEN + 1 :] = -math.inf  # at the length limit, only <eos> is left
        assert logits.argmax(-1).tolist() == [*prediction.tokens, EOS_TOKEN]


def test_predictions_are_well_formed(model, batch, vocab):
    for prediction in beam_search(model, batch, beam_size=3, max_length=7):
        assert 1 <= len(prediction.tokens) <= 7
        assert all(token > EOS_TOKEN for token in prediction.tokens)  # no <pad>, no <eos>
        assert prediction.peptide == vocab.decode(prediction.tokens)
        assert prediction.score <= 0


class PrecursorBlind(torch.nn.Module):
    """The tiny model with its precursor input held constant, so its paths ignore the precursor.

    Lets a test move a spectrum's precursor onto the greedy peptide's mass
    without changing what greedy decoding finds. ``<eos>`` is ruled out before
    ``MIN_RESIDUES`` residues, since an untrained model would stop after one.
    """

    MIN_RESIDUES = 5

    def __init__(self, model):
        super().__init__()
        self.inner, self.vocab = model, model.vocab
        self.max_peptide_length = model.max_peptide_length

    def encode(self, mz, intensity, peak_mask):
        return self.inner.encode(mz, intensity, peak_mask)

    def decode(
        self, prefix_tokens, precursor_mass_da, precursor_charge, memory, memory_pad_mask, *peaks
    ):
        constant_mass = torch.full_like(precursor_mass_da, 1000.0)
        constant_charge = torch.full_like(precursor_charge, 2)
        logits = self.inner.decode(
            prefix_tokens, constant_mass, constant_charge, memory, memory_pad_mask, *peaks
        )
        logits[:, : self.MIN_RESIDUES, EOS_TOKEN] = -math.inf
        return logits


def test_beam_search_keeps_a_fitting_peptide_it_finds(model, batch):
    blind = PrecursorBlind(model)
    greedy = greedy_decode(blind, batch, 10)
    # Precursors moved onto what greedy decoding finds: a fitting peptide lies in every search.
    fitted = _with_precursors(batch, [p.peptide for p in greedy])
    beam = beam_search(blind, fitted, beam_size=1, max_length=10, precursor_tol_ppm=TOL_PPM)
    assert [p.peptide for p in beam] == [p.peptide for p in greedy]
    assert all(p.fits_precursor for p in beam)
    wider = beam_search(blind, fitted, beam_size=4, max_length=10, precursor_tol_ppm=TOL_PPM)
    for found, mass in zip(beam + wider, fitted.precursor_mass_da.tolist() * 2, strict=True):
        assert found.fits_precursor == (
            abs(mass_error_ppm(peptide_neutral_mass_da(found.peptide), mass)) <= TOL_PPM
        )
    # 0.1 Da heavier (over 100 ppm): the greedy peptide no longer fits, nothing else does,
    # so it comes back as the fallback, flagged.
    shifted = replace(fitted, precursor_mass_da=fitted.precursor_mass_da + 0.1)
    beam = beam_search(blind, shifted, beam_size=1, max_length=10, precursor_tol_ppm=TOL_PPM)
    assert [p.peptide for p in beam] == [p.peptide for p in greedy]
    assert not any(p.fits_precursor for p in beam)


class ScriptedModel(torch.nn.Module):
    """A stand-in decoder whose next-token logits depend only on the position.

    ``preferences[t]`` maps token names to logits at position ``t`` (others -5),
    so the most probable peptide and its rivals are known in advance.
    """

    def __init__(self, vocab: Vocabulary, preferences: list[dict[str, float]]):
        super().__init__()
        self.vocab = vocab
        self.max_peptide_length = len(preferences) - 1
        table = torch.full((len(preferences), vocab.size), -5.0)
        for t, preferred in enumerate(preferences):
            for name, logit in preferred.items():
                table[t, vocab.tokens.index(name)] = logit
        self.table = table

    def encode(self, mz, intensity, peak_mask):
        return torch.zeros(len(mz), 1, 1), torch.zeros(len(mz), 1, dtype=torch.bool)

    def decode(
        self, prefix_tokens, precursor_mass_da, precursor_charge, memory, memory_pad_mask, *peaks
    ):
        length = prefix_tokens.shape[1] + 1
        return self.table[:length].expand(len(prefix_tokens), -1, -1)


def _scripted_batch(batch, precursor_mass_da: float):
    one = batch.select(slice(0, 1))
    return replace(one, precursor_mass_da=torch.tensor([precursor_mass_da], dtype=torch.float32))


# G is always the favourite, A the runner-up; <eos> is wanted only after three residues.
GGG_FIRST = [
    {"G": 5.0, "A": 4.0, "<eos>": -9.0},
    {"G": 5.0, "A": 4.0, "<eos>": -9.0},
    {"G": 5.0, "A": 4.0, "<eos>": -9.0},
    {"<eos>": 9.0},
]


def test_beam_search_prefers_a_fitting_peptide_over_a_more_probable_misfit(vocab, batch):
    model = ScriptedModel(vocab, GGG_FIRST)
    spectrum = _scripted_batch(batch, peptide_neutral_mass_da("GGA"))
    assert greedy_decode(model, spectrum, 3)[0].peptide == "GGG"
    assert beam_search(model, spectrum, 2, 3, precursor_tol_ppm=None)[0].peptide == "GGG"
    found = beam_search(model, spectrum, 2, 3, precursor_tol_ppm=TOL_PPM)[0]
    assert found.peptide in ("GGA", "GAG", "AGG") and found.fits_precursor
    assert abs(found.precursor_error_ppm) < 1.0


def test_too_heavy_prefixes_are_dropped(vocab, batch):
    # Precursor of "GG": a third residue cannot fit, so <eos> comes at position 2 despite its logit.
    model = ScriptedModel(vocab, GGG_FIRST)
    found = beam_search(model, _scripted_batch(batch, peptide_neutral_mass_da("GG")), 1, 3)[0]
    assert found.peptide == "GG" and found.fits_precursor


def test_a_misfit_is_returned_only_as_a_fallback_and_flagged(vocab, batch):
    model = ScriptedModel(vocab, GGG_FIRST)
    spectrum = _scripted_batch(batch, 1000.0)  # far heavier than any 3-residue peptide
    found = beam_search(model, spectrum, 2, 3, precursor_tol_ppm=TOL_PPM)[0]
    assert found.peptide == "GGG" and not found.fits_precursor
    nothing = beam_search(model, _scripted_batch(batch, H2O_MASS_DA + 10.0), 2, 3)[0]
    assert nothing.peptide == "" and not nothing.fits_precursor and nothing.score == -math.inf


def test_isotope_offset_one_accepts_a_peptide_one_13c_spacing_lighter(vocab, batch):
    model = ScriptedModel(vocab, GGG_FIRST)
    spectrum = _scripted_batch(batch, peptide_neutral_mass_da("GGA") + C13_C12_DELTA_DA)
    without = beam_search(model, spectrum, 2, 3, precursor_tol_ppm=TOL_PPM)[0]
    assert not without.fits_precursor
    found = beam_search(model, spectrum, 2, 3, precursor_tol_ppm=TOL_PPM, isotope_offsets=(0, 1))[0]
    assert found.fits_precursor and found.isotope == 1 and found.peptide in ("GGA", "GAG", "AGG")


def test_decoded_metrics_has_the_logged_keys(model, batch):
    scores = decoded_metrics(model, batch, 10)
    assert set(scores) == {
        "aa_precision",
        "aa_recall",
        "peptide_recall",
        "precursor_error_ppm_median",
    }
    assert all(0.0 <= scores[k] <= 1.0 for k in ("aa_precision", "aa_recall", "peptide_recall"))


class ScriptedParallelModel(ScriptedModel):
    """The scripted table as a parallel model: every position at once, in one forward pass."""

    decoding = "parallel"

    def forward(self, batch):
        return self.table.expand(len(batch), -1, -1)


def _log_prob(model: ScriptedModel, position: int, name: str) -> float:
    """log p(token) at a position of the table, ``<pad>`` excluded, computed here afresh."""
    logits = model.table[position].clone()
    logits[PAD_TOKEN] = -math.inf
    return (logits[model.vocab.tokens.index(name)] - torch.logsumexp(logits, 0)).item()


def test_parallel_decoding_reads_the_arg_max_up_to_the_first_eos(vocab, batch):
    model = ScriptedParallelModel(vocab, [
        {"<eos>": 9.0, "K": 5.0},  # <eos> at position 0 cannot end a peptide: K
        {"G": 5.0, "A": 4.0},
        {"<eos>": 9.0},
        {"W": 9.0},  # after the end: ignored
    ])  # fmt: skip
    decoded = parallel_decode(model, _scripted_batch(batch, 1000.0), 3, mass_aware=False)
    (found,) = decoded.predictions
    assert found.peptide == "KG" and not found.fits_precursor
    expected = [_log_prob(model, 0, "K"), _log_prob(model, 1, "G"), _log_prob(model, 2, "<eos>")]
    assert found.score == pytest.approx(sum(expected) / 3)
    assert decoded.residue_probabilities[0] == pytest.approx([math.exp(v) for v in expected[:2]])


# G is always the favourite and A the runner-up, most closely at position 0; <eos> at 3, or 4.
GGG_PARALLEL = [
    {"G": 5.0, "A": 4.5},
    {"G": 5.0, "A": 3.0},
    {"G": 5.0, "A": 2.0},
    {"<eos>": 5.0, "G": 4.0},
    {"<eos>": 9.0},
]


@pytest.mark.parametrize(
    ("peptide", "expected", "fits"),
    [
        ("GGG", "GGG", True),  # the arg-max fits: kept
        ("GGA", "AGG", True),  # one A: at the least confident position
        ("GAA", "AAG", True),  # two: the two least confident positions
        ("GGGG", "GGGG", True),  # the second most probable length
        ("WWWWW", "GGG", False),  # nothing fits: the arg-max, flagged
    ],
)
def test_the_mass_aware_repair_finds_the_most_probable_fitting_peptide(
    vocab, batch, peptide, expected, fits
):
    model = ScriptedParallelModel(vocab, GGG_PARALLEL)
    spectrum = _scripted_batch(batch, peptide_neutral_mass_da(peptide))
    (found,) = parallel_decode(model, spectrum, 4, precursor_tol_ppm=TOL_PPM).predictions
    assert (found.peptide, found.fits_precursor) == (expected, fits)
    (plain,) = parallel_decode(model, spectrum, 4, mass_aware=False).predictions
    assert plain.peptide == "GGG"


def test_a_repaired_peptide_is_scored_as_the_arg_max_is(vocab, batch):
    model = ScriptedParallelModel(vocab, GGG_PARALLEL)
    spectrum = _scripted_batch(batch, peptide_neutral_mass_da("GGA"))
    (found,) = parallel_decode(model, spectrum, 4, precursor_tol_ppm=TOL_PPM).predictions
    expected = [_log_prob(model, 0, "A"), _log_prob(model, 1, "G"), _log_prob(model, 2, "G"),
                _log_prob(model, 3, "<eos>")]  # fmt: skip
    assert found.peptide == "AGG" and found.score == pytest.approx(sum(expected) / 4)
