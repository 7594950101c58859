"""Per-candidate ion evidence: exact on a known peptide, blind to padding, and worth having."""

from __future__ import annotations

import pytest
import torch

from curriculum_cli.model.losses import cross_entropy_loss
from curriculum_cli.model.metrics import residue_accuracy
from curriculum_cli.model.transformer import (
    EVIDENCE_FEATURES,
    MODEL_PRESETS,
    ModelConfig,
    PeptideTransformer,
    candidate_ion_evidence,
)
from curriculum_cli.spectra.batch import SpectrumBatch
from curriculum_cli.spectra.chemistry import peptide_fragment_ladder, peptide_mass_da
from curriculum_cli.spectra.synthetic import SpectrumSettings, generate_batch, generate_spectra
from curriculum_cli.spectra.vocabulary import EOS_TOKEN, PAD_TOKEN, Vocabulary

VOCAB = Vocabulary.default()
MASSES = VOCAB.residue_masses()
FEATURE = {name: i for i, name in enumerate(EVIDENCE_FEATURES)}
PEPTIDE = "PEPTLDEK"


def clean_spectrum(peptide: str, charge: int, extra_padding: int = 0) -> SpectrumBatch:
    """One spectrum with exactly the b/y ions the ladder expects, intensity 0.5, padded."""
    tokens = torch.tensor([VOCAB.encode(peptide)])
    residue_masses = VOCAB.residue_masses(dtype=torch.float64)[tokens]
    lengths = torch.tensor([tokens.shape[1]])
    ladder_mz, valid = peptide_fragment_ladder(residue_masses, lengths, torch.tensor([charge]))
    mz = ladder_mz[valid].sort().values.float()
    n = len(mz) + extra_padding
    peak_mz = torch.zeros(1, n)
    peak_mz[0, : len(mz)] = mz
    mask = torch.zeros(1, n, dtype=torch.bool)
    mask[0, : len(mz)] = True
    return SpectrumBatch(
        mz=peak_mz,
        intensity=mask.float() * 0.5,
        peak_mask=mask,
        precursor_mass_da=peptide_mass_da(residue_masses).float(),
        precursor_charge=torch.tensor([charge]),
        tokens=torch.cat([tokens, torch.tensor([[EOS_TOKEN]])], dim=1),
        lengths=lengths,
    )


def evidence_of(spectrum: SpectrumBatch) -> torch.Tensor:
    """Features ``[T, V, F]`` at every position of the true prefix (teacher forcing)."""
    masses = MASSES[spectrum.tokens[:, :-1]]
    prefix = torch.cat([torch.zeros(1, 1), masses.cumsum(-1)], dim=1)
    config = ModelConfig()
    return candidate_ion_evidence(
        prefix, spectrum.precursor_mass_da, spectrum.precursor_charge, spectrum.mz,
        spectrum.intensity, spectrum.peak_mask, MASSES, config.fragment_tolerance_ppm,
        config.precursor_tolerance_ppm, VOCAB.n_terminal_mask(), 57.021464,
    )[0]  # fmt: skip


@pytest.mark.parametrize("charge", [2, 3])
def test_true_candidate_at_a_true_peak_scores_high_and_wrong_ones_low(charge):
    spectrum = clean_spectrum(PEPTIDE, charge)
    features = evidence_of(spectrum)
    true_ids = VOCAB.encode(PEPTIDE)
    for position, true_id in enumerate(true_ids[:-1]):  # the last residue makes no b/y pair
        for ion in ("b_match", "y_match"):
            assert features[position, true_id, FEATURE[ion]] > 0.99
        assert features[position, true_id, FEATURE["b_intensity"]] == pytest.approx(0.5, abs=0.01)
        wrong = [i for i in range(2, VOCAB.size) if i != true_id]
        b_and_y = features[position, wrong][:, [FEATURE["b_match"], FEATURE["y_match"]]]
        assert (b_and_y.sum(-1) < 1.0).all()  # at most one of the pair by coincidence
        assert (b_and_y.mean(0) < 0.1).all()
    last = len(true_ids) - 1
    assert features[last, true_ids[-1], FEATURE["completes_precursor"]] > 0.99
    assert features[last, true_ids[-1], FEATURE["impossible"]] == 0


def test_doubly_charged_evidence_only_for_precursors_of_charge_3_or_more():
    doubly = [FEATURE[name] for name in ("b++_match", "y++_match", "b++_intensity")]
    assert evidence_of(clean_spectrum(PEPTIDE, 2))[..., doubly].abs().max() == 0
    features = evidence_of(clean_spectrum(PEPTIDE, 3))
    true_ids = VOCAB.encode(PEPTIDE)
    # b2++ of PE (about 114 m/z) and above are inside the window; b1++ of P (49.5) is not.
    for position in range(1, len(true_ids) - 1):
        assert features[position, true_ids[position], FEATURE["b++_match"]] > 0.99


def test_padding_contributes_nothing_and_special_tokens_get_no_ion_evidence():
    plain = evidence_of(clean_spectrum(PEPTIDE, 2))
    padded = clean_spectrum(PEPTIDE, 2, extra_padding=7)
    assert torch.equal(evidence_of(padded), plain)
    # A padded slot sitting exactly on a wrong candidate's b ion is still ignored.
    wrong_b = MASSES[VOCAB.encode("W")[0]].item() + 1.007276
    padded.mz[0, -1] = wrong_b
    padded.intensity[0, -1] = 1.0
    assert torch.equal(evidence_of(padded), plain)
    assert plain[:, PAD_TOKEN].abs().max() == 0
    ion_features = [i for name, i in FEATURE.items() if name.endswith(("match", "intensity"))]
    assert plain[:, EOS_TOKEN][:, ion_features].abs().max() == 0
    # <eos> after the whole peptide completes the precursor; before it, it does not.
    assert plain[-1, EOS_TOKEN, FEATURE["completes_precursor"]] > 0.99
    assert (plain[:-1, EOS_TOKEN, FEATURE["completes_precursor"]] < 0.01).all()


def test_a_spectrum_without_peaks_gives_zero_ion_evidence():
    spectrum = clean_spectrum(PEPTIDE, 3)
    spectrum.peak_mask[:] = False
    features = evidence_of(spectrum)
    assert torch.isfinite(features).all()
    assert features[..., :8].abs().max() < 1e-20  # exp(-50) at most: no peak to match


def test_presets_are_the_evidence_models_and_their_plain_casanovo_stand_ins():
    assert MODEL_PRESETS["tiny"].ion_evidence and MODEL_PRESETS["base"].ion_evidence
    for name in ("casanovo-tiny", "casanovo-base"):
        plain = MODEL_PRESETS[name]
        assert not plain.ion_evidence and not plain.mass_aware_decoder
        sized = MODEL_PRESETS[name.removeprefix("casanovo-")]
        assert (plain.d_model, plain.n_encoder_layers, plain.n_heads) == (
            sized.d_model, sized.n_encoder_layers, sized.n_heads,
        )  # fmt: skip


def _train_steps(config: ModelConfig, steps: int) -> float:
    """Residue accuracy after ``steps`` CE steps on clean spectra; same init seed and batches."""
    settings = SpectrumSettings(min_length=7, max_length=10)
    torch.manual_seed(0)
    model = PeptideTransformer(config, VOCAB)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        batch = generate_batch(settings, 16, VOCAB, generator)
        loss = cross_entropy_loss(model(batch), batch.tokens)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    validation = generate_spectra(settings, 64, VOCAB, seed=1)
    with torch.no_grad():
        return residue_accuracy(model.eval()(validation), validation.tokens)


def test_a_tiny_model_with_ion_evidence_learns_faster_than_without():
    small = dict(d_model=32, n_encoder_layers=1, n_decoder_layers=1, n_heads=2,
                 dim_feedforward=64)  # fmt: skip
    with_evidence = _train_steps(ModelConfig(**small), 40)
    plain = _train_steps(ModelConfig(**small, ion_evidence=False), 40)
    assert with_evidence > 0.5 > 0.25 > plain, (with_evidence, plain)
