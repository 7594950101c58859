"""The ``pepcurr`` command line: Typer commands (``app``), shared options (``options``) and
rich rendering (``render``, one module per domain). Presentation only: every command calls
one library function.
"""
