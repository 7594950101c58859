"""Shared prefixes of A/B arms: which steps runs have in common, and the training plan."""

from __future__ import annotations

from pathlib import Path

from curriculum_cli.config import build_run_config
from curriculum_cli.fork import plan_segments, shared_prefix, steps_saved


def _config(curriculum: str, **options):
    return build_run_config(curriculum, **options)


def test_shipped_curricula_share_their_foundation():
    current, revised, conservative = (_config(n) for n in ("current", "revised", "conservative"))
    # stages agree until 10,000 (current's spectrum loss), 15,000 (revised's); gradients are
    # measured every 500 steps within 2,000 of an introduction, so records differ from
    # the first such step that is not a regular (every 2,000) one
    assert shared_prefix(current, revised) == 8_500
    assert shared_prefix(revised, conservative) == 13_000
    assert shared_prefix(current, conservative) == 8_500
    assert shared_prefix(revised, revised) == 100_000
    assert shared_prefix(_config("revised", scale=0.02), _config("current", scale=0.02)) == 170


def test_nothing_is_shared_across_seeds_or_settings():
    assert shared_prefix(_config("current"), _config("revised", seed=1)) == 0
    assert shared_prefix(_config("current"), _config("revised", lr=5e-4)) == 0


def test_three_arms_train_each_shared_prefix_once():
    runs = [(Path(name), _config(name)) for name in ("current", "revised", "conservative")]
    segments = plan_segments(runs)
    shown = [(str(s.run_dir), s.start, s.stop, s.copy_from and str(s.copy_from)) for s in segments]
    assert shown == [
        ("current", 0, 8_500, None),  # the common prefix, once
        ("revised", 8_500, 13_000, "current"),  # revised and conservative share 4,500 more
        ("conservative", 13_000, None, "revised"),
        ("revised", 13_000, None, None),
        ("current", 8_500, None, None),
    ]
    assert steps_saved(segments) == 8_500 + 8_500 + 4_500


def test_a_lone_run_is_one_segment():
    (segment,) = plan_segments([(Path("r"), _config("revised"))])
    assert (segment.start, segment.stop, segment.copy_from) == (0, None, None)
    assert steps_saved([segment]) == 0
