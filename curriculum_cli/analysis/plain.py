"""Results as plain JSON-able data: NaN and infinities as None, numpy scalars as Python ones.

The one conversion every ``--format json`` writer and ``Verdict.to_dict`` use, so that
``json.dumps`` never writes ``NaN`` (not JSON) and never meets a numpy type.
"""

from __future__ import annotations

import math


def plain(value):
    """``value`` as plain data: a dict's values converted in turn (recursively), a numpy
    scalar as its Python value, a NaN or infinite float as None; anything else as is."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
