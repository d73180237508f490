# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Atomic file writes, free-space checks and hashing file wrappers."""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import tempfile
import threading

from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError, ArchiveError, InvalidInput, SpaceError

CHUNK = 1 << 20


def human_size(num):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(num) < 1024 or unit == "TiB":
            return ("%d %s" % (num, unit)) if unit == "B" else ("%.1f %s" % (num, unit))
        num /= 1024.0
    return "%d B" % num  # pragma: no cover


def parse_sha256(value):
    """A SHA-256 given as `sha256:<hex>` or `<hex>`, as bare lowercase hex."""
    text = str(value).strip().lower()
    if text.startswith("sha256:"):
        text = text[len("sha256:"):]
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidInput("%r is not a SHA-256 checksum (64 hex digits, optionally prefixed with sha256:)." % value)
    return text


def file_sha256(path):
    """(sha256 hex, size) of a file, read in chunks."""
    with open_for_reading(path) as handle:
        reader = HashingReader(handle)
        for _chunk in read_chunks(reader):
            pass
    return reader.sha256.hexdigest(), reader.count


def free_bytes(directory):
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def check_free_space(directory, needed, what):
    """Fail early, with the numbers, when `needed` bytes will not fit in directory."""
    free = free_bytes(directory)
    if needed > free:
        raise SpaceError(
            "Not enough free space in %s for %s: about %s needed, %s free." % (directory, what, human_size(needed), human_size(free)),
            needed=needed, free=free,
        )
    return free


def os_error(exc, path, action):
    """An OSError as one of our errors, with a sentence that names the path."""
    if exc.errno == errno.ENOSPC:
        return SpaceError("No space left on the device while %s %s." % (action, path))
    if exc.errno in (errno.EACCES, errno.EPERM):
        return AirgapError("Permission denied while %s %s." % (action, path))
    if exc.errno == errno.ENOENT:
        return ArchiveError("%s does not exist." % path)
    return AirgapError("Error while %s %s: %s." % (action, path, exc.strerror or exc))


def check_writable_directory(path):
    """Fail before any work when the file's directory is missing or not writable."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ArchiveError("The directory %s for %s does not exist." % (directory, os.path.basename(path)))
    if not os.access(directory, os.W_OK | os.X_OK):
        raise AirgapError("Permission denied: cannot create files in %s." % directory)


def stat_or_none(path):
    """os.stat of path, or None when there is no such file."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise os_error(exc, path, "reading")


def open_for_reading(path):
    try:
        return open(path, "rb")
    except IsADirectoryError:
        raise ArchiveError("%s is a directory, not an archive." % path)
    except OSError as exc:
        raise os_error(exc, path, "opening")


class HashingReader:
    """Wraps a binary file; hashes and counts what is read through it."""

    def __init__(self, raw):
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.count = 0

    def read(self, size=CHUNK):
        data = self._raw.read(size)
        self.sha256.update(data)
        self.count += len(data)
        return data

    def readinto(self, buffer):
        size = self._raw.readinto(buffer)
        self.sha256.update(memoryview(buffer)[:size])
        self.count += size
        return size

    def readable(self):
        return True


class HashingWriter:
    """Wraps a binary file; hashes and counts what is written through it."""

    def __init__(self, raw):
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.count = 0

    def write(self, data):
        self.sha256.update(data)
        self.count += len(data)
        self._raw.write(data)
        return len(data)

    def flush(self):
        self._raw.flush()


class AtomicFile:
    """A file written under a temporary name in the target's directory and renamed into
    place only by commit(): a failed or interrupted write never touches the old file."""

    def __init__(self, path, mode=None):
        self.path = path
        self.directory = os.path.dirname(os.path.abspath(path)) or "."
        try:
            fd, self.temp_path = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".partial", dir=self.directory)
        except OSError as exc:
            raise os_error(exc, self.directory, "creating a file in")
        self.file = os.fdopen(fd, "wb")
        os.chmod(self.temp_path, mode if mode is not None else _default_mode(path))

    def sync(self):
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()

    def commit(self):
        """fsync, then rename over the target; call sync() first if already synced is fine."""
        if not self.file.closed:
            self.sync()
        os.rename(self.temp_path, self.path)
        self.temp_path = None

    def abort(self):
        """Remove the temporary file; the target is untouched. Safe to call more than once."""
        if self.temp_path is None:
            return
        try:
            self.file.close()  # may flush buffered bytes and fail again on a full disk
        except OSError:
            pass
        try:
            os.unlink(self.temp_path)
        except OSError:
            pass
        self.temp_path = None


def _default_mode(path):
    """Keep an existing file's mode; a new file gets 0666 less the umask, as open() would."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def fsync_directory(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomically(path, data):
    target = AtomicFile(path)
    try:
        target.file.write(data)
        target.commit()
    except BaseException:
        target.abort()
        raise


_DONE = object()


def prefetch(iterable, depth=4):
    """Iterate `iterable` in a background thread, `depth` items ahead.

    Socket reads, zlib/zstd and hashlib release the GIL, so reading, compressing and writing
    overlap on separate cores. An exception in the producer is raised in the consumer.
    Closing the returned generator stops the producer.
    """
    items = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry):
        while not stop.is_set():
            try:
                items.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in iterable:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # handed to the consumer
            put((_DONE, exc))

    worker = threading.Thread(target=produce, name="airgap-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = items.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def read_chunks(reader, size=CHUNK):
    """Yield blocks of up to `size` bytes from a file-like reader until EOF."""
    while True:
        block = reader.read(size)
        if not block:
            return
        yield block
