"""Training-step throughput: pepcurr's full step against a bare nn.Transformer.

Measured side by side in one process, alternating, so both see the same
machine load:

(a) pepcurr's real training loop (``engine.train``) on a one-stage curriculum
    equal to the last stage of ``revised`` (lengths 7-18, 10 noise peaks, all
    three losses on, data generated on the fly), no validation or gradient
    measurement inside the timed windows;
(b) a bare ``torch.nn.Transformer`` of the same dimensions, batch and
    sequence shapes (peaks in, residues out), AdamW, cross-entropy only, on
    fixed pre-made tensors.

(a) runs once per model preset named in ``--models`` (default: ``tiny``, the
ion-evidence model, and ``casanovo-tiny``, the plain stand-in; they have the
same dimensions, so they share (b)).
(c) pepcurr's loop with the first model on realistic spectra: the last stage of
    ``--world`` (default ``realistic-revised``: revised's last stage in the
    calibrated world, the same lengths and losses), its training batches as the
    loop draws them (trimmed to their fullest spectrum, from one peak-count bucket).
The measurement is paired: each round times every (a), (c) and (b) back to back,
the ratios are taken per round, and their median and range over rounds are
printed (the range is the machine's noise). Prints steps/s of each, the ratio a/b
per preset, c/a (goal <= 1.3), the cost of a gradient-measurement step relative to
a normal step, and peak RSS. Usage::

    OMP_NUM_THREADS=1 python bench/bench_train.py [--device cpu|cuda]
        [--models tiny,casanovo-tiny] [--world realistic-revised] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch
from timing import loop_steps_per_second, stage_config

from curriculum_cli.model.transformer import MODEL_PRESETS
from curriculum_cli.spectra.synthetic import SpectrumSettings
from curriculum_cli.training.config import RunConfig


def bare_transformer_windows(
    config: RunConfig, n_peaks: int, steps: int, window: int
) -> list[float]:
    """steps/s of a bare nn.Transformer training loop with the same shapes."""
    dims = config.architecture
    device = torch.device(config.device)
    torch.manual_seed(0)
    transformer = torch.nn.Transformer(
        d_model=dims.d_model,
        nhead=dims.n_heads,
        num_encoder_layers=dims.n_encoder_layers,
        num_decoder_layers=dims.n_decoder_layers,
        dim_feedforward=dims.dim_feedforward,
        dropout=0.0,
        batch_first=True,
        norm_first=True,
    ).to(device)
    vocab_size = config.vocab.size
    embed_peaks = torch.nn.Linear(1, dims.d_model).to(device)
    embed_tokens = torch.nn.Embedding(vocab_size, dims.d_model).to(device)
    head = torch.nn.Linear(dims.d_model, vocab_size).to(device)
    modules = torch.nn.ModuleList([transformer, embed_peaks, embed_tokens, head])
    optimizer = torch.optim.AdamW(modules.parameters(), lr=config.lr)
    batch, length = config.batch_size, config.curriculum.max_length + 1
    peaks = torch.rand(batch, n_peaks + 1, 1, device=device) * 2000
    tokens = torch.randint(2, vocab_size, (batch, length), device=device)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(length, device=device)
    rates, start = [], time.perf_counter()
    for step in range(1, steps + 1):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = transformer(embed_peaks(peaks), embed_tokens(tokens), tgt_mask=mask)
            logits = head(out)
        loss = torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, vocab_size), tokens.reshape(-1)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(modules.parameters(), 1.0)
        optimizer.step()
        if step % window == 0:
            if device.type == "cuda":
                torch.cuda.synchronize()
            now = time.perf_counter()
            rates.append(window / (now - start))
            start = now
    return rates[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--models", default="tiny,casanovo-tiny", help="presets of the same dimensions"
    )
    parser.add_argument("--world", default="realistic-revised", help="preset with a world")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=80, help="steps per measurement")
    parser.add_argument("--window", type=int, default=20, help="steps per timing window")
    parser.add_argument("--rounds", type=int, default=6, help="paired (a..., b) rounds")
    args = parser.parse_args()
    models = args.models.split(",")
    unknown = [m for m in models if m not in MODEL_PRESETS]
    if unknown:
        parser.error(f"unknown preset(s) {unknown}; choose from {', '.join(MODEL_PRESETS)}")
    shapes = {
        (c.d_model, c.n_heads, c.n_encoder_layers, c.n_decoder_layers, c.dim_feedforward)
        for c in (MODEL_PRESETS[m] for m in models)
    }
    if len(shapes) > 1:
        parser.error("--models must name presets of the same dimensions (they share (b))")

    configs = {
        model: stage_config(
            args.steps, args.window, model=model, device=args.device, batch_size=args.batch_size
        )
        for model in models
    }
    measured = configs[models[0]].model_copy(update={"grad_every": 1})
    realistic = stage_config(args.steps, args.window, curriculum=args.world,
                             model=models[0], device=args.device,
                             batch_size=args.batch_size)  # fmt: skip
    n_peaks = SpectrumSettings.from_stage(configs[models[0]].curriculum.stages[0]).max_peaks

    # Paired rounds: every round times each (a) and (b) back to back, so a round's ratio
    # compares runs that saw the same machine load; the spread over rounds is the noise.
    pepcurr = {model: [] for model in models}  # per round: median steps/s of its windows
    bare, with_grad, world = [], [], []
    for round_index in range(args.rounds):
        for model, config in configs.items():
            rates = loop_steps_per_second(config)
            pepcurr[model].append(statistics.median(rates))
        world.append(statistics.median(loop_steps_per_second(realistic)))
        rates = bare_transformer_windows(configs[models[0]], n_peaks, args.steps, args.window)
        bare.append(statistics.median(rates))
        if round_index == 0:  # three extra backward passes a step: one round is enough
            with_grad += loop_steps_per_second(measured)

    b, g = statistics.median(bare), statistics.median(with_grad)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"device {args.device}, batch {args.batch_size}, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}; {args.rounds} paired rounds of {args.steps} steps, "
        f"medians over rounds"
    )
    for model in models:
        a = statistics.median(pepcurr[model])
        ratios = [x / y for x, y in zip(pepcurr[model], bare, strict=True)]
        label = f"(a) pepcurr full step, {model} (last stage of revised):"
        print(
            f"{label:<62}{a:7.2f} steps/s  ({1000 / a:.1f} ms)  a/b = "
            f"{statistics.median(ratios):.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f})"
        )
    label = "(b) bare nn.Transformer, same shapes:"
    print(f"{label:<62}{b:7.2f} steps/s  ({1000 / b:.1f} ms)")
    c = statistics.median(world)
    ratios = [y / x for x, y in zip(world, pepcurr[models[0]], strict=True)]
    label = f"(c) pepcurr full step, {models[0]} ({args.world}, last stage):"
    print(
        f"{label:<62}{c:7.2f} steps/s  ({1000 / c:.1f} ms)  c/a = "
        f"{statistics.median(ratios):.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f}; "
        "goal <= 1.3)"
    )
    a = statistics.median(pepcurr[models[0]])
    print(
        f"gradient-measurement step ({models[0]}) costs {a / g:.2f}x a normal step "
        f"({1000 / g:.1f} ms vs {1000 / a:.1f} ms)"
    )
    print(f"peak RSS {peak_rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
