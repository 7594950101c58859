"""Records of short runs, timing fields left out: a before/after check that a change
to the code leaves training bit-identical.

Trains, each through the ``pepcurr`` command line with one thread: every model
preset on ``revised`` (a few steps), a gated curriculum, a world curriculum with
the casanovo vocabulary and ``--val-data``, a user factory, and a two-arm ``ab``
(its forked arm), then writes one JSON: run name -> the run's ``run.json`` config
and its ``metrics.jsonl`` records without ``steps_per_s``/``elapsed_s``. Usage::

    python scripts/record_fingerprint.py OUT_DIR FINGERPRINT.json
    python scripts/record_fingerprint.py --compare BEFORE.json AFTER.json

``--compare`` prints the first record that differs per run and exits 1 if any does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMING_FIELDS = {"steps_per_s", "elapsed_s", "train_steps_per_s", "wall_s"}
VAL = str(ROOT / "tests" / "data" / "casanovo_sample_preprocessed_spectra.mgf")

RUNS = {
    "tiny": ["--curriculum", "revised", "--scale", "0.0003", "--model", "tiny"],
    "casanovo-tiny": ["--curriculum", "revised", "--scale", "0.0003", "--model", "casanovo-tiny"],
    "trm-tiny": ["--curriculum", "revised", "--scale", "0.0003", "--model", "trm-tiny"],
    "base": ["--curriculum", "revised", "--scale", "0.0003", "--model", "base", "--max-steps",
             "2", "--val-every", "1", "--val-size", "4", "--batch-size", "4"],
    "casanovo-base": ["--curriculum", "revised", "--scale", "0.0003", "--model",
                      "casanovo-base", "--max-steps", "2", "--val-every", "1", "--val-size", "4",
                      "--batch-size", "4"],
    "trm-base": ["--curriculum", "revised", "--scale", "0.0003", "--model", "trm-base",
                 "--max-steps", "1", "--val-every", "1", "--val-size", "2", "--batch-size", "2"],
    "gated": ["--curriculum", "gated-revised", "--scale", "0.001", "--val-every", "10"],
    "world": ["--curriculum", "realistic-revised", "--scale", "0.0004", "--vocab", "casanovo",
              "--val-data", VAL],
    "factory": ["--curriculum", "current", "--scale", "0.0002",
                "--model", str(ROOT / "tests" / "data" / "custom_model.py") + ":tiny_gru"],
}  # fmt: skip
SMALL = ["--val-size", "32", "--batch-size", "8"]


def _records(run_dir: Path, out: Path) -> dict:
    """The run's config and records; the checkout's and the output's paths as placeholders."""
    text = (run_dir / "run.json").read_text()
    text = text.replace(str(out.resolve()), "<OUT>").replace(str(ROOT), "<ROOT>")
    config = json.loads(text)["config"]
    for record in [*config.get("train_data", []), *config.get("val_data", [])]:
        record["store"] = "<STORE>"  # its name hashes the MGF's absolute path (spectra/store.py)
    records = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        records.append({k: v for k, v in record.items() if k not in TIMING_FIELDS})
    return {"config": config, "records": records}


def make(out: Path, fingerprint: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    pepcurr = [sys.executable, "-m", "curriculum_cli"]
    found = {}
    for name, words in RUNS.items():
        extra = [] if "--val-size" in words else SMALL
        if "--val-data" in words:  # the store inside the output, not beside the test file
            extra = [*extra, "--store", str(out / "store")]
        run_dir = out / name
        subprocess.run([*pepcurr, "train", "--out", str(run_dir), "--threads", "1", "-q", *words,
                        *extra], check=True, env=env)  # fmt: skip
        found[name] = _records(run_dir, out)
    ab_dir = out / "ab"
    subprocess.run([*pepcurr, "ab", "current", "revised", "--scale", "0.0004", "--seeds", "1",
                    "--jobs", "1", "-o", str(ab_dir), "-q", *SMALL], check=True, env=env,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    for run_dir in sorted(p for p in ab_dir.iterdir() if (p / "run.json").is_file()):
        found[f"ab/{run_dir.name}"] = _records(run_dir, out)
    fingerprint.write_text(json.dumps(found, indent=1, sort_keys=True))
    print(f"wrote {fingerprint}: {len(found)} runs")


def compare(before: Path, after: Path) -> int:
    a, b = json.loads(before.read_text()), json.loads(after.read_text())
    bad = 0
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            print(f"{name}: only in {'after' if name in b else 'before'}")
            bad += 1
            continue
        if a[name]["config"] != b[name]["config"]:
            print(f"{name}: run.json config differs")
            bad += 1
        ra, rb = a[name]["records"], b[name]["records"]
        for i, (x, y) in enumerate(zip(ra, rb, strict=False)):
            if x != y:
                keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
                print(
                    f"{name}: record {i} ({x.get('event')}, step {x.get('step')}) differs in "
                    f"{', '.join(keys)}"
                )
                bad += 1
                break
        else:
            if len(ra) != len(rb):
                print(f"{name}: {len(ra)} records before, {len(rb)} after")
                bad += 1
    print("identical" if not bad else f"{bad} difference(s)")
    return 1 if bad else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    args = parser.parse_args()
    args.first = args.first.resolve()
    if args.compare:
        sys.exit(compare(args.first, args.second))
    make(args.first, args.second)


if __name__ == "__main__":
    main()
