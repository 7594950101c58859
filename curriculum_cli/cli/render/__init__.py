"""Rich presentation of pepcurr's results, one module per domain; no computation, no decision.

- ``curricula``: a curriculum's summary, the preset list, schedules on one step axis
- ``spectra``: the inspect report of an MGF file, what ``split`` and ``annotate`` wrote
- ``progress``: training progress and a finished run's summary
- ``comparison``: ``compare`` and ``ab`` as a rich table, JSON, CSV or Markdown
- ``evaluation``: what ``evaluate`` and ``predict`` found and wrote
- ``realism``: a calibration, and real spectra beside synthetic ones
- ``common``: what several of them share

Each renderer takes a ``rich.console.Console`` (the CLI passes one; tests pass one that
records) and a result the library computed (its dataclass), and formats what the
analysis decided: which verdict heads a comparison, for one, is ``Comparison.overall_kind``.
"""
