"""What spectra a curriculum stage trains on: ``StageData``, its peptide lengths and noise.

The spectra wing owns these fields, their bounds and their meaning, because its
generators are what reads them (``synthetic.SpectrumSettings.from_stage``; in a
world, the noise fields are strengths relative to ``world.Reference``). A curriculum's
``Stage`` (``curriculum.schema``) is a ``StageData`` with a name, steps, a gate and loss
weights; in a curriculum file the fields below sit flat in each stage, between
``start_when`` and the loss weights (docs/curriculum-format.md).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

MIN_PEPTIDE_LENGTH = 6
"""Shortest peptide (residues) the synthetic generator and the model support."""

MAX_PEPTIDE_LENGTH = 40
"""Longest peptide (residues): bounds the decoder's positions and the padded batch width."""

MAX_SPECTRA_AT_ONCE = 100_000
"""Most spectra drawn in one go (a validation set, ``pepcurr spectra -n``, ``compare
--rescore``): a batch is held in memory whole, about 14 KB a spectrum with its MGF text
(1.4 GB at the bound). For more, draw several files with different seeds."""


class StageData(BaseModel):
    """A stage's data settings: the peptide lengths and noise of the spectra it trains on."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    min_length: int = Field(
        ge=MIN_PEPTIDE_LENGTH,
        le=MAX_PEPTIDE_LENGTH,
        description="Shortest synthetic peptide of the stage, in residues.",
    )
    max_length: int = Field(
        ge=MIN_PEPTIDE_LENGTH,
        le=MAX_PEPTIDE_LENGTH,
        description="Longest synthetic peptide of the stage, in residues (inclusive).",
    )
    noise_peaks: int = Field(
        default=0,
        ge=0,
        le=500,
        description="Random noise peaks added to each spectrum (count).",
    )
    peak_dropout: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Probability that each true fragment peak is removed (fraction, 0-1).",
    )
    mass_error_ppm: float = Field(
        default=0.0,
        ge=0.0,
        le=100.0,
        allow_inf_nan=False,
        description="Standard deviation of the m/z error added to each peak, in ppm.",
    )
    intensity_variation: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Relative spread of peak intensities around their nominal value (0-1).",
    )

    @model_validator(mode="after")
    def _lengths_in_order(self) -> StageData:
        if self.min_length > self.max_length:
            raise PydanticCustomError(
                "length_order",
                "min_length ({min_length}) is greater than max_length ({max_length}); "
                "make min_length <= max_length",
                {"min_length": self.min_length, "max_length": self.max_length},
            )
        return self


DATA_FIELDS = tuple(StageData.model_fields)
"""Stage fields that say what spectra the stage trains on (the rest are its steps and weights)."""

NOISE_FIELDS = tuple(name for name in DATA_FIELDS if name not in ("min_length", "max_length"))
"""Stage fields that make spectra harder; a curriculum normally only raises them."""
