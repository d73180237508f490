"""A host's share and a peer's fetch (module_utils/peer_share.py, peer_fetch.py), over loopback:
what is served to whom, what a receiver keeps, and that a stopped share leaves nothing running."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time

import pytest

from ansible_collections.airgap.docker.plugins.module_utils import peer_fetch, peer_share
from ansible_collections.airgap.docker.plugins.module_utils.atomic_file import AtomicFile
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, ChecksumMismatch, InvalidInput

TOKEN = "t" * 32
ARCHIVE = "images/app.tar"
SIDECAR = ARCHIVE + ".airgap.json"


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def staged(tmp_path):
    root = tmp_path / "share"
    (root / "images").mkdir(parents=True)
    payload, side = os.urandom(300_000), b'{"schema": 1}'
    (root / ARCHIVE).write_bytes(payload)
    (root / SIDECAR).write_bytes(side)
    (tmp_path / "dest" / "images").mkdir(parents=True)
    return root, payload, side, tmp_path / "dest" / ARCHIVE


@pytest.fixture
def share(staged):
    root = staged[0]
    served = peer_share.start(str(root), [ARCHIVE, "images/other.tar"], "127.0.0.1", 0, TOKEN, 60)
    yield served
    peer_share.stop(str(root))


def fetch(served, dest, payload, side, **changes):
    args = dict(address="127.0.0.1", port=served["port"], token=TOKEN, path=ARCHIVE, dest=str(dest), sha256=sha(payload),
                size=len(payload), sidecar_sha256=sha(side), timeout=2)
    args.update(changes)
    return peer_fetch.fetch(**args)


def test_a_fetch_keeps_the_archive_and_its_sidecar_when_they_match(staged, share):
    _root, payload, side, dest = staged
    done = fetch(share, dest, payload, side)
    assert done["bytes"] == len(payload) + len(side)
    assert dest.read_bytes() == payload and (dest.parent / "app.tar.airgap.json").read_bytes() == side
    assert oct(dest.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("change, error, message", [
    ({"token": "x" * 32}, peer_fetch.PeerError, "answered 403"),
    ({"path": "images/other.tar"}, peer_fetch.PeerError, "answered 404"),
    ({"path": "../share/images/app.tar"}, peer_fetch.PeerError, "answered 404"),
    ({"sha256": "0" * 64}, ChecksumMismatch, "the manifest says 0000"),
    ({"size": 1000}, ChecksumMismatch, "sent more than the 1000 bytes"),
    ({"sidecar_sha256": "0" * 64}, ChecksumMismatch, "sent the sidecar of images/app.tar with sha256"),
])
def test_anything_but_the_manifests_bytes_is_refused_and_nothing_kept(staged, share, change, error, message):
    _root, payload, side, dest = staged
    with pytest.raises(error) as failure:
        fetch(share, dest, payload, side, **change)
    assert message in str(failure.value)
    assert os.listdir(dest.parent) == []


def test_a_listed_name_that_is_a_symbolic_link_is_not_served(staged, tmp_path):
    root, payload, side, dest = staged
    (tmp_path / "secret").write_bytes(payload)
    os.rename(root / ARCHIVE, tmp_path / "moved")
    os.symlink(tmp_path / "secret", root / ARCHIVE)
    served = peer_share.start(str(root), [ARCHIVE], "127.0.0.1", 0, TOKEN, 60)
    try:
        with pytest.raises(peer_fetch.PeerError, match="answered 404"):
            fetch(served, dest, payload, side)
    finally:
        peer_share.stop(str(root))


def test_a_peer_that_stops_sending_is_given_up_after_the_timeout(staged):
    _root, payload, side, dest = staged
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def half_then_silence():
        conn = listener.accept()[0]
        conn.recv(65536)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload[:1000])
        time.sleep(3)
        conn.close()

    worker = threading.Thread(target=half_then_silence, daemon=True)
    worker.start()
    started = time.monotonic()
    with pytest.raises(peer_fetch.PeerError, match=r"stopped sending images/app\.tar after 1000 B: no data for the timeout"):
        fetch({"port": listener.getsockname()[1]}, dest, payload, side, timeout=1)
    assert time.monotonic() - started < 2.5
    assert os.listdir(dest.parent) == []
    listener.close()


def test_a_peer_that_is_not_there_fails_at_once(staged):
    _root, payload, side, dest = staged
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(peer_fetch.PeerError, match=r"did not answer for images/app\.tar: Connection refused"):
        fetch({"port": port}, dest, payload, side)


def test_stop_ends_the_server_and_removes_its_pid_file(staged, share):
    root = staged[0]
    assert peer_share.running(str(root))["pid"] == share["pid"]
    assert peer_share.stop(str(root)) is True
    assert peer_share.running(str(root)) is None
    assert not (root / peer_share.PID_FILE).exists()
    assert peer_share.stop(str(root)) is False
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", share["port"])) != 0


def test_the_server_ends_by_itself_when_its_lifetime_is_over(staged):
    root = staged[0]
    served = peer_share.start(str(root), [ARCHIVE], "127.0.0.1", 0, TOKEN, 1)
    for _attempt in range(60):
        if peer_share.running(str(root)) is None:
            break
        time.sleep(0.1)
    assert peer_share.running(str(root)) is None
    assert not (root / peer_share.PID_FILE).exists()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", served["port"])) != 0


def test_a_pid_file_naming_another_process_kills_nothing(staged):
    root = staged[0]
    (root / peer_share.PID_FILE).write_text('{"pid": %d, "start": 1}' % os.getpid())
    assert peer_share.stop(str(root)) is False
    assert not (root / peer_share.PID_FILE).exists()
    (root / peer_share.PID_FILE).write_text("not json")
    assert peer_share.stop(str(root)) is False


def test_a_second_start_replaces_the_first(staged, share):
    root = staged[0]
    again = peer_share.start(str(root), [ARCHIVE], "127.0.0.1", 0, TOKEN, 60)
    assert again["pid"] != share["pid"] and peer_share.running(str(root))["pid"] == again["pid"]


@pytest.mark.parametrize("address, token, error, message", [
    ("192.0.2.77", TOKEN, ArchiveError, "it is not an address of this host: set migrate_fanout_address"),
    ("127.0.0.1", "short", InvalidInput, "at least 16 characters"),
])
def test_a_share_that_cannot_start_says_why(staged, address, token, error, message):
    with pytest.raises(error, match=message):
        peer_share.start(str(staged[0]), [ARCHIVE], address, 0, token, 60)
    assert peer_share.running(str(staged[0])) is None


def relaying_share(tmp_path, payload, side):
    """A share of a host that does not hold the archive yet, but will (its size is given)."""
    root = tmp_path / "relay"
    (root / "images").mkdir(parents=True)
    served = peer_share.start(str(root), [ARCHIVE], "127.0.0.1", 0, TOKEN, 60, sizes={ARCHIVE: len(payload)})
    return root, served


def write_slowly(root, payload, side, give_up_after=None, delay=0.0):
    """What peer_fetch does on the relaying host: the archive into an AtomicFile, in pieces, then
    its sidecar; or (give_up_after) the archive's first bytes, then it gives up."""
    time.sleep(delay)
    archive = AtomicFile(str(root / ARCHIVE), mode=0o600)
    for start in range(0, len(payload), 50_000):
        if give_up_after is not None and start >= give_up_after:
            time.sleep(0.3)
            archive.abort()
            return
        archive.file.write(payload[start:start + 50_000])
        archive.file.flush()
        time.sleep(0.05)
    sidecar = AtomicFile(str(root / SIDECAR), mode=0o600)
    sidecar.file.write(side)
    time.sleep(0.2)
    archive.commit()
    sidecar.commit()


@pytest.mark.parametrize("delay", [0.0, 0.5])
def test_a_relaying_share_passes_the_archive_on_as_it_arrives(staged, tmp_path, delay):
    _root, payload, side, dest = staged
    root, served = relaying_share(tmp_path, payload, side)
    writer = threading.Thread(target=write_slowly, args=(root, payload, side), kwargs={"delay": delay})
    try:
        started = time.monotonic()
        writer.start()
        done = fetch(served, dest, payload, side)
        # The copy ends with the writer's last piece, not a whole transfer after it.
        assert time.monotonic() - started < delay + 0.05 * 6 + 2
        writer.join()
    finally:
        peer_share.stop(str(root))
    assert done["bytes"] == len(payload) + len(side)
    assert dest.read_bytes() == payload and (dest.parent / "app.tar.airgap.json").read_bytes() == side


def test_a_relay_whose_writer_gives_up_ends_early_and_nothing_is_kept(staged, tmp_path):
    _root, payload, side, dest = staged
    root, served = relaying_share(tmp_path, payload, side)
    writer = threading.Thread(target=write_slowly, args=(root, payload, side), kwargs={"give_up_after": 100_000})
    try:
        writer.start()
        with pytest.raises(peer_fetch.PeerError, match=r"stopped sending images/app\.tar after 97\.7 KiB of 293\.0 KiB"):
            fetch(served, dest, payload, side)
        writer.join()
    finally:
        peer_share.stop(str(root))
    assert os.listdir(dest.parent) == []


def test_a_relaying_share_does_not_wait_for_what_it_was_given_no_size(staged, tmp_path):
    _root, payload, side, dest = staged
    root = tmp_path / "plain"
    (root / "images").mkdir(parents=True)
    served = peer_share.start(str(root), [ARCHIVE], "127.0.0.1", 0, TOKEN, 60)
    try:
        started = time.monotonic()
        with pytest.raises(peer_fetch.PeerError, match="answered 404"):
            fetch(served, dest, payload, side)
        assert time.monotonic() - started < 1
    finally:
        peer_share.stop(str(root))


def test_sizes_must_be_whole_numbers_of_bytes(staged):
    with pytest.raises(InvalidInput, match=r"The size of images/app\.tar must be a whole number of bytes, not 'x'"):
        peer_share.start(str(staged[0]), [ARCHIVE], "127.0.0.1", 0, TOKEN, 60, sizes={ARCHIVE: "x"})
    assert peer_share.running(str(staged[0])) is None


def test_a_relayed_archive_that_never_comes_is_answered_404_after_the_wait(staged, tmp_path):
    _root, payload, side, dest = staged
    root = tmp_path / "late"
    (root / "images").mkdir(parents=True)
    served = peer_share.start(str(root), [ARCHIVE], "127.0.0.1", 0, TOKEN, 60, sizes={ARCHIVE: len(payload)}, arrival=1)
    try:
        started = time.monotonic()
        with pytest.raises(peer_fetch.PeerError, match="answered 404"):
            fetch(served, dest, payload, side, timeout=1)
        assert 1 <= time.monotonic() - started < 3
    finally:
        peer_share.stop(str(root))
    assert os.listdir(dest.parent) == []


def test_a_fifo_planted_under_a_listed_name_or_a_partial_name_is_not_served_and_holds_nothing(staged, tmp_path):
    _root, payload, side, dest = staged
    root = tmp_path / "planted"
    (root / "images").mkdir(parents=True)
    os.mkfifo(root / SIDECAR)
    os.mkfifo(root / "images" / ".app.tar.abc123.partial")
    served = peer_share.start(str(root), [ARCHIVE], "127.0.0.1", 0, TOKEN, 60, sizes={ARCHIVE: len(payload)}, arrival=1)
    try:
        started = time.monotonic()
        with pytest.raises(peer_fetch.PeerError, match="answered 404"):
            fetch(served, dest, payload, side, timeout=1)
        assert time.monotonic() - started < 3  # the waits end; no open() blocked on a FIFO
        os.mkfifo(root / ARCHIVE)
        plain = peer_share.start(str(root), [ARCHIVE], "127.0.0.1", 0, TOKEN, 60)
        with pytest.raises(peer_fetch.PeerError, match="answered 404"):
            fetch(plain, dest, payload, side, timeout=1)
    finally:
        peer_share.stop(str(root))
    assert os.listdir(dest.parent) == []
