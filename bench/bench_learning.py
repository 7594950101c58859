"""Learning speed: how fast each model preset learns to read peptides off spectra.

For each preset (default: ``tiny``, the ion-evidence model, ``casanovo-tiny``,
the plain Casanovo-style stand-in, and ``trm-tiny``, the recursive parallel
model), trains the real loop (``engine.train``) from the same initial seed on
the same batches of one stage of ``revised`` (``--stage first``: lengths 7-10,
clean; ``last``: lengths 7-18, 10 noise peaks, 15% dropout, 15 ppm, the stage's
loss weights) for a fixed budget, validating every ``--val-every`` steps on 256
spectra of that stage and decoding them (greedy for an autoregressive model,
the arg-max of one pass for a parallel one: neither uses the precursor).
Prints, per preset:

- validation residue accuracy at fixed step counts: teacher-forced for an
  autoregressive model (it sees the true prefix), free-running for a parallel
  one (its last refinement step), so the two kinds are not comparable on it;
- decoded AA recall at the same steps (comparable across kinds), and the first
  validated step (and training seconds, validation excluded: the step over the
  training speed) at which it reaches 0.40, 0.55, 0.70 and 0.90;
- training steps/s (median over the logging windows that hold no validation).

``--json FILE`` writes the curves; ``--plot FILE.png`` draws them; ``--tables FILE``
prints the tables of such a JSON file again (and ``--plot`` draws it) without
training. Usage::

    OMP_NUM_THREADS=1 python bench/bench_learning.py --stage last --steps 400
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch

from curriculum_cli.curriculum.presets import preset
from curriculum_cli.curriculum.schema import Curriculum
from curriculum_cli.training.loop import train
from curriculum_cli.training.resolve import build_run_config
from curriculum_cli.training.runlog import read_run

TARGETS = (0.40, 0.55, 0.70, 0.90)


def learning_curve(model: str, stage_name: str, steps: int, val_every: int, seed: int) -> dict:
    """Train ``model`` on one stage of revised; its validation curves and speed."""
    stages = preset("revised").stages
    stage = (stages[0] if stage_name == "first" else stages[-1]).model_copy(update={"steps": steps})
    config = build_run_config(
        Curriculum(name=f"bench_{stage_name}", stages=[stage]),
        model=model,
        device="cpu",
        seed=seed,
        val_every=val_every,
        val_size=256,
        decode_every=1,  # decoded metrics at every validation
        decode_size=256,
        grad_every=10**9,
        checkpoint_every=10**9,
        log_every=5,
    )
    with tempfile.TemporaryDirectory() as workdir:
        run_dir = Path(workdir) / "run"
        train(config, run_dir)
        run = read_run(run_dir)
        val = run.events("val")
        val = val[val["split"] == "val_easy"]  # one stage: both splits hold its spectra
        logged = run.events("train")
    # Training speed from the logging windows that hold no validation (the engine times a
    # window from one train record to the next, so a validation run after a record falls into
    # the next window); training seconds to a step = step / that speed.
    clean = [
        float(rate)
        for step, rate in zip(logged["step"], logged["steps_per_s"], strict=True)
        if not any(v % val_every == 0 for v in range(int(step) - config.log_every, int(step)))
    ]
    steps_per_s = statistics.median(clean)
    curves = {
        metric: [(int(s), float(a)) for s, a in zip(val["step"], val[metric], strict=True)]
        for metric in ("residue_accuracy", "aa_recall", "peptide_recall")
    }
    reached = {}
    for target in TARGETS:
        first = next((s for s, a in curves["aa_recall"] if a >= target), None)
        reached[f"{target:.2f}"] = None if first is None else [first, first / steps_per_s]
    return {
        "model": model,
        "stage": stage.name,
        "curves": curves,
        "reached": reached,
        "steps_per_s": steps_per_s,
    }


def _values(curve: list, checkpoints: list[int]) -> str:
    points = dict(curve)
    return "".join(f"{points[s]:>8.3f}" if s in points else f"{'-':>8}" for s in checkpoints)


def print_table(results: list[dict], checkpoints: list[int]) -> None:
    print(f"stage {results[0]['stage']}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")  # fmt: skip
    steps = "".join(f"{'@' + str(s):>8}" for s in checkpoints)
    print("validation residue accuracy (autoregressive: teacher-forced; parallel: last step)")
    print(f"{'model':<15}{steps}")
    for result in results:
        print(f"{result['model']:<15}" + _values(result["curves"]["residue_accuracy"], checkpoints))
    print("decoded AA recall (greedy; parallel: one-pass arg-max), final peptide recall")
    targets = "".join(f"{'>= ' + t:>16}" for t in (f"{x:.2f}" for x in TARGETS))
    print(f"{'model':<15}{steps}{targets}  peptide  steps/s")
    for result in results:
        row = f"{result['model']:<15}" + _values(result["curves"]["aa_recall"], checkpoints)
        for target in TARGETS:
            hit = result["reached"][f"{target:.2f}"]
            row += f"{'not reached':>16}" if hit is None else f"{hit[0]:>8d} ({hit[1]:4.0f} s)"
        peptide = result["curves"]["peptide_recall"][-1][1]
        print(row + f"  {peptide:7.3f}  {result['steps_per_s']:7.2f}")


def plot(results_by_stage: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = {
        "residue_accuracy": "residue accuracy (AR: teacher-forced;\nparallel: last step)",
        "aa_recall": "decoded AA recall (AR: greedy;\nparallel: one-pass arg-max)",
    }
    n_stages = len(results_by_stage)
    fig, axes = plt.subplots(2, n_stages, figsize=(6 * n_stages, 7.5), squeeze=False)
    for column, results in enumerate(results_by_stage.values()):
        for row, (metric, label) in enumerate(metrics.items()):
            ax = axes[row][column]
            for result in results:
                steps, values = zip(*result["curves"][metric], strict=True)
                ax.plot(steps, values, marker=".", label=result["model"])
            for target in TARGETS:
                ax.axhline(target, color="grey", linewidth=0.5, linestyle=":")
            ax.set_title(f"{results[0]['stage']} of revised, from scratch")
            ax.set_xlabel("training step (batch 32)")
            ax.set_ylabel(label)
            ax.set_ylim(0, 1)
            ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", choices=("first", "last", "both"), default="last")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--val-every", type=int, default=20)
    parser.add_argument("--models", default="tiny,casanovo-tiny,trm-tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the curves to this JSON file")
    parser.add_argument("--plot", type=Path, help="draw the curves into this PNG")
    parser.add_argument("--tables", type=Path, help="print the tables of this --json file")
    args = parser.parse_args()

    if args.tables:
        results_by_stage = json.loads(args.tables.read_text())
        steps = max(s for r in results_by_stage.values() for s, _ in r[0]["curves"]["aa_recall"])
    else:
        steps, results_by_stage = args.steps, {}
    checkpoints = sorted({s for s in (20, 40, 60, 100, 200, 400, 1000) if s < steps} | {steps})
    stages = ("first", "last") if args.stage == "both" else (args.stage,)
    for stage in results_by_stage or stages:
        if stage not in results_by_stage:
            results_by_stage[stage] = [
                learning_curve(model, stage, args.steps, args.val_every, args.seed)
                for model in args.models.split(",")
            ]
        print_table(results_by_stage[stage], checkpoints)
        print()
    if args.json:
        args.json.write_text(json.dumps(results_by_stage, indent=1) + "\n")
    if args.plot:
        plot(results_by_stage, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
