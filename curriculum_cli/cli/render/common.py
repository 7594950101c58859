"""What several renderers share: the mark of a missing value, warning lines, tables printed
as wide as their words."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

MISSING = "—"
"""A value that could not be measured, in a table."""


def print_warnings(console: Console, warnings: list[str]) -> None:
    """One yellow ``warning: ...`` line each, unwrapped."""
    for warning in warnings:
        console.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True, highlight=False)


def _longest_word(texts: list[str]) -> int:
    return max((len(word) for text in texts for word in text.split()), default=0)


def _width_for_file(console: Console, table: Table, rows: list[list[str]]) -> int | None:
    """Wide enough that no word is cut off, when the output goes to a file or pipe.

    ``rows`` holds the header and every row, label first; each value column gets
    its longest word as its least width (a column that does not wrap: its longest
    text). A terminal keeps its width (wider lines would wrap); a log file has none,
    and rich's default 80 columns would shorten long arm names such as
    "realistic-current" to "realistic-c…".
    """
    if console.is_terminal:
        return None
    label = max(len(row[0]) for row in rows)
    for index, column in enumerate(table.columns[1:], start=1):
        texts = [row[index] for row in rows]
        column.min_width = max(map(len, texts)) if column.no_wrap else _longest_word(texts)
    padding = 3 * len(table.columns) + 4  # cell padding, separators, edges
    return max(console.width, label + sum(c.min_width or 0 for c in table.columns) + padding)


def print_table(console: Console, table: Table, rows: list[list[str]]) -> None:
    """Print ``table``; to a file or pipe as wide as its words (``rows``: header and cells,
    as text, label first), on a terminal at its width."""
    width = _width_for_file(console, table, rows)
    if width is None:
        console.print(table)
        return
    narrower, console.width = console.width, width  # print() never goes wider than the console
    try:
        console.print(table)
    finally:
        console.width = narrower
