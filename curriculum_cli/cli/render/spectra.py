"""Spectra files: the inspect report of an MGF file, what ``split`` and ``annotate`` wrote."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from curriculum_cli.cli.render.common import print_warnings
from curriculum_cli.spectra.stage_data import MAX_PEPTIDE_LENGTH, MIN_PEPTIDE_LENGTH

if TYPE_CHECKING:
    from rich.console import Console

    from curriculum_cli.spectra.annotate import AnnotationResult
    from curriculum_cli.spectra.inspection import MgfReport, ValueRange
    from curriculum_cli.spectra.split import SplitResult

MAX_SKIPPED_SHOWN = 5
"""How many skipped-spectrum messages ``render_inspect_report`` prints before summarising."""


def _range(summary: ValueRange) -> str:
    return f"{summary.min:g}–{summary.max:g} (median {summary.median:g})"


def render_inspect_report(console: Console, report: MgfReport) -> None:
    """The ``inspect_mgf`` report as a two-column table, skipped spectra as warnings."""
    table = Table(
        title=f"{report.path}: {report.n_spectra:,} "
        + ("spectrum" if report.n_spectra == 1 else "spectra"),
        title_justify="left",
        box=None,
        show_header=False,
        padding=(0, 1),
        pad_edge=False,
    )
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("skipped", f"{report.n_skipped:,} invalid spectra")
    charges = ", ".join(f"{z}+: {n:,}" for z, n in report.charges.items())
    table.add_row("charges", charges)
    table.add_row("peaks in file", _range(report.peaks_in_file))
    table.add_row("peaks used", f"{_range(report.peaks_used)}; {report.preprocessing}")
    n_annotated = report.n_annotated
    table.add_row("annotated (SEQ)", f"{n_annotated:,} of {report.n_spectra:,}")
    if report.peptide_length is not None:
        table.add_row("peptide length", f"{_range(report.peptide_length)} residues")
        mods = ", ".join(f"{name} {n:,}" for name, n in report.modifications.items())
        table.add_row("modifications", mods or "none")
        outside, lengths = report.n_outside_vocabulary, report.n_outside_lengths
        table.add_row(
            "outside vocabulary",
            f"{outside:,} peptides hold {', '.join(report.residues_outside_vocabulary)} "
            "(no training target)"
            if outside
            else "none"
            if lengths
            else "none (every peptide is a training target)",
        )
        if lengths:
            table.add_row(
                "outside lengths",
                f"{lengths:,} peptides of fewer than {MIN_PEPTIDE_LENGTH} or more than "
                f"{MAX_PEPTIDE_LENGTH} residues (no stage trains on them)",
            )
    error = report.precursor_error_ppm
    if error is not None:
        table.add_row(
            "precursor error",
            f"median {error.median:+.2f} ppm, median |error| {error.median_abs:.2f} ppm, "
            f"worst {error.worst:+.2f} ppm (TITLE={error.worst_title}); "
            f"{error.n_over_tolerance:,} over {error.tolerance_ppm:g} ppm",
        )
    coverage = report.fragment_coverage
    if coverage is not None:
        table.add_row(
            "b/y ions found",
            f"mean {coverage.mean:.0%}, median {coverage.median:.0%}, "
            f"lowest {coverage.min:.0%} (TITLE={coverage.min_title}) "
            f"within {coverage.tolerance_da:g} Da",
        )
    console.print(table)
    skipped = report.skipped
    for message in skipped[:MAX_SKIPPED_SHOWN]:
        console.print(Text(f"skipped: {message}", style="yellow"), soft_wrap=True)
    if len(skipped) > MAX_SKIPPED_SHOWN:
        console.print(
            Text(f"... and {len(skipped) - MAX_SKIPPED_SHOWN:,} more skipped", style="yellow")
        )


def render_split(console: Console, result: SplitResult) -> None:
    """What ``pepcurr split`` wrote (a ``split.SplitResult``) and the inputs' shared groups."""
    groups = "backbones" if result.group == "backbone" else "peptides"
    for path, (n_spectra, n_groups) in result.inputs.items():
        console.print(f"read {path}: {n_spectra:,} spectra, {n_groups:,} {groups}",
                      highlight=False, soft_wrap=True)  # fmt: skip
    for overlap in result.overlaps:
        examples = ", ".join(overlap.examples)
        console.print(
            Text(f"warning: {overlap.first} and {overlap.second} share {overlap.n_peptides:,} "
                 f"{groups} (I = L), e.g. {examples}", style="yellow"),
            soft_wrap=True, highlight=False,
        )  # fmt: skip
    for split, path in result.files.items():
        where = f"wrote {path}" if path is not None else "no file (fraction 0)"
        console.print(
            f"{split:>5}: {result.n_spectra[split]:,} spectra, {result.n_peptides[split]:,} "
            f"{groups} ({result.fractions[split]:.0%} asked); {where}",
            highlight=False, soft_wrap=True,
        )  # fmt: skip
    if result.group == "backbone":
        rule = ("backbone is in two splits (grouped by unmodified sequence, I = L: a peptide "
                "and its modified forms stay together)")  # fmt: skip
    else:
        rule = "peptide is in two splits (grouped by peptide: I = L, modifications count)"
    console.print(f"no {rule}; seed {result.seed}", highlight=False, soft_wrap=True)
    print_warnings(console, result.warnings)


def render_annotation(console: Console, result: AnnotationResult, vocab: str) -> None:
    """What ``pepcurr annotate`` wrote (an ``annotate.AnnotationResult``): every PSM counted."""
    run = f" of run {result.run}" if result.run else ""
    qvalues = " (q-values computed from scores, target-decoy)" if result.qvalues_computed else ""
    lines = [
        f"read {result.n_psms:,} PSMs{run} from {result.psms} ({result.psm_format}) and "
        f"{result.n_spectra:,} MS/MS spectra from {result.spectra}",
        f"  {result.n_decoys:,} decoys",
        f"  {result.n_above_fdr:,} targets above q-value {result.fdr:g}{qvalues}",
    ]
    if result.n_other_run:
        lines.append(f"  {result.n_other_run:,} of other runs")
    spelled = ", ".join(f"{name} {count}" for name, count in result.unspellable.items())
    lines.append(f"  {result.n_unspellable:,} with a modification vocabulary {vocab} cannot spell"
                 + (f" ({spelled})" if spelled else ""))  # fmt: skip
    lines.append(f"  {result.n_duplicate:,} not the best PSM of their spectrum")
    examples = ", ".join(result.no_spectrum_examples)
    lines.append(f"  {result.n_no_spectrum:,} found no spectrum"
                 + (f" (e.g. {examples})" if examples else ""))  # fmt: skip
    if result.n_no_precursor:
        lines.append(f"  {result.n_no_precursor:,} whose spectrum lacks a precursor m/z or charge")
    lines.append(f"  {result.n_written:,} annotate a spectrum: wrote {result.output}")
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)
    if result.outside_vocabulary:
        names = ", ".join(f"{n} {c}" for n, c in result.outside_vocabulary.items())
        console.print(Text(f"warning: written peptides hold tokens vocabulary {vocab} lacks "
                           f"({names}): they train no target with it; --vocab casanovo or a "
                           "vocabulary file has them", style="yellow"),
                      highlight=False, soft_wrap=True)  # fmt: skip
