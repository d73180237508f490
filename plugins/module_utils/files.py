# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Atomic file writes, free-space checks and hashing file wrappers."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import queue
import re
import stat as stat_module
import tempfile
import threading
import time

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
        digest, size, _stat = hash_open_file(handle)
    return digest, size


def stat_identity(stat):
    """What tells one version of a file from another: its inode, size, modification time and inode
    change time. The kernel sets ctime on every write, rename and chmod, and nobody can set it back."""
    return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def hash_open_file(handle):
    """(sha256 hex, size, stat) of an open binary file, read from its start.

    `stat` is the file's fstat when nothing about the file changed while it was read (same
    identity before and after, and every byte of it read), else None: the digest then describes
    what was read, which is no longer necessarily the file, and must not be remembered for it.
    Identity comes from the open descriptor, never from the path, which may name another file by now.
    """
    before = os.fstat(handle.fileno())
    handle.seek(0)
    reader = HashingReader(handle)
    for _chunk in read_chunks(reader):
        pass
    after = os.fstat(handle.fileno())
    stable = stat_identity(before) == stat_identity(after) and reader.count == after.st_size
    return reader.sha256.hexdigest(), reader.count, after if stable else None


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
    """An archive opened for reading; a directory, FIFO or device in its place is one sentence at once."""
    try:
        return open_regular(path)
    except ArchiveError as exc:
        if os.path.isdir(path):
            raise ArchiveError("%s is a directory, not an archive." % path)
        raise exc


def open_regular(path):
    """`path` opened for reading when it is a regular file (after symbolic links); a FIFO or a device
    in its place is refused at once instead of blocking the run or reading without end."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except IsADirectoryError:
        raise ArchiveError("%s is a directory, not a file." % path)
    except OSError as exc:
        raise os_error(exc, path, "opening")
    if not stat_module.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ArchiveError("%s is not a regular file." % path)
    return os.fdopen(fd, "rb")


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


class LockTimeout(AirgapError):
    """Another run held a directory's lock for longer than we were asked to wait."""


PARTIAL_SUFFIX = ".partial"
# The random part tempfile puts in a name: letters, digits and "_", never a dot, so that the partial
# files of `a` are told apart from those of `a.x` (".a.x.<random>.partial").
_RANDOM_PART = re.compile(r"[A-Za-z0-9_]+")
_LOCK_UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF, errno.ENOSYS)


class AtomicFile:
    """A file written under a temporary name in the target's directory and renamed into
    place only by commit(): a failed or interrupted write never touches the old file.

    The temporary file is flock()ed for as long as this object may still rename it. A writer
    killed by a signal leaves it behind, but the kernel drops the lock with the process; the next
    AtomicFile for the same target removes the temporary files it can lock (their writer is dead)
    and keeps those it cannot (a live writer is still working on them).
    """

    def __init__(self, path, mode=None):
        self.path = path
        self.directory = os.path.dirname(os.path.abspath(path)) or "."
        remove_dead_partials(path)
        try:
            fd, self.temp_path = tempfile.mkstemp(prefix=partial_prefix(path), suffix=PARTIAL_SUFFIX, dir=self.directory)
        except OSError as exc:
            raise os_error(exc, self.directory, "creating a file in")
        self.file = os.fdopen(fd, "wb")
        # A descriptor of its own holds the lock: the file object is closed by sync(), long before
        # commit() renames the file, and the lock must last until then.
        self._lock_fd = os.dup(fd)
        _try_lock(self._lock_fd)
        os.chmod(self.temp_path, mode if mode is not None else _default_mode(path))

    def sync(self):
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()

    def temp_stat(self):
        """fstat of the temporary file, from the descriptor held until commit or abort (never from a path)."""
        return os.fstat(self._lock_fd)

    def open_temp(self):
        """The temporary file opened for reading, after something else (a file transfer) wrote it by
        its name: refused when that name no longer leads to the file this object created and locks."""
        try:
            fd = os.open(self.temp_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise os_error(exc, self.temp_path, "opening")
        ours, found = os.fstat(self._lock_fd), os.fstat(fd)
        if (ours.st_dev, ours.st_ino) != (found.st_dev, found.st_ino):
            os.close(fd)
            raise ArchiveError("%s was replaced by another file while it was written; nothing was kept." % self.temp_path)
        return os.fdopen(fd, "rb")

    def commit(self):
        """fsync, then rename over the target; call sync() first if already synced is fine."""
        if not self.file.closed:
            self.sync()
        os.rename(self.temp_path, self.path)
        self.temp_path = None
        self._unlock()

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
        self._unlock()

    def _unlock(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def partial_prefix(path):
    return ".%s." % os.path.basename(path)


def _try_lock(fd):
    """Take the lock that tells later runs this writer is alive. Where the file system has no
    locks, later runs cannot lock it either, and so keep the file: never removed while written."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pass


def partial_files(path):
    """Names of the temporary files of AtomicFile(path) in its directory, live or dead."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    prefix = partial_prefix(path)
    try:
        names = os.listdir(directory)
    except OSError:
        return directory, []
    found = [n for n in names if n.startswith(prefix) and n.endswith(PARTIAL_SUFFIX)
             and _RANDOM_PART.fullmatch(n[len(prefix):-len(PARTIAL_SUFFIX)])]
    return directory, sorted(found)


def remove_dead_partials(path):
    """Remove the temporary files that writers of `path` left behind when they were killed.

    A file is removed only when its lock can be taken, which no live writer allows; errors are
    ignored, since a leftover costs disk space and nothing else. Returns the names removed.
    """
    directory, names = partial_files(path)
    removed = []
    for name in names:
        if _remove_if_unlocked(os.path.join(directory, name)):
            removed.append(name)
    return removed


def _remove_if_unlocked(partial):
    try:
        seen = os.lstat(partial)
    except OSError:
        return False
    if not stat_module.S_ISREG(seen.st_mode):
        return False  # not something AtomicFile makes: a symbolic link, a FIFO or a device is left alone
    fd = _open_to_probe(partial)
    if fd is None:
        return False
    try:
        found = os.fstat(fd)
        if (found.st_dev, found.st_ino) != (seen.st_dev, seen.st_ino):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # held by a live writer, or no locks here: keep it
        # Still the file that was locked (not removed and replaced by another writer meanwhile)?
        now = os.lstat(partial)
        if (now.st_dev, now.st_ino) != (found.st_dev, found.st_ino):
            return False
        os.unlink(partial)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _open_to_probe(partial):
    """A descriptor to lock the file through: read-write where allowed (an exclusive lock over NFS
    needs it), else read-only. Never follows a link, never blocks."""
    flags = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    for access in (os.O_RDWR, os.O_RDONLY):
        try:
            return os.open(partial, access | flags)
        except OSError:
            continue
    return None


class DirectoryLock:
    """An flock() on a directory, held while a run writes (exclusive) or reads (shared) it.

    A second writer waits up to `timeout` seconds, then fails with one sentence that says why.
    The lock belongs to the open descriptor: the kernel drops it when the process ends, however
    it ends. On file systems where directories cannot be locked (NFS), runs are not serialized.
    """

    def __init__(self, directory, timeout, shared=False, what="the directory"):
        self.directory = directory
        self.timeout = timeout
        self.shared = shared
        self.what = what
        self.fd = None

    def __enter__(self):
        try:
            self.fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return self  # nothing to protect yet; whoever creates it locks it
        except OSError as exc:
            raise os_error(exc, self.directory, "opening")
        kind = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        deadline = time.monotonic() + max(0, self.timeout)
        pause = 0.05
        while True:
            try:
                fcntl.flock(self.fd, kind | fcntl.LOCK_NB)
                return self
            except OSError as exc:
                if exc.errno in _LOCK_UNSUPPORTED:
                    return self
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    self._close()
                    raise os_error(exc, self.directory, "locking")
            if time.monotonic() >= deadline:
                self._close()
                raise LockTimeout(
                    "Another run is %s %s %s (it holds the directory's lock), and it was still busy after %g second(s); "
                    "nothing was changed, run again once it is done." % (
                        "writing" if self.shared else "using", self.what, self.directory, self.timeout),
                    directory=self.directory, timeout=self.timeout)
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def __exit__(self, *exc_info):
        self._close()
        return False

    def _close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _default_mode(path):
    """Keep an existing file's mode; a new file gets 0666 less the umask, as open() would."""
    mode = _existing_mode(path, None)
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    return mode


def _existing_mode(path, new):
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return new


def fsync_directory(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


PRIVATE_MODE = 0o600


def write_bytes_atomically(path, data, mode=None):
    """Write `data` to path atomically. `mode` None keeps an existing file's mode and makes a new
    file 0600: what this collection writes this way (sidecars, manifests, memos) may record a
    container's environment, and what nobody chose to share is not shared."""
    if mode is None:
        mode = _existing_mode(path, PRIVATE_MODE)
    target = AtomicFile(path, mode=mode)
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
