# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import errno
import gzip
import io
import os
import stat
import threading
import time

import pytest

from ansible_collections.airgap.docker.plugins.module_utils import compression, progress
from ansible_collections.airgap.docker.plugins.module_utils.archive_stream import read_archive, write_archive
from ansible_collections.airgap.docker.plugins.module_utils.disk_space import human_size
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.progress import Meter, ProgressFile
from ansible_collections.airgap.docker.plugins.module_utils.streaming import prefetch, read_chunks

MIB = 1 << 20
WALL = 1_700_000_000.0
STAMP = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(WALL))


class Clock:
    """A monotonic clock the test moves; counts how often it is read."""

    def __init__(self):
        self.now = 100.0
        self.reads = 0

    def __call__(self):
        self.reads += 1
        return self.now


class Lines:
    """A sink keeping the lines without their time stamp."""

    def __init__(self):
        self.lines = []
        self.closed = False

    def write(self, line):
        assert line.startswith(STAMP + " ")
        self.lines.append(line[len(STAMP) + 1:])

    def close(self):
        self.closed = True


def make_meter(total=None, estimated=False, what="saving a:1 to /srv/a.tar"):
    clock, sink = Clock(), Lines()
    meter = Meter(sink, what, progress.TAR, total, estimated, clock=clock, wall=lambda: WALL)
    return meter, clock, sink


def stream(meter, clock, blocks, size=MIB, seconds=0.1):
    """Feed blocks of size bytes, the clock moving `seconds` before each."""
    for _block in range(blocks):
        clock.now += seconds
        meter.add(size)


def read_lines(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read().splitlines()


# lines at the expected moments ---------------------------------------------------------------


def test_known_total_gives_a_line_at_every_tenth():
    meter, clock, sink = make_meter(total=100 * MIB)
    stream(meter, clock, 100, seconds=0.01)  # 1 s in all: the tenths come before the interval
    meter.finish()
    assert sink.lines[0] == "saving a:1 to /srv/a.tar: started, of 100.0 MiB"
    progress_lines = sink.lines[1:-1]
    assert [line.split("(")[1].split("%")[0] for line in progress_lines] == [str(p) for p in range(10, 101, 10)]
    assert progress_lines[4] == "saving a:1 to /srv/a.tar: 50.0 MiB of 100.0 MiB (50%), 100.0 MiB/s, about 1 s left"
    assert progress_lines[-1] == "saving a:1 to /srv/a.tar: 100.0 MiB of 100.0 MiB (100%), 100.0 MiB/s"
    assert sink.lines[-1] == "saving a:1 to /srv/a.tar: done, 100.0 MiB in 1 s, 100.0 MiB/s"
    assert sink.closed


def test_slow_stream_gives_a_line_every_interval():
    meter, clock, sink = make_meter(total=1000 * MIB)
    stream(meter, clock, 60, seconds=1.0)  # 60 MiB in 60 s: 6% only, so the interval decides
    times = list(sink.lines[1:])
    assert len(times) == 60 // int(progress.INTERVAL)
    assert times[0] == "saving a:1 to /srv/a.tar: 5.0 MiB of 1000.0 MiB (0%), 1.0 MiB/s, about 16 min 35 s left"
    assert times[-1].startswith("saving a:1 to /srv/a.tar: 60.0 MiB of 1000.0 MiB (6%), 1.0 MiB/s, about 15 min 40 s left")


def test_no_total_gives_no_percentage_and_no_time_left():
    meter, clock, sink = make_meter(total=None)
    stream(meter, clock, 12, seconds=1.0)  # 12 s
    meter.finish()
    assert sink.lines[0] == "saving a:1 to /srv/a.tar: started"
    assert sink.lines[1:-1] == ["saving a:1 to /srv/a.tar: 5.0 MiB, 1.0 MiB/s", "saving a:1 to /srv/a.tar: 10.0 MiB, 1.0 MiB/s"]
    assert sink.lines[-1] == "saving a:1 to /srv/a.tar: done, 12.0 MiB in 12 s, 1.0 MiB/s"


def test_an_estimate_is_called_one_and_may_be_passed():
    meter, clock, sink = make_meter(total=10 * MIB, estimated=True)
    stream(meter, clock, 20, seconds=1.0)  # twice the estimate
    assert sink.lines[0] == "saving a:1 to /srv/a.tar: started, about 10.0 MiB"
    assert sink.lines[1] == "saving a:1 to /srv/a.tar: 1.0 MiB of about 10.0 MiB (10%), 1.0 MiB/s, about 9 s left"
    assert sink.lines[-2:] == ["saving a:1 to /srv/a.tar: 15.0 MiB (more than the 10.0 MiB expected), 1.0 MiB/s",
                               "saving a:1 to /srv/a.tar: 20.0 MiB (more than the 10.0 MiB expected), 1.0 MiB/s"]
    percents = [int(line.split("(")[1].split("%")[0]) for line in sink.lines if "%)" in line]
    assert percents == list(range(10, 101, 10))  # a line at each tenth, and none beyond the whole


def test_an_estimate_learnt_later_gives_percentages_from_then_on():
    meter, clock, sink = make_meter(total=None)
    meter.expect(20 * MIB)
    stream(meter, clock, 2, seconds=0.1)
    assert sink.lines[1] == "saving a:1 to /srv/a.tar: 2.0 MiB of about 20.0 MiB (10%), 10.0 MiB/s, about 2 s left"


def test_the_clock_is_read_rarely_when_blocks_come_fast():
    meter, clock, sink = make_meter(total=None)
    stream(meter, clock, 100_000, size=64 << 10, seconds=0.001)  # 100 s of 64 KiB blocks
    assert clock.reads < 300  # about every 0.5 s, not on every block
    # A line every INTERVAL, late by up to a clock check: never more often.
    assert 100 // (progress.INTERVAL + 0.5) <= len(sink.lines) - 1 <= 100 // progress.INTERVAL


def test_a_stopped_clock_slows_the_checks_down():
    meter, clock, _sink = make_meter(total=None)
    stream(meter, clock, 10_000, seconds=0.0)
    assert clock.reads < 20


def test_the_last_line_on_failure_gives_the_reason_on_one_line():
    meter, clock, sink = make_meter(total=10 * MIB)
    stream(meter, clock, 3, seconds=0.5)
    meter.finish(ArchiveError("The gzip stream\nis truncated."))
    assert sink.lines[-1] == "saving a:1 to /srv/a.tar: failed after 3.0 MiB in 2 s: The gzip stream\\nis truncated."
    meter.finish()  # once only
    meter.add(MIB)
    assert sink.lines[-1].startswith("saving a:1 to /srv/a.tar: failed")


def test_what_is_kept_on_one_line():
    _meter, _clock, sink = make_meter(what="loading /srv/a\nb.tar")
    assert sink.lines[0] == "loading /srv/a\\nb.tar: started"


@pytest.mark.parametrize("seconds, text", [(0.4, "0 s"), (59, "59 s"), (61, "1 min 01 s"), (3600 * 2 + 7 * 60 + 3, "2 h 07 min")])
def test_durations(seconds, text):
    assert progress.duration(seconds) == text


# the file -------------------------------------------------------------------------------------


def test_watch_creates_the_file_0600_and_appends(tmp_path):
    path = tmp_path / "p.log"
    old = os.umask(0)
    try:
        with progress.saving(str(path), "saving a:1 to x", str(tmp_path / "x.tar"), 10):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with progress.loading(str(path), "loading x", str(tmp_path / "x.tar")):
        pass
    lines = read_lines(path)
    texts = [line.split(" ", 2)[2] for line in lines]
    assert len(texts) == 4
    assert texts[0] == "saving a:1 to x: started, about 10 B"
    assert texts[1].startswith("saving a:1 to x: done, 0 B in 0 s")
    assert texts[2] == "loading x: started"  # the archive is missing: no total
    assert texts[3].startswith("loading x: done, 0 B in 0 s")


def test_an_existing_file_keeps_its_content_and_mode(tmp_path):
    path = tmp_path / "p.log"
    path.write_text("earlier\n")
    path.chmod(0o644)
    with progress.saving(str(path), "saving", str(tmp_path / "x.tar")):
        pass
    assert read_lines(path)[0] == "earlier"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_the_failure_line_is_written_and_the_error_raised(tmp_path):
    path = tmp_path / "p.log"
    with pytest.raises(ArchiveError, match="broken"), progress.saving(str(path), "saving a", str(tmp_path / "x.tar")) as meter:
        meter.add(5)
        raise ArchiveError("broken")
    assert read_lines(path)[-1].endswith("saving a: failed after 5 B in 0 s: broken")
    assert progress.active(progress.TAR) is None


def test_without_a_progress_file_nothing_is_watched(tmp_path):
    with progress.saving(None, "saving a", str(tmp_path / "x.tar")) as meter:
        assert meter is None
        assert progress.active(progress.TAR) is None
    assert os.listdir(tmp_path) == []


def test_a_meter_is_found_only_for_what_it_counts_and_only_inside(tmp_path):
    with progress.loading(str(tmp_path / "p"), "loading", str(tmp_path / "x.tar")) as meter:
        assert progress.active(progress.ARCHIVE) is meter
        assert progress.active(progress.TAR) is None
    assert progress.active(progress.ARCHIVE) is None


class Warnings(list):
    def __call__(self, msg):
        self.append(msg)


def refused(tmp_path, path, archive=None):
    """Watch a step with path as progress file: (warnings, meter); the step always runs."""
    warnings, ran = Warnings(), []
    with progress.saving(str(path), "saving", str(archive or tmp_path / "x.tar"), warn=warnings) as meter:
        ran.append(True)
    assert ran == [True]
    return warnings, meter


def test_a_symlink_is_not_followed(tmp_path):
    target = tmp_path / "target"
    target.write_text("keep\n")
    (tmp_path / "p.log").symlink_to(target)
    warnings, meter = refused(tmp_path, tmp_path / "p.log")
    assert meter is None
    assert target.read_text() == "keep\n"
    assert len(warnings) == 1 and "symbolic link" in warnings[0] and str(tmp_path / "p.log") in warnings[0]


def test_a_dangling_symlink_creates_nothing(tmp_path):
    (tmp_path / "p.log").symlink_to(tmp_path / "elsewhere")
    warnings, _meter = refused(tmp_path, tmp_path / "p.log")
    assert not (tmp_path / "elsewhere").exists()
    assert len(warnings) == 1


def with_deadline(action, seconds=5.0):
    """Run action in a thread; fail instead of hanging when it blocks."""
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("value", action()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "blocked"
    return result["value"]


def test_a_fifo_without_reader_does_not_block(tmp_path):
    fifo = tmp_path / "p.log"
    os.mkfifo(str(fifo))
    warnings, meter = with_deadline(lambda: refused(tmp_path, fifo))
    assert meter is None
    assert len(warnings) == 1 and "FIFO" in warnings[0]


def test_a_fifo_with_a_reader_is_refused(tmp_path):
    fifo = tmp_path / "p.log"
    os.mkfifo(str(fifo))
    reader = os.open(str(fifo), os.O_RDONLY | os.O_NONBLOCK)
    try:
        warnings, meter = with_deadline(lambda: refused(tmp_path, fifo))
        assert meter is None
        assert len(warnings) == 1 and "not a regular file" in warnings[0]
        assert os.read(reader, 10) == b""  # nothing was written to it, and its writer is gone
    finally:
        os.close(reader)


def test_a_directory_is_refused(tmp_path):
    warnings, meter = refused(tmp_path, tmp_path)
    assert meter is None and len(warnings) == 1


def test_a_file_with_other_hard_links_is_refused(tmp_path):
    other = tmp_path / "other"
    other.write_text("keep\n")
    os.link(str(other), str(tmp_path / "p.log"))
    warnings, _meter = refused(tmp_path, tmp_path / "p.log")
    assert other.read_text() == "keep\n"
    assert len(warnings) == 1 and "hard links" in warnings[0]


def test_the_archive_itself_is_refused_under_any_name(tmp_path):
    archive = tmp_path / "x.tar"
    archive.write_bytes(b"tar")
    (tmp_path / "via").symlink_to(tmp_path, target_is_directory=True)
    for path in (archive, tmp_path / "via" / "x.tar"):
        warnings, meter = refused(tmp_path, path, archive)
        assert meter is None
        assert len(warnings) == 1 and "the archive itself" in warnings[0]
    assert archive.read_bytes() == b"tar"


def test_a_missing_directory_gives_one_warning_per_task(tmp_path):
    warnings, meter = refused(tmp_path, tmp_path / "missing" / "p.log")
    assert meter is None
    assert refused(tmp_path, tmp_path / "missing" / "p.log")[0] == []  # a second step of the task says nothing more
    assert warnings == ["progress_file %s cannot be written (No such file or directory); the task goes on without progress lines."
                        % (tmp_path / "missing" / "p.log")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any directory")
def test_an_unwritable_directory_gives_one_warning(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        warnings, meter = refused(tmp_path, locked / "p.log")
    finally:
        locked.chmod(0o700)
    assert meter is None
    assert len(warnings) == 1 and "Permission denied" in warnings[0]


def test_a_refused_open_gives_one_warning(tmp_path, monkeypatch):
    # What an unwritable directory does when the tests run as root, who may write anywhere.
    def denied(path, flags, mode=0o777):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)

    monkeypatch.setattr(progress.os, "open", denied)
    warnings, meter = refused(tmp_path, tmp_path / "p.log")
    assert meter is None
    assert warnings == ["progress_file %s cannot be written (Permission denied); the task goes on without progress lines."
                        % (tmp_path / "p.log")]


def test_a_failing_write_warns_once_and_stops_writing(tmp_path, monkeypatch):
    warnings = Warnings()
    sink = ProgressFile.open(str(tmp_path / "p.log"), warnings)
    calls = []

    def full(fd, data):
        calls.append(data)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(progress.os, "write", full)
    meter = Meter(sink, "saving", clock=Clock(), wall=lambda: WALL)
    meter.add(1)
    meter.finish(ArchiveError("x"))  # no exception from the progress file
    assert len(calls) == 1
    assert warnings == ["progress_file %s cannot be written (No space left on device); the task goes on without progress lines."
                        % (tmp_path / "p.log")]


def test_without_warn_a_refused_file_is_silent(tmp_path):
    os.mkfifo(str(tmp_path / "p.log"))
    with progress.saving(str(tmp_path / "p.log"), "saving", str(tmp_path / "x.tar")) as meter:
        assert meter is None


# through the stream helpers ------------------------------------------------------------------


def test_a_save_counts_the_tar_blocks_against_the_estimate(tmp_path):
    log = tmp_path / "p.log"
    blocks = [b"\0" * MIB] * 8
    with progress.saving(str(log), "saving a:1 to x.tar", str(tmp_path / "x.tar"), 8 * MIB) as meter:
        _target, transfer = write_archive(iter(blocks), str(tmp_path / "x.tar"), compression.NONE, None, 0,
                                          lambda block: None, write=False)
        assert meter.count == transfer.tar_size == 8 * MIB
    assert "done, 8.0 MiB in" in read_lines(log)[-1]


def test_a_load_counts_the_archive_file_against_its_size(tmp_path):
    archive = tmp_path / "x.tar.gz"
    archive.write_bytes(gzip.compress(os.urandom(100_000) + b"\0" * (3 * MIB)))
    log = tmp_path / "p.log"
    with progress.loading(str(log), "loading x.tar.gz", str(archive)) as meter:
        assert meter.total == archive.stat().st_size
        read_archive(str(archive), lambda block: None)
        assert meter.count == archive.stat().st_size
    lines = read_lines(log)
    assert lines[0].endswith("loading x.tar.gz: started, of %s" % human_size(archive.stat().st_size))
    assert "done, %s in" % human_size(archive.stat().st_size) in lines[-1]


def test_an_uncompressed_archive_is_counted_too():
    meter, _clock, _sink = make_meter()
    meter.counts = progress.ARCHIVE
    token = progress._active.set(meter)
    try:
        assert b"".join(read_chunks(compression.open_reader(io.BytesIO(b"x" * 5000), compression.NONE), 1024)) == b"x" * 5000
    finally:
        progress._active.reset(token)
    assert meter.count == 5000


def test_the_helpers_count_nothing_outside_a_step():
    source = io.BytesIO(b"x" * 10)
    assert compression.open_reader(source, compression.NONE) is source
    assert list(prefetch([b"a", b"b"])) == [b"a", b"b"]


def test_a_load_of_parts_is_measured_against_the_parts_together(tmp_path):
    (tmp_path / "x.tar.part001").write_bytes(b"x" * 20)
    (tmp_path / "x.tar.part002").write_bytes(b"x" * 10)
    with progress.loading(str(tmp_path / "p.log"), "loading x", str(tmp_path / "x.tar")) as meter:
        assert meter.total == 30


def test_an_export_learns_its_estimate_inside_the_step(tmp_path):
    progress.estimate(10)  # no step: nothing happens
    with progress.saving(str(tmp_path / "p.log"), "exporting c", str(tmp_path / "x.tar")) as meter:
        progress.estimate(4 * MIB)
        progress.estimate(8 * MIB)  # the first estimate stays
        assert (meter.total, meter.estimated) == (4 * MIB, True)


@pytest.mark.parametrize("name", ["app.tar.zst.part002", "app.tar.zst.airgap.json", ".app.tar.zst.abc123.partial"])
def test_the_archives_parts_sidecar_and_temporary_files_are_refused_too(tmp_path, name):
    archive = tmp_path / "app.tar.zst"
    target = tmp_path / name
    target.write_bytes(b"part bytes")
    warnings = []
    with progress.loading(str(target), "loading " + str(archive), str(archive), warnings.append):
        pass
    assert target.read_bytes() == b"part bytes"
    assert len(warnings) == 1 and "it is the archive itself" in warnings[0], warnings
