"""What several renderers share: the mark of a missing value, warning lines."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console

MISSING = "—"
"""A value that could not be measured, in a table."""


def print_warnings(console: Console, warnings: list[str]) -> None:
    """One yellow ``warning: ...`` line each, unwrapped."""
    for warning in warnings:
        console.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True, highlight=False)
