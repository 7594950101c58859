"""The ``pepcurr`` command line: Typer commands (``app``), shared options (``typer_options``) and
rich rendering (``render``). Presentation only: every command calls one library function.
"""
