"""Synthetic spectra generation speed, against a training step timed in the same process.

Two generators at their most expensive stage:

- ``plain``: pepcurr's b/y-ladder generator at the last stage of ``revised`` (lengths
  7-18, 10 noise peaks, peak dropout 0.15, 15 ppm m/z error, intensity variation 0.2);
- ``world``: the realistic simulator at the last stage of ``realistic-revised`` (the
  same stage in the ``calibrated-hcd`` world, at full strength), batches drawn as
  training draws them (``bucketed``), with the ``casanovo`` vocabulary (its
  modifications drawn).

For each and each batch size: warm-up, then the median over many timed batches, as ms
per batch and spectra/s, and the number of PyTorch operator calls (from the profiler;
times a few microseconds of dispatch each, the floor of a batch too small to keep a core
busy). Then ``--steps`` training steps of the ``tiny`` model (forward, the three losses,
backward, clipping, AdamW) on batches of each generator, timed in the same process, and
batch 32's share of such a step (goal < 2%). Usage::

    OMP_NUM_THREADS=1 python bench/bench_synthetic.py [--device cpu|cuda] [--repeats 300]
        [--threads N] [--steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from curriculum_cli.curriculum.presets import preset
from curriculum_cli.model.losses import loss_terms, total_loss
from curriculum_cli.model.transformer import MODEL_PRESETS, PeptideTransformer
from curriculum_cli.spectra.synthetic import SpectrumSettings, generate_batch
from curriculum_cli.spectra.vocabulary import Vocabulary

GENERATORS = {"plain": ("revised", "standard"), "world": ("realistic-revised", "casanovo")}
"""Generator label -> (preset whose last stage it draws, vocabulary)."""


def time_batches(settings, batch_size, vocab, device, repeats, warmup=30) -> list[float]:
    """Seconds per ``generate_batch`` call (as a training step draws it), one per call."""
    generator = torch.Generator(device=device).manual_seed(0)
    for _ in range(warmup):
        generate_batch(settings, batch_size, vocab, generator, device, bucketed=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        generate_batch(settings, batch_size, vocab, generator, device, bucketed=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def operator_calls(settings, batch_size, vocab, device) -> int:
    """Top-level PyTorch operator calls in one ``generate_batch``."""
    from torch.profiler import ProfilerActivity, profile

    generator = torch.Generator(device=device).manual_seed(0)
    generate_batch(settings, batch_size, vocab, generator, device, bucketed=True)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        generate_batch(settings, batch_size, vocab, generator, device, bucketed=True)
    return sum(
        1 for event in prof.events() if event.name.startswith("aten::") and not event.cpu_parent
    )


def step_ms(settings, stage, vocab, device, steps: int) -> list[float]:
    """ms per training step of the ``tiny`` model on batches of 32 of ``settings``."""
    torch.manual_seed(0)
    model = PeptideTransformer(MODEL_PRESETS["tiny"], vocab).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    masses = vocab.residue_masses(device=device)[2:]
    n_terminal = vocab.n_terminal_mask(device)[2:] if vocab.n_terminal_ids else None
    generator = torch.Generator(device=device).manual_seed(1)
    times = []
    for i in range(steps + 3):
        batch = generate_batch(settings, 32, vocab, generator, device, bucketed=True)
        start = time.perf_counter()
        terms = loss_terms(model(batch), batch, masses, 1.0, n_terminal)
        loss = total_loss(terms, stage.loss_weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 3:  # warm-up steps dropped
            times.append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 1024])
    parser.add_argument("--repeats", type=int, default=300, help="timed batches per size")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps each")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    for label, (name, vocab_name) in GENERATORS.items():
        curriculum = preset(name)
        stage = curriculum.stages[-1]
        settings = SpectrumSettings.from_stage(stage, world=curriculum.world)
        vocab = Vocabulary.named(vocab_name)
        print(f"{label}: {name} {stage.name} (lengths {stage.min_length}-{stage.max_length}), "
              f"{vocab_name} vocabulary")  # fmt: skip
        medians = {}
        for batch_size in args.batch_sizes:
            times = sorted(time_batches(settings, batch_size, vocab, device, args.repeats))
            median = medians[batch_size] = statistics.median(times)
            p10, p90 = times[len(times) // 10], times[len(times) * 9 // 10]
            calls = operator_calls(settings, batch_size, vocab, device)
            print(
                f"  batch {batch_size:5d}: {median * 1e3:7.3f} ms/batch "
                f"(p10 {p10 * 1e3:.3f}, p90 {p90 * 1e3:.3f}), "
                f"{batch_size / median:9,.0f} spectra/s; {calls} operator calls, "
                f"{median * 1e6 / calls:.1f} us each"
            )
        if 32 in medians:
            step = statistics.median(step_ms(settings, stage, vocab, device, args.steps))
            print(f"  tiny training step on these batches: {step:.1f} ms (median of "
                  f"{args.steps}); batch 32 costs {medians[32] * 1e3 / step:.2%} of it "
                  "(goal < 2%)")  # fmt: skip


if __name__ == "__main__":
    main()
