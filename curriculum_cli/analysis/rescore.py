"""``compare --rescore N``: the compared runs' final checkpoints scored again, spectrum by spectrum.

A teacher-forced accuracy is a pooled fraction over a finite validation set, so
part of the spread between seeds is measurement noise of that set. Re-scoring
measures it, paired (every run on the same spectra), without retraining:

- on each run's **own** validation set of the metric's split (regenerated from
  ``val_seed``; its pooled value is the logged final value): a **paired
  bootstrap over its spectra** says how much of the paired sd between seeds
  the finite validation set explains (``paired_bootstrap``);
- on a **larger fixed set** of N spectra with the same data settings, drawn
  from ``RESCORE_SEED``: the same models measured with less validation
  noise, and its own bootstrap.

Only the final checkpoint exists (the loop keeps ``last.pt`` alone), so what
is re-scored is each run at the step of its checkpoint, the end of a finished
run: ``compare`` refuses ``--rescore`` with an ``--at`` before that. The
scores are written beside each run (``RUN_DIR/rescore-<split>-<N>.json``:
settings, checkpoint step and SHA-256, per-spectrum counts) and reused while
the checkpoint is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from curriculum_cli.analysis.run_values import SPLITS
from curriculum_cli.errors import PepcurrError, RunError
from curriculum_cli.spectra.stage_data import DATA_FIELDS, MAX_SPECTRA_AT_ONCE
from curriculum_cli.training.runlog import RunLog, write_json_atomic

RESCORE_SEED = 1_000_003
"""Seed of the fixed re-scoring set: the same spectra for every run, none of them a
validation spectrum (``val_seed`` defaults to small numbers)."""

BOOTSTRAP_DRAWS = 2_000
BOOTSTRAP_SEED = 0
"""Resamples of the paired bootstrap, from ``numpy.random.default_rng(BOOTSTRAP_SEED)``."""

RESCORE_METRICS = {
    f"{name}_{suffix}": (SPLITS[suffix], counts)
    for suffix in ("easy", "hard")
    for name, counts in (
        ("residue_accuracy", ("residues_correct", "residues")),
        ("token_accuracy", ("tokens_correct", "tokens")),
    )
}
"""Metric -> (split, (numerator, denominator) of ``metrics.accuracy_counts``): the metrics
``--rescore`` supports (teacher-forced accuracies of the synthetic sets)."""

RESCORE_FILE = "rescore-{split}-{n}.json"


@dataclass(frozen=True)
class Bootstrap:
    """The validation set's share of the noise of one arm's difference to the baseline.

    Spectra resampled with replacement ``draws`` times (``seed``), the same resample for
    every run, each run's metric pooled over the resample. ``sd_pair``: the bootstrap
    sd of one seed's difference (root mean over pairs of its bootstrap variance: the
    validation-set noise of one pair). Part of it is common to all seeds (they are
    scored on the same spectra) and does not spread them apart: ``sd_between`` is the
    part that does (root of the mean over draws of the variance across pairs of the
    draw's deviations from the observed differences), to be set against ``paired_sd``,
    the observed sd of the per-seed differences; ``share`` = ``sd_between^2 /
    paired_sd^2``, the part of the paired variance the finite set explains (about; may
    exceed 1 by chance; an upper estimate with few pairs: dividing by the variance of n
    paired differences biases it up by about (n - 1) / (n - 3), 5/3 at 6 pairs).
    ``se_mean``: the bootstrap sd of the mean difference over pairs, the set's error of
    the estimate with the models fixed; ``sd_common``: its part common to all seeds
    (``sqrt(se_mean^2 - sd_between^2 / n_pairs)``), which the paired interval does not
    contain (it moves every pair alike) and more seeds do not shrink: a larger set does.
    """

    arm: str
    n_spectra: int
    n_pairs: int
    draws: int
    seed: int
    sd_pair: float
    sd_between: float
    se_mean: float
    sd_common: float
    paired_sd: float
    share: float

    def text(self, baseline: str) -> str:
        return (
            f"{self.arm} - {baseline}: from the {self.n_spectra:,} spectra alone one seed's "
            f"difference varies by {self.sd_pair:.2g} (sd); its part that differs from seed to "
            f"seed ({self.sd_between:.2g}) is about {self.share:.0%} of the paired variance "
            f"(paired sd {self.paired_sd:.2g}); the set's SE of the mean difference is "
            f"{self.se_mean:.2g}, its part common to all seeds (not in the paired interval) "
            f"{self.sd_common:.2g}"
        )


@dataclass
class Rescore:
    """What ``rescore_runs`` measured. ``values``: run directory -> ``{"own": x, "fixed": y}``
    (the metric on the run's own set and on the fixed set); ``steps``: run directory ->
    checkpoint step; ``own``/``fixed``: a ``Bootstrap`` per arm against the baseline
    (none where the arms' sets differ), from ``draws`` resamples (``bootstrap_seed``);
    ``notes``: what was skipped and why."""

    metric: str
    split: str
    n_spectra: int
    seed: int
    values: dict[str, dict[str, float]]
    steps: dict[str, int]
    draws: int = BOOTSTRAP_DRAWS
    bootstrap_seed: int = BOOTSTRAP_SEED
    own: list[Bootstrap] = field(default_factory=list)
    fixed: list[Bootstrap] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_rescore(metric: str, n_spectra: int) -> str:
    """The split ``--rescore`` scores for ``metric``; a ``PepcurrError`` if it cannot."""
    if metric not in RESCORE_METRICS:
        raise PepcurrError(
            f"--rescore re-scores teacher-forced accuracies of val_easy or val_hard; --metric "
            f"{metric} is not one (choose one of {', '.join(RESCORE_METRICS)})"
        )
    if not 2 <= n_spectra <= MAX_SPECTRA_AT_ONCE:
        raise PepcurrError(f"--rescore: give 2 to {MAX_SPECTRA_AT_ONCE:,} spectra (a set is drawn "
                           f"and held whole), got {n_spectra:,}")  # fmt: skip
    return RESCORE_METRICS[metric][0]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _score_run(run: RunLog, split: str, n_spectra: int, device) -> dict:
    """The run's final checkpoint on its own set and the fixed set (cached beside the run)."""
    from curriculum_cli.training.checkpoint import CHECKPOINT_FILE, load_model
    from curriculum_cli.training.validation import accuracy_per_spectrum, synthetic_validation_set

    checkpoint = run.run_dir / CHECKPOINT_FILE
    if not checkpoint.is_file():
        raise RunError(f"{run.run_dir}: no {CHECKPOINT_FILE} to re-score")
    path = run.run_dir / RESCORE_FILE.format(split=split, n=n_spectra)
    digest = _sha256(checkpoint)
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            stored = {}
        if stored.get("checkpoint_sha256") == digest and stored.get("device") == str(device):
            return stored
    from curriculum_cli.training.checkpoint import CKPT_STEP, load_checkpoint

    model, config = load_model(run.run_dir, device=str(device))
    own = synthetic_validation_set(config, split, device)
    fixed = synthetic_validation_set(config, split, device, n=n_spectra, seed=RESCORE_SEED)
    scores = {
        "split": split,
        "n_spectra": n_spectra,
        "seed": RESCORE_SEED,
        "val_seed": config.val_seed,
        "checkpoint_step": int(load_checkpoint(checkpoint)[CKPT_STEP]),
        "checkpoint_sha256": digest,
        "device": str(device),
        "own": accuracy_per_spectrum(model, own),
        "fixed": accuracy_per_spectrum(model, fixed),
    }
    write_json_atomic(path, scores)
    return scores


def _pooled(counts: dict[str, list[int]], metric: str) -> float:
    numerator, denominator = RESCORE_METRICS[metric][1]
    return sum(counts[numerator]) / sum(counts[denominator])


def rescore_runs(
    logs: list[RunLog], groups: list[str], metric: str, n_spectra: int, device: str = "auto"
) -> Rescore:
    """Score every run's final checkpoint on its own set and on ``n_spectra`` fixed spectra,
    then bootstrap each arm's paired differences to the baseline (the first group)."""
    from curriculum_cli.devices import resolve_device
    from curriculum_cli.training.validation import split_stage

    split = check_rescore(metric, n_spectra)
    settings = {
        json.dumps([split_stage(run.config.curriculum, split).model_dump(include=set(DATA_FIELDS)),
                    run.config.model_dump(mode="json")["vocab"]])
        for run in logs
    }  # fmt: skip
    if len(settings) > 1:
        raise PepcurrError(
            f"--rescore: the runs' {split} sets have different data settings or vocabularies, so "
            "no one set of spectra can score them all; compare runs whose "
            f"{'first' if split == 'val_easy' else 'last'} stages agree"
        )
    torch_device = resolve_device(device)
    scores = {str(run.run_dir): _score_run(run, split, n_spectra, torch_device) for run in logs}
    result = Rescore(
        metric=metric, split=split, n_spectra=n_spectra, seed=RESCORE_SEED,
        values={key: {which: _pooled(s[which], metric) for which in ("own", "fixed")}
                for key, s in scores.items()},
        steps={key: s["checkpoint_step"] for key, s in scores.items()},
    )  # fmt: skip
    names = list(dict.fromkeys(groups))
    by_group = {name: {run.config.seed: run for run, g in zip(logs, groups, strict=True)
                       if g == name} for name in names}  # fmt: skip
    baseline = by_group[names[0]]
    for arm in names[1:]:
        shared = [seed for seed in baseline if seed in by_group[arm]]
        if len(shared) < 2:
            result.notes.append(f"{arm}: fewer than 2 seeds shared with {names[0]}; no bootstrap")
            continue
        pairs = [(by_group[arm][seed], baseline[seed]) for seed in shared]
        for which, out in (("own", result.own), ("fixed", result.fixed)):
            if which == "own" and len({(a.config.val_seed, a.config.val_size) for p in pairs
                                       for a in p}) > 1:  # fmt: skip
                result.notes.append(f"{arm}: the runs' own validation sets differ; no bootstrap")
                continue
            counts = [[scores[str(run.run_dir)][which] for run in pair] for pair in pairs]
            out.append(paired_bootstrap(arm, counts, metric))
    return result


def paired_bootstrap(
    arm: str,
    pairs: list[list[dict[str, list[int]]]],
    metric: str,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = BOOTSTRAP_SEED,
) -> Bootstrap:
    """Bootstrap the spectra of one shared set under every seed pair's difference at once.

    ``pairs``: per seed, ``[arm counts, baseline counts]`` (``accuracy_counts`` lists of
    the same spectra). Each draw reweights the spectra by a multinomial resample (the
    same for all runs, so the pairing is kept) and pools the metric of each run.
    """
    import numpy as np

    numerator, denominator = RESCORE_METRICS[metric][1]
    right = np.array([[run[numerator] for run in pair] for pair in pairs], dtype=float)
    total = np.array([[run[denominator] for run in pair] for pair in pairs], dtype=float)
    n_pairs, _, n_spectra = right.shape
    observed = right.sum(axis=2) / total.sum(axis=2)
    differences = observed[:, 0] - observed[:, 1]
    rng = np.random.default_rng(seed)
    replicate = np.empty((draws, n_pairs))
    chunk = max(1, (1 << 22) // n_spectra)
    for start in range(0, draws, chunk):
        size = min(chunk, draws - start)
        weights = rng.multinomial(n_spectra, np.full(n_spectra, 1.0 / n_spectra), size=size)
        pooled = (weights @ right.reshape(-1, n_spectra).T) / (
            weights @ total.reshape(-1, n_spectra).T
        )  # [size, pairs * 2]
        pooled = pooled.reshape(size, n_pairs, 2)
        replicate[start : start + size] = pooled[:, :, 0] - pooled[:, :, 1]
    sd_pair = math.sqrt(float(replicate.var(axis=0, ddof=1).mean()))
    se_mean = float(replicate.mean(axis=1).std(ddof=1))
    nan = math.nan
    between = float((replicate - differences).var(axis=1, ddof=1).mean()) if n_pairs > 1 else nan
    paired_sd = float(differences.std(ddof=1)) if n_pairs > 1 else nan
    share = between / paired_sd**2 if paired_sd > 0 else nan
    common = math.sqrt(max(0.0, se_mean**2 - between / n_pairs)) if n_pairs > 1 else nan
    return Bootstrap(arm, n_spectra, n_pairs, draws, seed, sd_pair, math.sqrt(between), se_mean,
                     common, paired_sd, share)  # fmt: skip
