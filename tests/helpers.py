"""Test helpers shared by several test modules: a tiny model and curricula, MGF cases.

Fixtures live in ``conftest.py``; plain values and functions live here, so a
test module imports them explicitly (``from tests.helpers import ...``).
"""

from __future__ import annotations

from pathlib import Path

from curriculum_cli.curriculum.schema import Curriculum, Stage, StartWhen
from curriculum_cli.model.transformer import ModelConfig
from curriculum_cli.spectra.vocabulary import Vocabulary
from curriculum_cli.training.config import RunConfig
from curriculum_cli.training.resolve import build_run_config
from curriculum_cli.training.settings import TrainOptions

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = REPO_ROOT / "tests" / "data"

#: A model small enough that a test run of 100 steps takes a second or two on 2 cores.
TEST_MODEL = ModelConfig(
    d_model=32, n_encoder_layers=1, n_decoder_layers=1, n_heads=2, dim_feedforward=64
)

#: The standard vocabulary plus M[Oxidation]: a vocabulary that is neither named one.
OXIDATION_VOCAB = Vocabulary(Vocabulary.default().residues + ("M[Oxidation]",))

#: ``--model`` value that builds ``TEST_MODEL`` through the factory interface (for CLI tests).
TEST_MODEL_FACTORY = f"{REPO_ROOT / 'tests' / 'helpers.py'}:test_model"


def test_model(vocab):
    """Factory of ``TEST_MODEL`` (``--model tests/helpers.py:test_model``)."""
    from curriculum_cli.model.transformer import PeptideTransformer

    return PeptideTransformer(TEST_MODEL, vocab)


test_model.__test__ = False  # a factory, not a pytest test


def two_stage_curriculum(
    foundation_steps: int = 20,
    second_steps: int = 20,
    spectrum: float = 0.2,
    precursor: float = 0.02,
) -> Curriculum:
    """Pure CE first, then both auxiliary losses on, with a little noise."""
    return Curriculum(
        name="test_two_stage",
        description="tiny test curriculum",
        stages=[
            Stage(name="foundation", steps=foundation_steps, min_length=6, max_length=8),
            Stage(
                name="physics",
                steps=second_steps,
                min_length=6,
                max_length=9,
                noise_peaks=2,
                peak_dropout=0.05,
                mass_error_ppm=5.0,
                spectrum_loss_weight=spectrum,
                precursor_loss_weight=precursor,
            ),
        ],
    )


def gated_curriculum(
    spectrum_at_least: float = 0.0,
    spectrum_latest: int = 30,
    precursor_at_least: float = 0.0,
    precursor_latest: int = 38,
) -> Curriculum:
    """40 steps in three stages with the same data; the second and third are gated.

    CE only for 5 steps; then the spectrum loss, gated on ``token_accuracy_easy``
    (which rises steadily in a few dozen steps, while residue accuracy barely
    moves), for at least 6 steps; then the precursor loss too, gated on
    ``residue_accuracy_hard``, to the end. Planned starts 0, 5, 11.
    """
    data = dict(min_length=6, max_length=8, noise_peaks=1)
    return Curriculum(
        name="test_gated",
        description="tiny gated test curriculum",
        stages=[
            Stage(name="foundation", steps=5, **data),
            Stage(
                name="spectrum",
                steps=6,
                start_when=StartWhen(
                    metric="token_accuracy_easy",
                    at_least=spectrum_at_least,
                    latest_step=spectrum_latest,
                ),
                spectrum_loss_weight=0.2,
                **data,
            ),
            Stage(
                name="precursor",
                steps=29,
                start_when=StartWhen(
                    metric="residue_accuracy_hard",
                    at_least=precursor_at_least,
                    latest_step=precursor_latest,
                ),
                spectrum_loss_weight=0.2,
                precursor_loss_weight=0.02,
                **data,
            ),
        ],
    )


def tiny_run_config(curriculum: Curriculum | None = None, **overrides) -> RunConfig:
    """A CPU run config with the test model (through its factory) and small validation sets."""
    settings = dict(
        model=TEST_MODEL_FACTORY,
        device="cpu",
        batch_size=8,
        lr=2e-3,
        val_size=16,
        decode_size=4,
        val_every=10,
        grad_every=10,
        checkpoint_every=10,
        log_every=5,
    )
    settings.update(overrides)
    return build_run_config(curriculum or two_stage_curriculum(), **settings)


def named_curriculum(name: str, foundation_steps: int, second_steps: int) -> Curriculum:
    """``two_stage_curriculum`` under another name (the name labels a compare column)."""
    curriculum = two_stage_curriculum(foundation_steps, second_steps)
    return curriculum.model_copy(update={"name": name})


#: Two A/B arms of 40 steps: both auxiliary losses on at step 20 ("late") or 10 ("early").
AB_ARMS = {"late": (20, 20), "early": (10, 30)}

#: run_ab options that reproduce the ``ab_runs`` fixture's settings (tiny_run_config);
#: ``AB_OPTIONS.command_words()`` are its flags.
AB_OPTIONS = TrainOptions(model=TEST_MODEL_FACTORY, batch_size=8, lr=2e-3, device="cpu",
                          val_every=10, grad_every=10, val_size=16, decode_size=4,
                          decode_every=2, log_every=5, checkpoint_every=10)  # fmt: skip


def one_error_line(result) -> str:
    """The one ``error: ...`` line on stderr of a command that exits 2 (a ``CliRunner`` result)."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def fabricate_run(
    run_dir: Path,
    curriculum: str | Curriculum,
    seed: int,
    accuracy: dict[int, float],
    extra: tuple[dict, ...] = (),
) -> Path:
    """A run directory written by hand, without training: the ``run.json`` of a test run
    of ``curriculum`` (a name: the 40-step two-stage one under that name) and a
    ``metrics.jsonl`` whose validations (val_easy and val_hard alike) have residue and
    token accuracy ``accuracy[step]``, then ``extra`` records (e.g. ``stage`` ones), then a
    ``finished`` end record at the last step of ``accuracy``.

    For feeding ``compare`` chosen values: its verdicts on them can be worked out by hand.
    """
    import json

    from curriculum_cli.training.config import run_json

    if isinstance(curriculum, str):
        curriculum = named_curriculum(curriculum, 20, 20)
    config = tiny_run_config(curriculum, seed=seed)
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps(run_json(config, {"pepcurr": "test"})))
    records = [
        {"event": "val", "step": step, "split": split, "residue_accuracy": value,
         "token_accuracy": value}
        for step, value in sorted(accuracy.items())
        for split in ("val_easy", "val_hard")
    ] + list(extra)  # fmt: skip
    records.append({"event": "end", "step": max(accuracy), "status": "finished"})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run_dir


# ----------------------------------------------------------------------------
# MGF files: the real annotated sample and one small file per kind of bad input
# ----------------------------------------------------------------------------

SAMPLE_MGF = TEST_DATA / "casanovo_sample_preprocessed_spectra.mgf"
"""128 real annotated spectra from Casanovo's repository (see tests/data/README.md)."""

HCD_MGF = REPO_ROOT / "data" / "massivekb_ms2pip_250.mgf"
"""250 annotated MassIVE-KB HCD spectra with raw peaks (see data/README.md)."""

_GOOD_SPECTRUM = (
    "BEGIN IONS\nTITLE=good\nPEPMASS=400.2\nCHARGE=2+\n100.0 1.0\n200.0 0.5\nEND IONS\n"
)

#: name -> (MGF text, the spectrum index and TITLE the error must name, words it must hold).
BAD_MGF_CASES = {
    "truncated": (
        _GOOD_SPECTRUM + "BEGIN IONS\nTITLE=cut\nPEPMASS=400.2\nCHARGE=2+\n100.0 1.0\n",
        "spectrum 1 (TITLE=cut",
        "truncated",
    ),
    "no_peaks": (
        _GOOD_SPECTRUM + "BEGIN IONS\nTITLE=empty\nPEPMASS=400.2\nCHARGE=2+\nEND IONS\n",
        "spectrum 1 (TITLE=empty",
        "no peaks",
    ),
    "non_numeric_peak": (
        _GOOD_SPECTRUM
        + "BEGIN IONS\nTITLE=words\nPEPMASS=400.2\nCHARGE=2+\n100.0 high\nEND IONS\n",
        "spectrum 1 (TITLE=words",
        "'100.0 high'",
    ),
    "missing_intensity": (
        _GOOD_SPECTRUM
        + "BEGIN IONS\nTITLE=half\nPEPMASS=400.2\nCHARGE=2+\n100.0\n200 1\nEND IONS\n",
        "spectrum 1 (TITLE=half",
        "no intensity",
    ),
    "missing_pepmass": (
        _GOOD_SPECTRUM + "BEGIN IONS\nTITLE=nomass\nCHARGE=2+\n100.0 1.0\nEND IONS\n",
        "spectrum 1 (TITLE=nomass",
        "PEPMASS",
    ),
    "bad_pepmass": (
        _GOOD_SPECTRUM + "BEGIN IONS\nTITLE=badmass\nPEPMASS=heavy\nCHARGE=2+\n100 1\nEND IONS\n",
        "spectrum 1 (TITLE=badmass",
        "PEPMASS=heavy",
    ),
    "missing_charge": (
        _GOOD_SPECTRUM + "BEGIN IONS\nTITLE=nocharge\nPEPMASS=400.2\n100.0 1.0\nEND IONS\n",
        "spectrum 1 (TITLE=nocharge",
        "CHARGE",
    ),
    "unknown_residue": (
        _GOOD_SPECTRUM
        + "BEGIN IONS\nTITLE=odd\nPEPMASS=400.2\nCHARGE=2+\nSEQ=PEPXK\n100.0 1.0\nEND IONS\n",
        "spectrum 1 (TITLE=odd",
        "'X'",
    ),
    "unknown_modification": (
        _GOOD_SPECTRUM
        + "BEGIN IONS\nTITLE=mod\nPEPMASS=400.2\nCHARGE=2+\nSEQ=PEM[Foo]K\n100.0 1.0\nEND IONS\n",
        "spectrum 1 (TITLE=mod",
        "M[Foo]",
    ),
}

#: name -> (file content, words the error must hold): files that are not MGF at all.
NOT_MGF_CASES = {
    "text": ("just some words\nand more words\n", "not an MGF file"),
    "empty": ("", "empty file"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00binary", "binary file"),
}
