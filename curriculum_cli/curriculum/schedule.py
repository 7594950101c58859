"""The schedule of a run: which stage is in force at each step, gates resolved as it trains.

``Curriculum.stage_at`` gives the planned schedule (every gate open at its
earliest start). ``StageSchedule`` is the state machine the training loop
drives: it hears each validation's gate metrics (``record_validation``) and is
asked before every update whether the next stage starts (``advance``); its
``state_dict`` goes into the checkpoint so that a resumed run decides alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from curriculum_cli.curriculum.schema import (
    GATE_SPLITS,
    GATE_VALIDATION_METRICS,
    Curriculum,
    Stage,
    StartWhen,
)


def gate_metric_values(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """Gate metric name -> value, from one validation's results per split.

    ``results`` maps ``val_easy`` / ``val_hard`` to that split's ``val`` record
    values; metrics a record lacks are left out.
    """
    values = {}
    for suffix, split in GATE_SPLITS.items():
        for metric in GATE_VALIDATION_METRICS:
            if metric in results.get(split, {}):
                values[f"{metric}_{suffix}"] = float(results[split][metric])
    return values


@dataclass(frozen=True)
class StageStart:
    """A stage that begins at ``step``: what the training loop's ``stage`` record says about it.

    ``trigger`` is None for a stage without a gate (the previous stage ran its
    steps), ``"metric"`` when the validation at ``step`` reached the threshold,
    ``"latest_step"`` when the gate's latest step forced it; ``value`` is then
    the value that opened the gate, or the last one seen (None if no validation
    had reported the metric yet): with ``over`` > 1 the mean of the last ``over``
    validations (of fewer, when fewer were made).
    """

    index: int
    step: int
    trigger: str | None = None
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    over: int = 1

    def gate_fields(self) -> dict[str, Any]:
        """The gate's fields of the ``stage`` record (none for an ungated stage); ``over``
        only when the gate averages over several validations."""
        if self.trigger is None:
            return {}
        fields = {
            "trigger": self.trigger,
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
        }
        if self.over > 1:
            fields["over"] = self.over
        return fields


class StageSchedule:
    """The stages of one run as they actually start: the curriculum with its gates resolved.

    The rule (docs/curriculum-format.md, "Gated stages"): stages run in
    order. Stage ``k``'s *earliest start* is stage ``k-1``'s actual start plus
    its ``steps``. A stage without a gate starts at its earliest start. A gated
    stage starts at the first step at or after its earliest start at which
    either a validation at that very step brings the gate's metric to >=
    ``at_least`` (with ``over`` = N: the mean of the metric over the last N
    validations that reported it, once there are N), or the step is >=
    ``latest_step``. The last stage that starts lasts until the run ends.

    Pure Python, no torch: the training loop calls ``record_validation`` after each
    validation and ``advance`` before each update, and keeps ``state_dict`` in
    its checkpoint, so a resumed run makes the same decisions.
    """

    def __init__(self, curriculum: Curriculum):
        self.curriculum = curriculum
        self.starts: list[int] = []
        self.last_validation_step: int | None = None
        self.recent_values: dict[str, list[float]] = {}  # per gate metric, newest last
        gates = [stage.start_when for stage in curriculum.stages if stage.start_when]
        self.window = max((gate.over for gate in gates), default=1)

    @property
    def index(self) -> int:
        """Index of the stage in force (-1 before the first ``advance``)."""
        return len(self.starts) - 1

    @property
    def stage(self) -> Stage:
        """The stage in force."""
        if not self.starts:
            raise RuntimeError("no stage has started; call advance(0) first")
        return self.curriculum.stages[self.index]

    def earliest_next_start(self) -> int | None:
        """Earliest step at which the next stage may start (None: the last stage is in force)."""
        if not self.starts:
            return 0
        if len(self.starts) == len(self.curriculum.stages):
            return None
        return self.starts[-1] + self.stage.steps

    def introductions(self) -> dict[str, int | None]:
        """Step at which each auxiliary loss comes on, as far as known now.

        The actual start of its introducing stage once that has started, else
        ``Curriculum.fixed_introductions`` (None: not known yet, or never).
        """
        fixed = self.curriculum.fixed_introductions()
        return {
            loss: self.starts[index]
            if index is not None and index < len(self.starts)
            else fixed[loss]
            for loss, index in self.curriculum.introducing_stages().items()
        }

    def record_validation(self, step: int, values: dict[str, float]) -> None:
        """Remember the gate metrics of the validation made at ``step`` (``gate_metric_values``)."""
        self.last_validation_step = step
        for metric, value in values.items():
            self.recent_values[metric] = [*self.recent_values.get(metric, []), value][
                -self.window :
            ]

    def gate_value(self, gate: StartWhen) -> tuple[float | None, bool]:
        """The value a gate reads (the mean of its metric over the last ``gate.over``
        validations that reported it, or over fewer if fewer did; None if none did) and
        whether ``gate.over`` validations are in it (only then can it open the gate)."""
        recent = self.recent_values.get(gate.metric, [])[-gate.over :]
        if not recent:
            return None, False
        return sum(recent) / len(recent), len(recent) == gate.over

    def advance(self, step: int) -> StageStart | None:
        """Start the next stage if it starts at ``step``; returns it, or None (no change).

        Call once per step, in order, before the update that takes the run from
        ``step`` to ``step + 1`` (at most one stage can start per step, since
        every stage lasts at least one step).
        """
        earliest = self.earliest_next_start()
        if earliest is None or step < earliest:
            return None
        index = len(self.starts)
        gate = self.curriculum.stages[index].start_when
        if gate is None:
            started = StageStart(index, step)
        else:
            value, full = self.gate_value(gate)
            validated_now = self.last_validation_step == step and full
            if validated_now and value >= gate.at_least:
                trigger = "metric"
            elif step >= gate.latest_step:
                trigger = "latest_step"
            else:
                return None
            started = StageStart(index, step, trigger, gate.metric, value, gate.at_least,
                                 gate.over)  # fmt: skip
        self.starts.append(step)
        return started

    def state_dict(self) -> dict[str, Any]:
        """Plain data (ints, floats, lists, dicts) for the checkpoint."""
        return {
            "starts": list(self.starts),
            "last_validation_step": -1
            if self.last_validation_step is None
            else self.last_validation_step,
            "recent_values": {metric: list(v) for metric, v in self.recent_values.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        starts = [int(step) for step in state["starts"]]
        if len(starts) > len(self.curriculum.stages):
            raise ValueError(
                f"{len(starts)} stage starts for a curriculum of {len(self.curriculum.stages)} "
                "stages; the checkpoint belongs to another curriculum"
            )
        self.starts = starts
        last = int(state["last_validation_step"])
        self.last_validation_step = None if last < 0 else last
        self.recent_values = {
            str(k): [float(v) for v in values] for k, values in state["recent_values"].items()
        }

    def load_planned(self, stage_index: int) -> None:
        """The planned starts of stages ``0..stage_index``, as if no gate held any back."""
        self.starts = self.curriculum.stage_starts()[: stage_index + 1]
        self.last_validation_step = None
        self.recent_values = {}
