# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from ansible_collections.airgap.docker.plugins.plugin_utils import progress
from ansible_collections.airgap.docker.plugins.plugin_utils.progress import Progress, open_position

MIB = 1 << 20


@pytest.fixture
def lines(monkeypatch):
    said = []
    monkeypatch.setattr(progress, "display", SimpleNamespace(verbosity=1, v=lambda msg, host=None: said.append(msg)))
    return said


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_line_every_tenth_of_the_way_with_rate_and_time_left(lines):
    done, clock = [0], Clock()
    report = Progress("push_archive a", 100 * MIB, lambda: done[0], host="h", clock=clock)
    report.tick()
    assert lines == []
    clock.now += 2
    done[0] = 10 * MIB
    report.tick()
    assert lines == ["push_archive a: 10.0 MiB of 100.0 MiB (10%), 5.0 MiB/s, about 18 s left"]
    done[0] = 15 * MIB
    report.tick()
    assert len(lines) == 1  # neither a tenth more nor 30 s since the last line


def test_a_line_every_30_seconds_when_it_moves_slowly_or_not_at_all(lines):
    done, clock = [MIB], Clock()
    report = Progress("fetch_archive a", 100 * MIB, lambda: done[0], start=MIB, clock=clock)
    clock.now += 29
    report.tick()
    assert lines == []
    clock.now += 1
    report.tick()
    assert lines == ["fetch_archive a: 1.0 MiB of 100.0 MiB (1%), 0 B/s, time left unknown"]


def test_start_and_end_lines_and_nothing_below_v(monkeypatch):
    said = []
    monkeypatch.setattr(progress, "display", SimpleNamespace(verbosity=0, v=lambda msg, host=None: said.append(msg)))
    with Progress("x", 10, lambda: 5) as report:
        assert report._thread is None  # no thread below -v
    assert said == []


def test_the_watching_thread_stops_with_the_transfer(lines, monkeypatch):
    monkeypatch.setattr(progress, "POLL_SECONDS", 0.01)
    with Progress("x", 4 * MIB, lambda: 2 * MIB, start=MIB) as report:
        thread = report._thread
        assert thread.daemon
    assert not thread.is_alive()
    assert lines[0] == "x: 3.0 MiB to move of 4.0 MiB (1.0 MiB already there)"
    assert lines[-1].startswith("x: done, 3.0 MiB moved in ")


def test_a_failed_transfer_says_where_it_stopped(lines):
    with pytest.raises(RuntimeError), Progress("x", 4 * MIB, lambda: 2 * MIB):
        raise RuntimeError("link down")
    assert lines[-1] == "x: stopped at 2.0 MiB of 4.0 MiB"


def test_open_position_finds_a_child_process_reading_the_file(tmp_path):
    path = tmp_path / "archive"
    path.write_bytes(b"x" * 100000)
    reader = subprocess.Popen([sys.executable, "-c", "import sys, time; f = open(sys.argv[1], 'rb', buffering=0); f.read(12345); "
                               "print('read', flush=True); time.sleep(30)", str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline() == "read\n"
        assert open_position(str(path)) == 12345
    finally:
        reader.kill()
        reader.wait()
        reader.stdout.close()


def test_open_position_of_a_file_nobody_reads_is_unknown(tmp_path):
    path = tmp_path / "archive"
    path.write_bytes(b"x")
    assert open_position(str(path)) is None
    assert open_position(str(tmp_path / "missing")) is None
