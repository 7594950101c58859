"""Training stability rules: non-finite steps are skipped and counted, loss spikes counted.

The rules, applied to each optimizer step in order:

- **skip**: a step whose loss or gradient norm is not finite is not applied
  (the loop's optimizer skips it on the device) and is counted; after
  ``max_consecutive_skips`` of them in a row training stops.
- **spike**: an applied step whose total loss exceeds ``spike_factor`` times
  the median total loss of the last ``spike_window`` applied steps is a spike.
  The median is recomputed with the *current* loss weights from the stored
  unweighted terms, so a curriculum switching a loss on is not a spike: only a
  jump against what the same objective gave recently is. No spike is called
  before 20 steps are known.

``StabilityMonitor`` holds the counters and the recent terms (all of it goes
into the checkpoint, so a resumed run counts exactly as an uninterrupted one).
The loop feeds it plain numbers at logging steps, when it reads the device
anyway; the monitor never touches a tensor.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass

from curriculum_cli.curriculum.schema import AUXILIARY_LOSSES

MIN_SPIKE_HISTORY = 20
"""Applied steps needed before a spike can be called."""


@dataclass(frozen=True)
class StepOutcome:
    """One optimizer step as the rules see it: its values read from the device."""

    step: int  # optimizer updates completed after this one
    loss: float  # the weighted total loss
    terms: tuple[float, ...]  # unweighted (ce, spectrum, precursor)
    grad_norm: float
    weights: dict[str, float]  # auxiliary loss name -> curriculum weight at this step


@dataclass(frozen=True)
class StabilityEvent:
    """A ``skip`` or ``spike`` record for the metrics log."""

    event: str
    step: int
    fields: dict


class StabilityMonitor:
    """Applies the skip and spike rules (see the module docstring) step by step."""

    def __init__(self, max_consecutive_skips: int, spike_factor: float, spike_window: int):
        self.max_consecutive_skips = max_consecutive_skips
        self.spike_factor = spike_factor
        self.skipped = 0
        self.consecutive_skipped = 0
        self.spikes = 0
        self.recent_terms: deque[tuple[float, ...]] = deque(maxlen=spike_window)

    @property
    def must_stop(self) -> bool:
        """True once ``max_consecutive_skips`` steps in a row were not finite."""
        return self.consecutive_skipped >= self.max_consecutive_skips

    def observe(self, outcome: StepOutcome) -> StabilityEvent | None:
        """Apply the rules to one step; the ``skip`` or ``spike`` event it makes, if any."""
        if not (math.isfinite(outcome.loss) and math.isfinite(outcome.grad_norm)):
            self.skipped += 1
            self.consecutive_skipped += 1
            reason = "non-finite loss" if not math.isfinite(outcome.loss) else "non-finite gradient"
            return StabilityEvent(
                "skip", outcome.step, {"reason": reason, "consecutive": self.consecutive_skipped}
            )
        self.consecutive_skipped = 0
        median = self.reweighted_median(outcome.weights)
        self.recent_terms.append(outcome.terms)
        if median is not None and outcome.loss > self.spike_factor * median:
            self.spikes += 1
            return StabilityEvent("spike", outcome.step, {"loss": outcome.loss, "median": median})
        return None

    def reweighted_median(self, weights: dict[str, float]) -> float | None:
        """Median total loss of the recent applied steps under ``weights``; None if too few."""
        if len(self.recent_terms) < MIN_SPIKE_HISTORY:
            return None
        factors = (1.0, *(weights[name] for name in AUXILIARY_LOSSES))
        return statistics.median(
            sum(f * t for f, t in zip(factors, terms, strict=True)) for terms in self.recent_terms
        )

    def state_dict(self) -> dict:
        return {
            "counters": {
                "skipped": self.skipped,
                "consecutive_skipped": self.consecutive_skipped,
                "spikes": self.spikes,
            },
            "recent_terms": [list(terms) for terms in self.recent_terms],
        }

    def load_state_dict(self, state: dict) -> None:
        counters = state["counters"]
        self.skipped = int(counters["skipped"])
        self.consecutive_skipped = int(counters["consecutive_skipped"])
        self.spikes = int(counters["spikes"])
        self.recent_terms.clear()
        self.recent_terms.extend(tuple(float(t) for t in terms) for terms in state["recent_terms"])
