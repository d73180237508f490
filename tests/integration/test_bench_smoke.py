"""The benchmark harness runs end to end (small image, one round): every case produces figures.
The suite's cases run in the module session, on its modern engine; the delta migration, whose role
part relays to the fleet's hosts, in the fleet session on the fleet's engines. The benchmark's
virtualenv is built by tests/harness/bootstrap.sh, or by the first of them.

Timings are not checked here; `make bench` measures them on a 1 GB image. The delta migration's
byte counts do not depend on the image's size, so they are checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINE_ROOT = os.environ.get("AIRGAP_ENGINES_ROOT", "/var/tmp/airgap-engines")
CASES = {
    # The progress_file runs are measurements only, left out of a smoke run.
    "cold save": {"docker save -o", "docker save -o, then sync FILE", "community.docker docker_image_export", "image_archive none",
                  "image_archive zstd"},
    "warm save": {"community.docker docker_image_export", "image_archive"},
    "cold load": {"docker load -i", "community.docker docker_image_load", "image_archive from .tar", "image_archive from .tar.zst"},
    "warm load": {"docker load -i", "community.docker docker_image_load", "image_archive"},
    "container cold": {"docker export + import", "container_archive export + import"},
    "container warm": {"docker export + import", "container_archive export + import"},
}
# bench/delta.py: a smoke run leaves out community.docker, the cut from a kept archive and the role's full run.
DELTA_FULL = "image_archive full: save zstd + load"
DELTA_THIN = "image_archive delta: inventory + thin save + load"
DELTA_MODULE_TOOLS = {DELTA_FULL, "docker save | zstd, zstd -d | docker load", DELTA_THIN}
DELTA_ROLE = "migrate role, migrate_delta true"
MIB = 1 << 20
# The fleet's target engines, not those of the module tests, which run meanwhile in the other session.
FLEET_ENGINES = dict(os.environ, AIRGAP_BENCH_CLASSIC_HOST="unix://%s/run/fleet-classic.sock" % ENGINE_ROOT,
                     AIRGAP_BENCH_MODERN_HOST="unix://%s/run/fleet-modern.sock" % ENGINE_ROOT)


def check_delta(delta, table):
    versions = delta["versions"]
    assert versions["changed_layers"] == 1 and versions["shared_layers"] == versions["layers"] - 1, versions
    # The top layer is a few KB; the rest of the image is megabytes.
    assert 0 < versions["changed_layer_bytes"] < 64 * 1024 < versions["v2_layer_bytes"], versions
    budget = versions["changed_layer_bytes"] + MIB
    assert set(delta["receivers"]) == {"classic", "modern"}
    for engine in delta["receivers"]:
        entries = {e["tool"]: e for e in delta["module"] if e["engine"] == engine}
        assert set(entries) == DELTA_MODULE_TOOLS, entries.keys()
        for entry in entries.values():
            assert entry["seconds"] and entry["median"] > 0 and entry["metrics"]["archive_bytes"][0] > 0, entry
        full, thin = entries[DELTA_FULL]["metrics_median"], entries[DELTA_THIN]["metrics_median"]
        # The thin archive leaves out exactly the layers v1 shares, and carries only the changed one.
        assert thin["omitted_layers"] == versions["shared_layers"], thin
        assert thin["carried_layer_bytes"] == versions["changed_layer_bytes"], thin
        assert thin["archive_bytes"] <= budget and thin["archive_bytes"] * 100 < full["archive_bytes"], (thin, full)
        assert 0 < thin["bytes_to_engine"] * 100 < full["bytes_to_engine"], (thin, full)
        assert thin["inventory_layers"] >= versions["shared_layers"], thin
    (role,) = delta["role"]
    assert role["tool"] == DELTA_ROLE and role["seconds"], role
    for host in ("tgt-classic", "tgt-modern"):
        figures = role["metrics_median"]
        assert figures["thin %s" % host] == 1 and figures["fallback %s" % host] == 0, figures
        assert 0 < figures["bytes_sent %s" % host] <= budget and figures["bytes_sent %s" % host] * 100 < figures["bytes_full %s" % host], figures
    assert delta["floors"]["fleet_playbook_seconds"] > 0
    assert "## Delta migration" in table
    for engine in ("classic engine", "modern engine"):
        assert any(line.startswith("| modules | %s" % engine) and line.endswith("| met |") for line in table.splitlines()), table


def run_bench(tmp_path, part, engines, env=None):
    """bench/run.py --smoke for one part (suite or delta) on some engines; returns (results, latest.md)."""
    output = tmp_path / "results"
    proc = subprocess.run([sys.executable, str(REPO / "bench/run.py"), "--smoke", "--cases", part, "--engines", engines,
                           "--output", str(output), "--work", str(tmp_path / "work")],
                          capture_output=True, text=True, check=False, timeout=1200, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (output / "latest.png").stat().st_size > 10000
    return json.loads((output / "latest.json").read_text()), (output / "latest.md").read_text()


def test_every_suite_case_produces_figures(tmp_path):
    """The save, load and container cases, on the module session's modern engine (a session runs one
    test at a time, so nothing else uses it meanwhile). The harness is the same on every engine; the
    delta test below runs on two."""
    results, table = run_bench(tmp_path, "suite", "modern")
    assert set(results["engines"]) == {"modern"}
    for engine in results["engines"]:
        entries = [e for e in results["cases"] if e["engine"] == engine]
        found = {case: {e["tool"] for e in entries if e["case"] == case} for case in CASES}
        assert found == CASES, found
        for entry in entries:
            assert entry["seconds"] and entry["median"] > 0, entry
            assert entry["metrics_median"]["cpu_seconds"] > 0, entry  # of the CLI process, or of the module's
            if entry["tool"].startswith(("image_archive", "container_archive")):
                assert entry["module_seconds"] and entry["peak_rss"], entry
            if entry["case"] == "cold save" and entry["tool"].startswith("image_archive"):
                assert 0 <= entry["metrics_median"]["engine_wait_seconds"] <= min(entry["module_seconds"]), entry
    assert "| target |" in table and "cold save" in table and "| each round s |" in table


@pytest.mark.fleet
def test_every_delta_case_produces_figures(tmp_path):
    """The delta migration, by the modules and by the role, on the fleet's engines and hosts."""
    # The delta's role part relays to the fleet's targets, whose engines these are.
    results, table = run_bench(tmp_path, "delta", "classic,modern", FLEET_ENGINES)
    check_delta(results["delta"], table)
