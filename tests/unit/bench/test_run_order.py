"""The benchmark's rounds: with rotate, each round starts with the next tool, and every figure
stays with its tool and its round, so that ratios still pair runs of the same round."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

tools = pytest.importorskip("tools")


def scripted_tools(ran):
    """Three tools; the run of tool NAME in round r takes 10 * r + its index seconds."""
    rounds = {}

    def tool(index, name):
        def prepare():
            ran.append(("prepare", name))

        def run(_box):
            ran.append(("run", name))
            count = rounds[name] = rounds.get(name, 0) + 1
            return 10.0 * count + index, None, None
        return (name, index == 0, prepare, run)
    return [tool(index, name) for index, name in enumerate(("cli", "theirs", "ours"))]


@pytest.mark.parametrize("rotate, expected", [
    (True, ["cli", "theirs", "ours", "theirs", "ours", "cli", "ours", "cli", "theirs", "cli", "theirs", "ours"]),
    (False, ["cli", "theirs", "ours"] * 4),
])
def test_the_order_of_the_tools_in_each_round(rotate, expected):
    ran = []
    figures = tools.run_case(None, scripted_tools(ran), rounds=3, warmup=1, rotate=rotate)
    assert [name for step, name in ran if step == "run"] == expected
    assert [name for step, name in ran if step == "prepare"] == expected  # each right before its run
    by_name = {entry["tool"]: entry for entry in figures}
    # The warm-up round is dropped; each tool keeps its own runs of rounds 2 to 4, in order.
    assert by_name["cli"]["seconds"] == [20.0, 30.0, 40.0]
    assert by_name["ours"]["seconds"] == [22.0, 32.0, 42.0]
    assert by_name["ours"]["ratios"] == [round(22 / 20, 4), round(32 / 30, 4), round(42 / 40, 4)]
