"""The error boundary of the command line: library errors become one clear line and exit 2.

The library raises typed errors (``PepcurrError``) and pydantic's
``ValidationError``; ``ErrorBoundary`` (the Typer group of ``app``) turns each
into one line per problem on stderr and exit code 2, Ctrl-C into exit 130.
``pepcurr --debug ...`` shows the traceback instead.
"""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from curriculum_cli.errors import PepcurrError, validation_problem_lines

debug = {"on": False}
"""Set by ``pepcurr --debug``: errors propagate with their traceback."""


def stdout_console():
    from rich.console import Console

    return Console()


def stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def print_error(message: str) -> None:
    """One error line on stderr, never re-wrapped and never read as rich markup."""
    stderr_console().print(
        f"error: {message}", style="bold red", markup=False, highlight=False, soft_wrap=True
    )


def print_note(message: str) -> None:
    """A short note on stderr (so that --format json/csv output on stdout stays parseable)."""
    stderr_console().print(message, markup=False, highlight=False, soft_wrap=True)


class ErrorBoundary(TyperGroup):
    """Maps library errors to one clear line and exit 2 (``--debug``: traceback)."""

    def invoke(self, ctx):
        from pydantic import ValidationError

        try:
            return super().invoke(ctx)
        except PepcurrError as error:
            if debug["on"]:
                raise
            for line in str(error).splitlines() or [type(error).__name__]:
                print_error(line)
            raise typer.Exit(2) from None
        except ValidationError as error:
            if debug["on"]:
                raise
            for line in validation_problem_lines(error):
                print_error(line)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            print_error("interrupted")
            raise typer.Exit(130) from None
