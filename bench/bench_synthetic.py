"""Synthetic spectra generation speed at the last stage of ``revised``.

The last stage of ``revised`` (lengths 7-18, 10 noise peaks, peak dropout
0.15, 15 ppm m/z error, intensity variation 0.2, charge 2+/3+) is the most
expensive stage to generate. For each batch size: warm-up, then the median
over many timed batches of ``generate_batch``, as ms per batch and spectra/s,
and, for batch 32, its share of a ~45 ms training step of the tiny CPU model.

How far from the machine's limit: the number of PyTorch operator calls per
batch (from the profiler) times a typical dispatch cost of a few microseconds
gives the floor of a batch that is too small to keep the cores busy; at
batch 1024 the time is in the arithmetic and the sort instead. Usage::

    python bench/bench_synthetic.py [--device cpu|cuda] [--repeats 300] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from curriculum_cli.curriculum.presets import preset
from curriculum_cli.spectra.synthetic import SpectrumSettings, generate_batch
from curriculum_cli.spectra.vocabulary import Vocabulary

TRAINING_STEP_MS = 45.0
"""A batch-32 training step of the tiny model on this CPU (bench/bench_train.py)."""


def time_batches(settings, batch_size, vocab, device, repeats, warmup=30) -> list[float]:
    """Seconds per ``generate_batch`` call, one entry per timed call."""
    generator = torch.Generator(device=device).manual_seed(0)
    for _ in range(warmup):
        generate_batch(settings, batch_size, vocab, generator, device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        generate_batch(settings, batch_size, vocab, generator, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def operator_calls(settings, batch_size, vocab, device) -> int:
    """Top-level PyTorch operator calls in one ``generate_batch``."""
    from torch.profiler import ProfilerActivity, profile

    generator = torch.Generator(device=device).manual_seed(0)
    generate_batch(settings, batch_size, vocab, generator, device)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        generate_batch(settings, batch_size, vocab, generator, device)
    return sum(
        1 for event in prof.events() if event.name.startswith("aten::") and not event.cpu_parent
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 1024])
    parser.add_argument("--repeats", type=int, default=300, help="timed batches per size")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    vocab = Vocabulary.default()
    stage = preset("revised").stages[-1]
    settings = SpectrumSettings.from_stage(stage)
    print(
        f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}; "
        f"stage {stage.name}: lengths {settings.min_length}-{settings.max_length}, "
        f"{settings.noise_peaks} noise peaks, dropout {settings.peak_dropout:g}, "
        f"{settings.mass_error_ppm:g} ppm, intensity variation {settings.intensity_variation:g}, "
        f"{settings.max_peaks} peak slots"
    )
    medians = {}
    for batch_size in args.batch_sizes:
        times = sorted(time_batches(settings, batch_size, vocab, device, args.repeats))
        median = medians[batch_size] = statistics.median(times)
        p10, p90 = times[len(times) // 10], times[len(times) * 9 // 10]
        calls = operator_calls(settings, batch_size, vocab, device)
        print(
            f"batch {batch_size:5d}: {median * 1e3:7.3f} ms/batch "
            f"(p10 {p10 * 1e3:.3f}, p90 {p90 * 1e3:.3f}), "
            f"{batch_size / median:9,.0f} spectra/s, {median * 1e6 / batch_size:5.2f} us/spectrum; "
            f"{calls} operator calls, {median * 1e6 / calls:.1f} us each"
        )
    if 32 in medians:
        share = medians[32] * 1e3 / TRAINING_STEP_MS
        print(f"batch 32 costs {share:.2%} of a {TRAINING_STEP_MS:g} ms training step (goal < 2%)")


if __name__ == "__main__":
    main()
