"""Training: progress while a run trains (``train``, ``ab``) and a finished run's summary."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from curriculum_cli.training.loop import TrainResult


class TrainingProgress:
    """Progress of a training run: a rich bar on a terminal, plain lines otherwise.

    Implements the training loop's ``Reporter`` protocol. ``quiet`` shows only
    warnings and the final summary.
    """

    def __init__(self, console: Console, quiet: bool = False, plain_every_s: float = 10.0):
        self.console = console
        self.quiet = quiet
        self.plain_every_s = plain_every_s
        self._progress = None
        self._task = None
        self._last_plain = 0.0
        self._total = 0

    def start(self, total_steps: int, start_step: int) -> None:
        self._total = total_steps
        if self.quiet or not self.console.is_terminal:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.fields[stage]}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[losses]}"),
            TextColumn("{task.fields[speed]}"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "train", total=total_steps, completed=start_step, stage="", losses="", speed=""
        )

    def update(self, step: int, record: dict) -> None:
        losses = (
            f"loss {record['loss']:.3f} ce {record['ce']:.3f} "
            f"spec {record['spectrum']:.3f} prec {record['precursor']:.2f} "
            f"acc {record.get('residue_accuracy', record['token_accuracy']):.3f}"
        )
        speed = f"{record['steps_per_s']:.1f} steps/s"
        if self._progress is not None:
            self._progress.update(
                self._task, completed=step, stage=record["stage"], losses=losses, speed=speed
            )
        elif not self.quiet and time.monotonic() - self._last_plain >= self.plain_every_s:
            self._last_plain = time.monotonic()
            self.console.print(
                f"step {step}/{self._total} {record['stage']} {losses} {speed}",
                highlight=False,
                soft_wrap=True,
            )

    def message(self, text: str) -> None:
        if self.quiet and not text.startswith("warning"):
            return
        console = self._progress.console if self._progress is not None else self.console
        console.print(text, highlight=False, markup=False, soft_wrap=True)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def render_train_result(console: Console, result: TrainResult) -> None:
    """A short summary of a finished (or stopped) run."""
    from rich.text import Text

    console.print(
        Text.assemble(
            (result.status, "bold"),
            f" at step {result.step}/{result.total_steps} in {result.elapsed_s:.0f} s; skipped "
            f"steps {result.skipped_steps}, loss spikes {result.loss_spikes}; run directory "
            f"{result.run_dir}",
        ),
        highlight=False,
        soft_wrap=True,
    )
    for split, values in result.final_val.items():
        parts = [f"{k} {v:.4f}" for k, v in values.items() if isinstance(v, float)]
        console.print(f"  {split}: " + ", ".join(parts), highlight=False, soft_wrap=True)
