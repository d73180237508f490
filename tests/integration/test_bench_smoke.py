"""The benchmark harness runs end to end (small image, one round): every case produces figures.

Timings are not checked here; `make bench` measures them on a 1 GB image.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CASES = {
    "cold save": {"docker save -o", "community.docker docker_image_export", "image_archive none", "image_archive zstd"},
    "warm save": {"community.docker docker_image_export", "image_archive"},
    "cold load": {"docker load -i", "community.docker docker_image_load", "image_archive from .tar", "image_archive from .tar.zst"},
    "warm load": {"docker load -i", "community.docker docker_image_load", "image_archive"},
    "container cold": {"docker export + import", "container_archive export + import"},
    "container warm": {"docker export + import", "container_archive export + import"},
}


def test_every_case_produces_figures(tmp_path):
    output = tmp_path / "results"
    proc = subprocess.run([sys.executable, str(REPO / "bench/run.py"), "--smoke", "--output", str(output), "--work", str(tmp_path / "work")],
                          capture_output=True, text=True, check=False, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((output / "latest.json").read_text())
    assert set(results["engines"]) == {"classic", "modern"}
    for engine in results["engines"]:
        entries = [e for e in results["cases"] if e["engine"] == engine]
        found = {case: {e["tool"] for e in entries if e["case"] == case} for case in CASES}
        assert found == CASES, found
        for entry in entries:
            assert entry["seconds"] and entry["median"] > 0, entry
            if entry["tool"].startswith(("image_archive", "container_archive")):
                assert entry["module_seconds"] and entry["peak_rss"], entry
    table = (output / "latest.md").read_text()
    assert "| target |" in table and "cold save" in table
    assert (output / "latest.png").stat().st_size > 10000
