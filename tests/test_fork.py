"""Shared prefixes of A/B arms: which steps runs have in common, and the training plan."""

from __future__ import annotations

from pathlib import Path

from curriculum_cli.config import build_run_config
from curriculum_cli.fork import plan_segments, shared_prefix, steps_saved


def _config(curriculum: str, **options):
    return build_run_config(curriculum, **options)


def test_shipped_curricula_share_their_foundation():
    current, revised, conservative = (_config(n) for n in ("current", "revised", "conservative"))
    assert shared_prefix(current, revised) == 10_000
    assert shared_prefix(revised, conservative) == 15_000
    assert shared_prefix(current, conservative) == 10_000
    assert shared_prefix(revised, revised) == 100_000
    assert shared_prefix(_config("revised", scale=0.02), _config("current", scale=0.02)) == 200


def test_nothing_is_shared_across_seeds_or_settings():
    assert shared_prefix(_config("current"), _config("revised", seed=1)) == 0
    assert shared_prefix(_config("current"), _config("revised", lr=5e-4)) == 0


def test_three_arms_train_each_shared_prefix_once():
    runs = [(Path(name), _config(name)) for name in ("current", "revised", "conservative")]
    segments = plan_segments(runs)
    shown = [(str(s.run_dir), s.start, s.stop, s.copy_from and str(s.copy_from)) for s in segments]
    assert shown == [
        ("current", 0, 10_000, None),  # the common foundation, once
        ("revised", 10_000, 15_000, "current"),  # revised and conservative share 5,000 more
        ("conservative", 15_000, None, "revised"),
        ("revised", 15_000, None, None),
        ("current", 10_000, None, None),
    ]
    assert steps_saved(segments) == 10_000 + 10_000 + 5_000


def test_a_lone_run_is_one_segment():
    (segment,) = plan_segments([(Path("r"), _config("revised"))])
    assert (segment.start, segment.stop, segment.copy_from) == (0, None, None)
    assert steps_saved([segment]) == 0
