"""The spectrum store (``realdata``): indexing rate, batch read cost, and memory against size.

For each size N (default 10,000 and 100,000), in separate processes so that
each peak RSS is its own:

1. ``pepcurr spectra`` writes N synthetic spectra of ``revised``'s last stage
   (lengths 7-18, 10 noise peaks) as MGF;
2. indexing: the MGF is parsed once into its store (``realdata.open_store``):
   spectra/s, and the process's peak RSS;
3. training from the store: ``--batches`` batches of 32 drawn at random rows
   of the stage's length range (``RealSpectra.draw``, as the training loop
   draws them), timed, then ``--steps`` real training steps of the ``tiny``
   model on such batches (forward, the three losses, backward, AdamW), timed
   the same way in the same process; prints the read's share of a step (goal
   < 5%) and the process's peak RSS (goal: no growth with N).

Usage::

    OMP_NUM_THREADS=1 python bench/bench_store.py [--sizes 10000,100000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def rss_parts_mib() -> dict:
    """Resident memory now, split as Linux does: anonymous (the process's own) and
    file-backed (pages of mapped files, e.g. the store: page cache the kernel can drop)."""
    parts = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            parts[key] = int(value.split()[0]) / 1024
    return parts


def index_one(mgf: Path, store: Path) -> dict:
    from curriculum_cli.spectra.chemistry import MAX_CHARGE
    from curriculum_cli.spectra.store import open_store
    from curriculum_cli.spectra.vocabulary import Vocabulary

    started = time.perf_counter()
    loaded = open_store(mgf, store, Vocabulary.default(), MAX_CHARGE)
    seconds = time.perf_counter() - started
    return {"n": len(loaded), "index_s": seconds, "spectra_per_s": len(loaded) / seconds,
            "store_mib": store.stat().st_size / 2**20, "peak_rss_mib": peak_rss_mib(),
            **rss_parts_mib()}  # fmt: skip


def train_one(mgf: Path, store: Path, batches: int, steps: int) -> dict:
    import torch

    from curriculum_cli.curriculum.presets import preset
    from curriculum_cli.model.losses import loss_terms, total_loss
    from curriculum_cli.model.transformer import MODEL_PRESETS, PeptideTransformer
    from curriculum_cli.spectra.batch_source import RealSpectra
    from curriculum_cli.spectra.chemistry import MAX_CHARGE
    from curriculum_cli.spectra.store import open_store
    from curriculum_cli.spectra.vocabulary import Vocabulary

    torch.set_num_threads(1)
    vocab = Vocabulary.default()
    stage = preset("revised").stages[-1]
    real = RealSpectra([open_store(mgf, store, vocab, MAX_CHARGE)])
    generator = torch.Generator().manual_seed(0)

    def draw():
        return real.draw(32, stage.min_length, stage.max_length, generator, stage.max_length + 1)

    for _ in range(20):
        draw()
    read_ms = []
    for _ in range(batches):
        started = time.perf_counter()
        draw()
        read_ms.append((time.perf_counter() - started) * 1e3)

    torch.manual_seed(0)
    model = PeptideTransformer(MODEL_PRESETS["tiny"], vocab)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    masses = vocab.residue_masses()[2:]
    step_ms = []
    for i in range(steps + 3):
        batch = draw()
        started = time.perf_counter()
        terms = loss_terms(model(batch), batch, masses, 1.0)
        loss = total_loss(terms, stage.loss_weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if i >= 3:  # warm-up steps dropped
            step_ms.append((time.perf_counter() - started) * 1e3)
    read, step = statistics.median(read_ms), statistics.median(step_ms)
    return {"read_ms": read, "read_p90_ms": sorted(read_ms)[int(0.9 * len(read_ms))],
            "step_ms": step, "share": read / step, "peak_rss_mib": peak_rss_mib(),
            **rss_parts_mib()}  # fmt: skip


def child(argv: list[str]) -> dict:
    """Run this script's ``--phase`` in a fresh Python process; its JSON result."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, *argv], env=env, check=True,
                         capture_output=True, text=True)  # fmt: skip
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--phase", choices=("index", "train"), help=argparse.SUPPRESS)
    parser.add_argument("--mgf", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        store = args.mgf.with_suffix(".arrow")
        if args.phase == "index":
            result = index_one(args.mgf, store)
        else:
            result = train_one(args.mgf, store, args.batches, args.steps)
        print(json.dumps(result))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_store_"))
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} on "
          f"{os.cpu_count()} cores; files under {workdir}")  # fmt: skip
    for n in (int(s) for s in args.sizes.split(",")):
        mgf = workdir / f"synthetic-{n}.mgf"
        if not mgf.exists():
            env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
            subprocess.run([sys.executable, "-m", "curriculum_cli", "spectra", "-c", "revised",
                            "--stage", "stage_10_realistic", "-n", str(n), "-o", str(mgf)],
                           env=env, check=True, capture_output=True)  # fmt: skip
        mgf.with_suffix(".arrow").unlink(missing_ok=True)
        index = child(["--phase", "index", "--mgf", str(mgf)])
        read = child(["--phase", "train", "--mgf", str(mgf), "--batches", str(args.batches),
                      "--steps", str(args.steps)])  # fmt: skip
        print(f"{n:>9,} spectra ({mgf.stat().st_size / 2**20:,.0f} MiB MGF, "
              f"{index['store_mib']:,.0f} MiB store)")  # fmt: skip
        print(f"  indexing: {index['index_s']:.1f} s, {index['spectra_per_s']:,.0f} spectra/s, "
              f"peak RSS {index['peak_rss_mib']:,.0f} MiB (at the end: anonymous "
              f"{index['RssAnon']:,.0f}, file-backed {index['RssFile']:,.0f})")  # fmt: skip
        print(f"  batch of 32 from the store: {read['read_ms']:.2f} ms "
              f"(p90 {read['read_p90_ms']:.2f}); tiny-model step {read['step_ms']:.1f} ms; "
              f"read = {read['share']:.1%} of a step (goal < 5%); "
              f"peak RSS {read['peak_rss_mib']:,.0f} MiB (at the end: anonymous "
              f"{read['RssAnon']:,.0f}, file-backed {read['RssFile']:,.0f})")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} at the end")


if __name__ == "__main__":
    main()
