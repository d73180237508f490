"""The benchmark's cold loads read their archive from the disk: bench/run.py drops the archive
from the page cache before each one (the module writes archives past the cache, the CLI through
it, so otherwise only the CLI's loads would read from memory)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

run = pytest.importorskip("run")


def resident_bytes(path):
    found = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                           capture_output=True, text=True, check=True)
    return int(found.stdout.split()[0])


@pytest.mark.skipif(not shutil.which("fincore"), reason="util-linux's fincore is not installed")
def test_an_archive_written_through_the_cache_is_dropped_from_it(tmp_path):
    archive = tmp_path / "cli.tar"
    archive.write_bytes(b"\x01" * (8 << 20))
    if resident_bytes(archive) == 0:
        pytest.skip("this file system does not keep written files in the page cache")
    run.evict_from_page_cache(archive)
    assert resident_bytes(archive) == 0
    assert archive.read_bytes() == b"\x01" * (8 << 20)  # dropped from memory, not changed
