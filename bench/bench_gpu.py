"""Training throughput and model FLOPs utilisation (MFU) of a model preset, bf16 on CUDA.

Times pepcurr's real training loop (``engine.train``: data generated on the
device, bf16 autocast on CUDA, all three losses, fused AdamW) on a one-stage
curriculum equal to the last stage of ``revised``, with no validation or
gradient measurement inside the timed windows, and reads its steps/s from the
``train`` records (first window dropped as warm-up).

MFU as nanoGPT's ``estimate_mfu``: the FLOPs the model does in one training
step, divided by the step time and by the device's peak dense bf16 FLOP/s.
Instead of nanoGPT's ``6 N + 12 L H Q T`` formula, the FLOPs are counted by
``torch.utils.flop_counter.FlopCounterMode`` over one forward and backward
pass of the model and its losses on a batch of the same shapes (matrix
multiplications and attention; element-wise work is not counted, as in
nanoGPT). The peak comes from ``PEAK_BF16_TFLOPS`` by device name, or
``--peak-tflops``; on a CPU the script prints the throughput and says that
MFU needs a known peak. Usage::

    python bench/bench_gpu.py [--model base] [--batch-size 32] [--device cuda]
        [--steps 300] [--window 50] [--peak-tflops 989]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from timing import loop_steps_per_second, stage_config

from curriculum_cli.devices import resolve_device
from curriculum_cli.model.factory import build_model
from curriculum_cli.model.losses import refinement_loss_terms, total_loss
from curriculum_cli.model.refinement import refinement_logits, step_weights
from curriculum_cli.spectra.synthetic import SpectrumSettings, generate_batch
from curriculum_cli.training.config import RunConfig

# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, from the vendors' data sheets. The
# first name that occurs in torch.cuda.get_device_name() wins, so the longer names come first.
PEAK_BF16_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.0,  # SXM5
    "H200": 989.0,
    "GH200": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
}


def peak_tflops(device: torch.device) -> float | None:
    """The device's peak dense bf16 TFLOP/s from ``PEAK_BF16_TFLOPS``, or None when unknown."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)


def flops_per_step(config: RunConfig, device: torch.device) -> int:
    """FLOPs of one training step's forward and backward pass (``FlopCounterMode``; a
    recursive model's cycles without gradient count their forward pass)."""
    from torch.utils.flop_counter import FlopCounterMode

    stage = config.curriculum.stages[-1]
    model = build_model(config.model, config.architecture, config.vocab).to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    batch = generate_batch(
        SpectrumSettings.from_stage(stage), config.batch_size, config.vocab, generator, device
    )
    masses = config.vocab.residue_masses(device=device)[2:]
    counter = FlopCounterMode(display=False)
    with counter:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = refinement_logits(model, batch)  # [S, B, T, V]
        weights = step_weights(model, len(logits))
        terms = refinement_loss_terms(logits.float(), batch, masses, config.spectrum_sigma_da,
                                      weights)  # fmt: skip
        total_loss(terms, stage.loss_weights).backward()
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="base", help="model preset (default: base)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=300, help="timed training steps")
    parser.add_argument("--window", type=int, default=50, help="steps per timing window")
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak")
    args = parser.parse_args()

    device = resolve_device(args.device)
    config = stage_config(
        args.steps, args.window, model=args.model, device=device.type, batch_size=args.batch_size
    )
    flops = flops_per_step(config, device)
    rates = loop_steps_per_second(config)
    rate = statistics.median(rates)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"{args.model} on {name} ({device}), batch {args.batch_size}, torch {torch.__version__}, "
        f"{'bf16 autocast' if device.type == 'cuda' else 'float32'}; median of "
        f"{len(rates)} windows of {args.window} steps"
    )
    print(
        f"throughput: {rate:.2f} steps/s ({1000 / rate:.1f} ms/step), "
        f"{rate * args.batch_size:,.0f} spectra/s (windows {min(rates):.2f}-{max(rates):.2f})"
    )
    print(f"model FLOPs per step (forward + backward): {flops / 1e9:.2f} GFLOP")
    peak = args.peak_tflops or peak_tflops(device)
    if peak is None:
        print(
            f"achieved {flops * rate / 1e12:.3f} TFLOP/s; MFU needs the device's peak: "
            "pass --peak-tflops (this device is not in PEAK_BF16_TFLOPS)"
        )
        return
    mfu = flops * rate / (peak * 1e12)
    print(f"achieved {flops * rate / 1e12:.1f} TFLOP/s of {peak:.0f} peak: MFU {100 * mfu:.1f}%")


if __name__ == "__main__":
    main()
