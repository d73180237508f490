"""The benchmark report's time targets: the module's own time against the CLI's, round by round,
with the median, its verdict and the rounds' range side by side."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

report = pytest.importorskip("report")


def entry(case, tool, seconds, module_seconds=None, reference=False):
    return {"case": case, "tool": tool, "reference": reference, "seconds": seconds, "module_seconds": module_seconds or [],
            "median": sorted(seconds)[len(seconds) // 2], "ratio_median": 1.0, "module_median": None, "peak_rss": None}


def cold_load(module_seconds):
    return [entry("cold load", "docker load -i", [10.0, 10.0, 10.0, 20.0], reference=True),
            entry("cold load", "image_archive from .tar.zst", [13.0, 13.0, 13.0, 23.0], module_seconds)]


def target_row(entries, text):
    rows = report._targets(entries, {}, "overlay2")  # pylint: disable=protected-access
    return next(row for row in rows if row[0] == text)


def test_a_median_just_over_the_limit_shows_enough_decimals_to_say_why_it_is_missed():
    # In-round ratios 0.95, 1.04, 1.064, 1.2: the median is 1.052.
    text, figure, met, note = target_row(cold_load([9.5, 10.4, 10.64, 24.0]), "cold load from zstd <= 1.05x docker load -i (module time)")
    assert (figure, met) == ("1.052x", False)
    assert note == "4 rounds, 0.95x to 1.20x; 2 within 1.05x", text


def test_a_met_module_time_target_gives_the_rounds_range_too():
    # In-round ratios 0.90, 0.99, 1.00, 0.95: the median is 0.97.
    _text, figure, met, note = target_row(cold_load([9.0, 9.9, 10.0, 19.0]), "cold load from zstd <= 1.05x docker load -i (module time)")
    assert (figure, met) == ("0.970x", True)
    assert note == "4 rounds, 0.90x to 1.00x; 4 within 1.05x"


def test_without_module_times_there_is_no_module_time_target():
    rows = report._targets(cold_load([]), {}, "overlay2")  # pylint: disable=protected-access
    assert [row[0] for row in rows] == ["cold load from zstd <= 1.05x docker load -i (whole playbook)"]


@pytest.mark.parametrize("recorded, claimed", [({"rotated": True}, True), ({}, False)])
def test_the_report_says_the_order_rotated_only_when_the_run_recorded_it(recorded, claimed):
    results = dict({"size_bytes": 1 << 30, "rounds": 5, "warmup": 1, "started": "2026-12-02T07:12:25Z", "engines": {}, "cases": [],
                    "machine": {"cpu": "cpu", "cores": 2, "memory_gib": 23.5, "disk": "disk", "kernel": "kernel"}}, **recorded)
    header = report.markdown(results).splitlines()[2]
    assert header.startswith("Image of 1024 MiB from real files, 5 recorded rounds after 1 warm-up round(s)")
    assert ("each round starting with the next tool" in header) is claimed
