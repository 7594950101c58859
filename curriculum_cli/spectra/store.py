"""Real annotated spectra for training: an on-disk store per MGF file.

An MGF file is parsed once (``mgf.stream_training_spectra``: the same checks
and Casanovo peak preprocessing as ``evaluate``) into a *store*: one Arrow IPC
file (Feather v2, uncompressed), rows sorted by peptide length. Training
memory-maps it: a row is read by offset, without decompressing anything and
without per-spectrum Python objects, so memory stays flat in the number of
spectra. Because rows are sorted by length, a stage's length range is one
contiguous row range, and a batch is ``batch_size`` row numbers drawn
uniformly (with replacement) from it with the run's seeded ``torch.Generator``,
whose state the checkpoint already holds: no permutation is kept, and a
resumed run draws the same rows.

A store is valid for its source while the MGF file's size and modification
time, the vocabulary, the peak filter and the charge limit are the ones it was
built with; otherwise it is rebuilt. ``DataFile`` is what ``run.json`` records of
a store's source; ``batch_source`` draws training batches from stores. Users'
documentation: ``docs/real-data.md``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from curriculum_cli.errors import MgfError
from curriculum_cli.spectra.batch import SpectrumBatch
from curriculum_cli.spectra.chemistry import neutral_mass_from_mz
from curriculum_cli.spectra.mgf import SKIP_HINT, stream_training_spectra
from curriculum_cli.spectra.peaks import PeakFilter
from curriculum_cli.spectra.vocabulary import EOS_TOKEN, PAD_TOKEN, Vocabulary

STORE_FORMAT = "pepcurr-store/1"
STORE_DIR_NAME = ".pepcurr-store"
"""Default place of a file's store: this folder beside the MGF file."""

_META_KEY = b"pepcurr"
_FLUSH_ROWS = 1024  # rows buffered per peptide length before they go to disk while indexing
MAX_SKIPPED_SHOWN = 5


class DataFile(BaseModel):
    """An annotated MGF file a run trains or validates on, as ``run.json`` records it."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    path: str = Field(description="The MGF file (absolute path).")
    store: str = Field(description="Its store: the indexed, length-sorted Arrow IPC file.")
    size_bytes: int = Field(ge=0, description="Size of the MGF file when it was indexed.")
    sha256: str = Field(description="SHA-256 of the MGF file's bytes when it was indexed.")
    n_spectra: int = Field(ge=1, description="Valid spectra in the store.")
    n_skipped: int = Field(ge=0, description="Invalid spectra skipped (--skip-invalid).")


def _schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("mz", pa.list_(pa.float32())),  # m/z ascending, after PeakFilter
            ("intensity", pa.list_(pa.float32())),  # base peak = 1
            ("precursor_mz", pa.float64()),  # PEPMASS as written
            ("charge", pa.int8()),
            ("tokens", pa.list_(pa.int16())),  # residue token ids, no <eos>
            ("peptide", pa.string()),  # canonical ProForma
            ("title", pa.string()),
            ("file_index", pa.int64()),  # 0-based position in the MGF file
        ]
    )


def default_store_path(mgf_path: Path, store_dir: Path | None) -> Path:
    """Where the store of ``mgf_path`` lives: ``.pepcurr-store/NAME.arrow`` beside it, or
    in ``store_dir`` (named after the file and a hash of its absolute path)."""
    mgf_path = Path(mgf_path)
    if store_dir is None:
        return mgf_path.parent / STORE_DIR_NAME / f"{mgf_path.name}.arrow"
    tag = hashlib.sha256(str(mgf_path.resolve()).encode()).hexdigest()[:10]
    return Path(store_dir) / f"{mgf_path.name}-{tag}.arrow"


def _build_key(mgf_path: Path, vocab: Vocabulary, peak_filter: PeakFilter, max_charge: int):
    """What a store must match to be used for ``mgf_path`` (else it is rebuilt)."""
    stat = mgf_path.stat()
    return {
        "format": STORE_FORMAT,
        "source_size_bytes": stat.st_size,
        "source_mtime_ns": stat.st_mtime_ns,
        # a file's own token masses decide which token a mass-delta SEQ reads as
        "vocab": [list(vocab.residues), vocab.fold_il]
        + ([[list(pair) for pair in vocab.masses_da]] if vocab.masses_da else []),
        "peak_filter": {k: str(v) for k, v in dataclasses.asdict(peak_filter).items()},
        "max_charge": max_charge,
    }


_LIST_COLUMNS = {"mz": np.float32, "intensity": np.float32, "tokens": np.int64}
_STORE_BATCH_ROWS = 8_192  # rows per record batch of a store (bounds indexing memory)


class SpectrumStore:
    """One MGF file's training spectra, memory-mapped; rows sorted by peptide length.

    Rows are read through numpy views of the mapped record batches (no copy, no
    per-row Python object kept): reading ``k`` rows costs ``O(k)``, whatever the
    store's size.
    """

    def __init__(self, path: Path):
        import pyarrow as pa

        self.path = Path(path)
        reader = pa.ipc.open_file(pa.memory_map(str(self.path)))
        self.meta = json.loads(reader.schema.metadata[_META_KEY])
        self._chunks = [_views(reader.get_batch(i)) for i in range(reader.num_record_batches)]
        self._starts = np.cumsum([0] + [len(chunk["charge"]) for chunk in self._chunks])
        # length -> [first row, end row)
        self._length_rows = {int(k): tuple(v) for k, v in self.meta["length_rows"].items()}

    def __len__(self) -> int:
        return int(self._starts[-1])

    def row_range(self, min_length: int, max_length: int) -> tuple[int, int]:
        """Rows ``[start, end)`` holding peptides of ``min_length``-``max_length`` residues."""
        inside = [rows for length, rows in self._length_rows.items()
                  if min_length <= length <= max_length]  # fmt: skip
        if not inside:
            return 0, 0
        return min(r[0] for r in inside), max(r[1] for r in inside)

    def batch(
        self, rows: np.ndarray, token_width: int | None = None, text: bool = True
    ) -> SpectrumBatch:
        """The spectra at ``rows`` (row numbers) as a CPU batch, with their titles and
        peptides when ``text``; tokens padded to ``token_width`` (default: longest + 1)."""
        rows = np.asarray(rows, dtype=np.int64)
        which = np.searchsorted(self._starts, rows, side="right") - 1
        lists: dict[str, list[np.ndarray]] = {name: [] for name in _LIST_COLUMNS}
        precursor_mz, charges, titles, peptides = [], [], [], []
        for chunk_index, row in zip(which.tolist(), (rows - self._starts[which]).tolist(),
                                    strict=True):  # fmt: skip
            chunk = self._chunks[chunk_index]
            for name in _LIST_COLUMNS:
                offsets, values = chunk[name]
                lists[name].append(values[offsets[row] : offsets[row + 1]])
            precursor_mz.append(chunk["precursor_mz"][row])
            charges.append(chunk["charge"][row])
            if text:
                titles.append(chunk["title"][row].as_py())
                peptides.append(chunk["peptide"][row].as_py())
        mz, peak_counts = _padded(lists["mz"], np.float32, 0)
        intensity, _ = _padded(lists["intensity"], np.float32, 0)
        # tokens: room for <eos> after the longest peptide
        tokens, lengths = _padded(lists["tokens"], np.int64, PAD_TOKEN, token_width, extra=1)
        tokens[np.arange(len(rows)), lengths] = EOS_TOKEN
        charge = torch.tensor(charges, dtype=torch.int64)
        return SpectrumBatch(
            mz=torch.from_numpy(mz),
            intensity=torch.from_numpy(intensity),
            peak_mask=torch.from_numpy(np.arange(mz.shape[1]) < peak_counts[:, None]),
            # as mgf.read_mgf computes it: float64, then rounded once to float32
            precursor_mass_da=neutral_mass_from_mz(
                torch.tensor(precursor_mz, dtype=torch.float64), charge
            ).to(torch.float32),
            precursor_charge=charge,
            tokens=torch.from_numpy(tokens),
            lengths=torch.from_numpy(lengths),
            peptides=peptides if text else None,
            titles=titles if text else None,
        )

    def data_file(self) -> DataFile:
        """What ``run.json`` records of the store's source file."""
        return DataFile(
            path=self.meta["source"],
            store=str(self.path),
            size_bytes=self.meta["key"]["source_size_bytes"],
            sha256=self.meta["sha256"],
            n_spectra=len(self),
            n_skipped=self.meta["n_skipped"],
        )


def _views(record_batch) -> dict:
    """Zero-copy numpy views of a record batch's columns: ``(offsets, values)`` for a list
    column, the values for a number column, the Arrow array for a text column."""
    views = {}
    for name in record_batch.schema.names:
        column = record_batch.column(name)
        if name in _LIST_COLUMNS:
            views[name] = (column.offsets.to_numpy(), column.values.to_numpy())
        elif name in ("title", "peptide"):
            views[name] = column
        else:
            views[name] = column.to_numpy()
    return views


def _padded(arrays: list[np.ndarray], dtype, fill, width: int | None = None, extra: int = 0):
    """Rows of different lengths as a ``[n, width]`` array (default width: the longest +
    ``extra``) and the rows' lengths."""
    counts = np.array([len(a) for a in arrays], dtype=np.int64)
    if width is None:
        width = int(counts.max(initial=0)) + extra
    out = np.full((len(arrays), width), fill, dtype=dtype)
    for row, values in enumerate(arrays):
        out[row, : len(values)] = values
    return out, counts


def open_store(
    mgf_path: Path | str,
    store_path: Path,
    vocab: Vocabulary,
    max_charge: int,
    skip_invalid: bool = False,
    peak_filter: PeakFilter = PeakFilter(),  # noqa: B008 (frozen dataclass: immutable)
    on_index=None,
) -> SpectrumStore:
    """The store of an annotated MGF file, built (or rebuilt, when the file or the settings
    changed) first. ``on_index(path)`` is called before a file is indexed.

    Invalid spectra are an ``MgfError`` naming the first (file, index, TITLE, reason),
    unless ``skip_invalid``; a file with no valid spectrum is always one.
    """
    mgf_path = Path(mgf_path)
    if not mgf_path.is_file():
        raise MgfError(f"{mgf_path}: no such file" if not mgf_path.exists()
                       else f"{mgf_path}: is a directory, expected an MGF file")  # fmt: skip
    key = _build_key(mgf_path, vocab, peak_filter, max_charge)
    store = _existing_store(store_path, key)
    if store is None:
        if on_index is not None:
            on_index(mgf_path)
        build_store(mgf_path, store_path, vocab, max_charge, skip_invalid, peak_filter, key)
        store = SpectrumStore(store_path)
    if store.meta["n_skipped"] and not skip_invalid:
        first = store.meta["skipped"][0]
        raise MgfError(f"{first} ({store.meta['n_skipped']} such spectra){SKIP_HINT}")
    return store


def _existing_store(store_path: Path, key: dict) -> SpectrumStore | None:
    if not store_path.is_file():
        return None
    try:
        store = SpectrumStore(store_path)
    except Exception:  # a damaged or foreign file: rebuild it
        return None
    return store if store.meta.get("key") == key else None


def build_store(
    mgf_path: Path,
    store_path: Path,
    vocab: Vocabulary,
    max_charge: int,
    skip_invalid: bool,
    peak_filter: PeakFilter,
    key: dict | None = None,
) -> None:
    """Parse ``mgf_path`` once into ``store_path`` (written atomically), rows sorted by
    peptide length, with memory bounded by ``_FLUSH_ROWS`` rows per length: rows go to one
    temporary Arrow file per length, concatenated in length order at the end."""
    import pyarrow as pa

    key = key or _build_key(mgf_path, vocab, peak_filter, max_charge)
    try:
        store_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MgfError(
            f"{store_path.parent}: cannot create the store folder ({error.strerror}); "
            "choose another with --store DIR"
        ) from None
    schema = _schema()
    digest = hashlib.sha256()
    buffers: dict[int, list] = {}
    writers: dict[int, tuple[Path, object]] = {}
    counts: dict[int, int] = {}  # rows written per length
    skipped: list[str] = []
    n_skipped = 0

    def flush(length: int) -> None:
        rows = buffers.pop(length, None)
        if not rows:
            return
        if length not in writers:
            part = store_path.with_name(f"{store_path.name}.len{length}.tmp")
            writers[length] = (part, pa.ipc.new_file(str(part), schema))
        counts[length] = counts.get(length, 0) + len(rows)
        columns = list(zip(*rows, strict=True))
        writers[length][1].write_batch(pa.record_batch(
            [pa.array(values, type=field.type) for values, field in zip(columns, schema,
                                                                        strict=True)],
            schema=schema,
        ))  # fmt: skip

    try:
        for index, spectrum in stream_training_spectra(
            mgf_path, vocab, peak_filter, max_charge, digest
        ):
            if isinstance(spectrum, str):
                if not skip_invalid:
                    raise MgfError(spectrum + SKIP_HINT)
                n_skipped += 1
                if len(skipped) < MAX_SKIPPED_SHOWN:
                    skipped.append(spectrum)
                continue
            length = len(spectrum.token_ids)
            buffers.setdefault(length, []).append((
                spectrum.mz.astype(np.float32), spectrum.intensity.astype(np.float32),
                spectrum.precursor_mz, spectrum.charge, spectrum.token_ids, spectrum.peptide,
                spectrum.title, index,
            ))  # fmt: skip
            if len(buffers[length]) >= _FLUSH_ROWS:
                flush(length)
        for length in list(buffers):
            flush(length)
        for _, writer in writers.values():
            writer.close()
        if not writers:
            first = f"; first: {skipped[0]}" if skipped else ""
            raise MgfError(f"{mgf_path}: no valid training spectrum ({n_skipped} skipped){first}")

        length_rows, row = {}, 0
        meta = {"format": STORE_FORMAT, "source": str(mgf_path), "key": key,
                "sha256": digest.hexdigest(), "n_skipped": n_skipped, "skipped": skipped,
                "peak_filter": peak_filter.describe()}  # fmt: skip
        tmp = store_path.with_name(store_path.name + ".tmp")
        parts = [(length, *writers[length]) for length in sorted(writers)]
        for length, _, _ in parts:
            length_rows[str(length)] = [row, row + counts[length]]
            row += counts[length]
        meta["length_rows"] = length_rows
        final_schema = schema.with_metadata({_META_KEY: json.dumps(meta).encode()})
        with pa.ipc.new_file(str(tmp), final_schema) as writer:
            pending: list = []  # record batches of up to _STORE_BATCH_ROWS rows in all

            def write_pending() -> None:
                if pending:
                    table = pa.Table.from_batches(pending).combine_chunks()
                    writer.write_table(table.replace_schema_metadata(final_schema.metadata))
                    pending.clear()

            for _, part, _ in parts:
                for record_batch in _batches(part):
                    if sum(b.num_rows for b in pending) + record_batch.num_rows > _STORE_BATCH_ROWS:
                        write_pending()
                    pending.append(record_batch)
            write_pending()
        os.replace(tmp, store_path)
    finally:
        for part, writer in writers.values():
            try:
                writer.close()
            except Exception:  # already closed
                pass
            part.unlink(missing_ok=True)
        store_path.with_name(store_path.name + ".tmp").unlink(missing_ok=True)


def _batches(part: Path):
    """A temporary part's record batches, read one at a time (not mapped: pages read while
    indexing a large file should not stay in the process)."""
    import pyarrow as pa

    reader = pa.ipc.open_file(pa.OSFile(str(part)))
    for i in range(reader.num_record_batches):
        yield reader.get_batch(i)


def index_files(
    paths: list[Path | str],
    vocab: Vocabulary,
    max_charge: int,
    skip_invalid: bool = False,
    store_dir: Path | None = None,
    on_index=None,
) -> list[DataFile]:
    """Index (or find indexed) each MGF file; what ``run.json`` records of each."""
    records = []
    for path in paths:
        path = Path(path).absolute()
        store = open_store(path, default_store_path(path, store_dir), vocab, max_charge,
                           skip_invalid, on_index=on_index)  # fmt: skip
        records.append(store.data_file())
    return records
