"""The error boundary of the command line: library errors become one clear line and exit 2.

The library raises typed errors (``PepcurrError``) and pydantic's
``ValidationError``; ``ErrorBoundary`` (the Typer group of ``app``) turns each
into one line per problem on stderr and exit code 2, Ctrl-C into exit 130. A
command line Typer cannot parse (an unknown option, a value out of its bounds)
is one line and exit 2 too, instead of Typer's boxed usage text.
``pepcurr --debug ...`` shows the traceback instead.

Messages and output carry what a user typed (paths, names, values): the
consoles print text as it is, with rich's markup (``[bold]``) and emoji codes
(``:factory:``) off; renderers style with ``rich.text.Text`` instead.
"""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from curriculum_cli.errors import PepcurrError, validation_problem_lines

debug = {"on": False}
"""Set by ``pepcurr --debug``: errors propagate with their traceback."""


def _console(stderr: bool = False):
    """A rich console that prints text as given: no markup, no emoji codes."""
    from rich.console import Console

    return Console(stderr=stderr, markup=False, emoji=False)


def stdout_console():
    return _console()


def stderr_console():
    return _console(stderr=True)


def print_error(message: str) -> None:
    """One error line on stderr, never re-wrapped and never read as rich markup or emoji."""
    stderr_console().print(f"error: {message}", style="bold red", highlight=False, soft_wrap=True)


def print_note(message: str) -> None:
    """A short note on stderr (so that --format json/csv output on stdout stays parseable)."""
    stderr_console().print(message, highlight=False, soft_wrap=True)


# Typer's own parse errors (its vendored click's, or click's in older Typer): found from the
# public BadParameter, so that no private module is imported.
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _print_usage_error(error) -> None:
    """A parse error as one line: the problem and where the command's help is."""
    where = f"; see '{error.ctx.command_path} --help'" if error.ctx is not None else ""
    print_error(" ".join(error.format_message().split()).rstrip(".") + where)


class ErrorBoundary(TyperGroup):
    """Maps library errors to one clear line and exit 2 (``--debug``: traceback)."""

    def make_context(self, info_name, args, parent=None, **extra):
        """Parse the options before the command (``pepcurr --debug``): a bad one is one line."""
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _UsageError as error:
            if type(error).__name__ == "NoArgsIsHelpError":  # bare 'pepcurr': the help
                raise
            _print_usage_error(error)
            raise typer.Exit(error.exit_code) from None

    def invoke(self, ctx):
        from pydantic import ValidationError

        try:
            return super().invoke(ctx)
        except _UsageError as error:  # a command's options and arguments, parsed here
            if type(error).__name__ == "NoArgsIsHelpError":
                raise
            _print_usage_error(error)
            raise typer.Exit(error.exit_code) from None
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
