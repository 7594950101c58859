"""Typed errors that the CLI turns into one clear line and exit code 2.

The library raises these (never ``SystemExit``) with a message that says what
is wrong and, where possible, how to fix it. ``cli.main`` maps each one to a
line on stderr; ``--debug`` shows the traceback instead.
"""


class PepcurrError(Exception):
    """Base class of every error pepcurr reports to a user."""


class CurriculumError(PepcurrError):
    """A curriculum file or preset is missing, unreadable or invalid."""


class PeptideError(PepcurrError):
    """A peptide string holds a residue or modification pepcurr does not know."""


class MgfError(PepcurrError):
    """An MGF file is missing, malformed, or holds an invalid spectrum."""


class RunError(PepcurrError):
    """A run directory, checkpoint or metrics log is missing, corrupt or inconsistent."""


class TrainingError(PepcurrError):
    """Training cannot go on (e.g. too many non-finite steps in a row)."""
