"""The ``pepcurr`` command line: Typer commands (``app``), shared options (``typer_options``),
the error boundary (``boundary``: a library error as one line, exit 2) and rich rendering
(``render``, one module per domain). Presentation only: every command calls one library
function.
"""
