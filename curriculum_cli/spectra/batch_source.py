"""What the training loop draws each batch from: real spectra by length range, synthetic
spectra from a stage's settings, or a mix.

``RealSpectra`` pools the stores of several MGF files (``store``) and draws rows
uniformly, with replacement, from those whose peptides fit a stage's length
range, with the run's seeded ``torch.Generator`` (so the checkpoint's generator
state fixes the order). ``BatchSource`` makes each step's batch:
``round(real_fraction * batch_size)`` real spectra, the rest synthetic (from the
curriculum's world when it has one: a batch of similar peak counts, ``simulator``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from curriculum_cli.errors import MgfError, RunError
from curriculum_cli.spectra.batch import SpectrumBatch, concat_batches
from curriculum_cli.spectra.stage_data import StageData
from curriculum_cli.spectra.store import DataFile, SpectrumStore, open_store
from curriculum_cli.spectra.synthetic import SpectrumSettings, generate_batch
from curriculum_cli.spectra.vocabulary import Vocabulary


def load_real_spectra(
    records: list[DataFile], vocab: Vocabulary, max_charge: int, skip_invalid: bool,
    on_index=None,
) -> RealSpectra:  # fmt: skip
    """The stores of a run's recorded files (rebuilt if their MGF changed in place); a
    ``RunError`` when a file's content is no longer what the run recorded."""
    stores = []
    for record in records:
        store = open_store(record.path, Path(record.store), vocab, max_charge, skip_invalid,
                           on_index=on_index)  # fmt: skip
        if store.meta["sha256"] != record.sha256:
            raise RunError(
                f"{record.path}: the file changed since the run recorded it (SHA-256 "
                f"{record.sha256[:12]}... now {store.meta['sha256'][:12]}...); the run cannot "
                "go on exactly; start a new run"
            )
        stores.append(store)
    return RealSpectra(stores)


class RealSpectra:
    """The stores of several MGF files as one pool of rows, drawn from by length range."""

    def __init__(self, stores: list[SpectrumStore]):
        self.stores = stores

    def count(self, min_length: int, max_length: int) -> int:
        """Spectra with peptides of ``min_length``-``max_length`` residues, over all files."""
        return sum(end - start for start, end in self._ranges(min_length, max_length))

    def _ranges(self, min_length: int, max_length: int) -> list[tuple[int, int]]:
        return [store.row_range(min_length, max_length) for store in self.stores]

    def draw(self, n: int, min_length: int, max_length: int, generator: torch.Generator,
             token_width: int) -> SpectrumBatch:  # fmt: skip
        """``n`` spectra drawn uniformly with replacement (``generator``) from the rows
        whose peptides have ``min_length``-``max_length`` residues; a CPU batch."""
        ranges = self._ranges(min_length, max_length)
        sizes = np.array([end - start for start, end in ranges], dtype=np.int64)
        picks = torch.randint(0, int(sizes.sum()), (n,), generator=generator,
                              device=generator.device).cpu().numpy()  # fmt: skip
        bounds = np.cumsum(sizes)
        which = np.searchsorted(bounds, picks, side="right")
        parts = []
        for i, store in enumerate(self.stores):
            mine = picks[which == i]
            if len(mine):
                rows = mine - (bounds[i] - sizes[i]) + ranges[i][0]
                parts.append(store.batch(rows, token_width))
        return concat_batches(parts)

    def evenly_spaced(self, n: int, min_length: int, max_length: int) -> SpectrumBatch:
        """Up to ``n`` spectra of ``min_length``-``max_length`` residues, evenly spaced over
        each file's length-sorted rows (every length represented); no randomness."""
        ranges = self._ranges(min_length, max_length)
        total = sum(end - start for start, end in ranges)
        parts = []
        for store, (start, end) in zip(self.stores, ranges, strict=True):
            share = (end - start) if total <= n else round(n * (end - start) / total)
            if share:
                rows = start + (np.arange(share) * (end - start)) // share
                parts.append(store.batch(rows.astype(np.int64)))
        return concat_batches(parts)


class BatchSource:
    """Each training step's batch: ``round(real_fraction * batch_size)`` real spectra of the
    stage's length range, the rest synthetic from the stage's settings, all from the
    run's one data generator (so the checkpoint's generator state fixes the order)."""

    def __init__(self, batch_size: int, vocab: Vocabulary, device: torch.device,
                 real: RealSpectra | None,
                 settings: Callable[[StageData], SpectrumSettings] = SpectrumSettings.from_stage,
                 ):  # fmt: skip
        self.batch_size = batch_size
        self.vocab = vocab
        self.device = device
        self.real = real
        self.settings = settings  # a stage's generator settings (the run's world, residues)

    def check(self, stages) -> None:
        """A ``MgfError`` for a stage that asks for real spectra its length range lacks."""
        for index, stage in enumerate(stages):
            if stage.real_fraction > 0 and self.real is not None:
                if self.real.count(stage.min_length, stage.max_length) == 0:
                    raise MgfError(
                        f"stage {index} '{stage.name}' draws real spectra of peptides with "
                        f"{stage.min_length}-{stage.max_length} residues, and --train-data "
                        "holds none; widen the stage's lengths or set its real_fraction to 0"
                    )

    def draw(self, stage, generator: torch.Generator) -> SpectrumBatch:
        n_real = round(stage.real_fraction * self.batch_size) if self.real is not None else 0
        parts = []
        if n_real:
            real = self.real.draw(n_real, stage.min_length, stage.max_length, generator,
                                  token_width=stage.max_length + 1)  # fmt: skip
            parts.append(dataclasses.replace(real, peptides=None, titles=None).to(self.device))
        if n_real < self.batch_size:
            parts.append(generate_batch(self.settings(stage), self.batch_size - n_real,
                                        self.vocab, generator, self.device,
                                        bucketed=True))  # fmt: skip
        return concat_batches(parts)
