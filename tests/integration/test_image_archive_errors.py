"""Every bad input named in the module's contract: a clean one-sentence failure, and nothing lost."""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest
from ansible_calls import assert_clean_failure
from image_factory import test_repository as repository_name

MODULE = "airgap.docker.image_archive"


def task(engine, path, state="saved", **extra):
    args = {"path": str(path), "state": state, "docker_host": engine.host}
    args.update(extra)
    return {MODULE: args}


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def saved_once(factories, tmp_path_factory):
    """The archives that saved_archive copies: one small image per engine, saved through the module
    once per compression. Each engine's image has a repository of its own, which no other engine
    ever holds."""
    store = {"dir": tmp_path_factory.mktemp("saved-once"), "repos": {}, "paths": {}}
    yield store
    for name, repo in store["repos"].items():
        factories[name].remove(*factories[name].tags_of(repo))


def saved_archive(ansible, engine, saved_once, workdir, name="good.tar"):
    """(path, image): a copy at workdir/name, with its sidecar, of an archive of image saved from engine
    by the module, compressed as name's suffix says. A test damages its own copy."""
    image = saved_once["repos"].setdefault(engine.name, repository_name("e")) + ":1"
    suffix = "".join(pathlib.Path(name).suffixes)
    key = (engine.name, suffix)
    if key not in saved_once["paths"]:
        if engine.inspect(image) is None:
            engine.build(image)
        source = saved_once["dir"] / (engine.name + suffix)
        result = ansible.run(task(engine, source, images=[image]))[0]
        assert result["changed"], result
        saved_once["paths"][key] = source
    source, path = saved_once["paths"][key], workdir / name
    shutil.copyfile(source, path)
    shutil.copyfile(str(source) + ".airgap.json", str(path) + ".airgap.json")
    return path, image


def another_engine(factories, engine):
    return next(f for f in factories.values() if f is not engine)


def test_engine_unreachable_names_the_address(ansible, workdir):
    result = ansible.run({MODULE: {"path": str(workdir / "x.tar"), "images": ["a:1"], "docker_host": "unix:///nonexistent/docker.sock"}})[0]
    assert_clean_failure(result, "unix:///nonexistent/docker.sock")
    assert not list(workdir.iterdir())


@pytest.mark.per_store
def test_image_not_found_leaves_the_archive(ansible, engine, unique, saved_once, workdir):
    path, image = saved_archive(ansible, engine, saved_once, workdir)
    before = digest(path)
    result = ansible.run(task(engine, path, images=[image, unique + ":missing", unique + ":gone"]))[0]
    assert_clean_failure(result, "not found", unique + ":missing", unique + ":gone")
    assert digest(path) == before


def test_archive_missing(ansible, one_engine, workdir):
    result = ansible.run(task(one_engine, workdir / "nope.tar", state="loaded"))[0]
    assert_clean_failure(result, "does not exist")


@pytest.mark.parametrize("content", [b"", b"this is not an archive" * 100, b"\xfd7zXZ\x00" + b"\x00" * 600])
def test_not_a_tar(ansible, one_engine, workdir, content):
    path = workdir / "junk.tar"
    path.write_bytes(content)
    before = one_engine.image_ids()
    result = ansible.run(task(one_engine, path, state="loaded"))[0]
    assert_clean_failure(result, str(path))
    assert "not a tar" in result["msg"] or "empty" in result["msg"]
    assert one_engine.image_ids() == before and path.read_bytes() == content


# Each engine's layout (legacy, OCI) and each compression: the archive is read whole to be refused.
@pytest.mark.per_store
@pytest.mark.parametrize("name", ["trunc.tar", "trunc.tar.zst", "trunc.tar.gz"])
def test_truncated_archive_without_sidecar(ansible, engine, other_engine, saved_once, workdir, name):
    path, _image = saved_archive(ansible, engine, saved_once, workdir, name)
    os.unlink(str(path) + ".airgap.json")
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size * 2 // 3)
    before = other_engine.image_ids()
    result = ansible.run(task(other_engine, path, state="loaded"))[0]
    assert_clean_failure(result, "truncated")
    assert other_engine.image_ids() == before


def test_truncated_archive_with_sidecar(ansible, one_engine, factories, saved_once, workdir):
    # Refused on the sidecar's size alone, before the archive is read or an engine contacted.
    path, _image = saved_archive(ansible, one_engine, saved_once, workdir, "cut.tar.zst")
    other_engine = another_engine(factories, one_engine)
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size - 100)
    before = other_engine.image_ids()
    result = ansible.run(task(other_engine, path, state="loaded"))[0]
    assert_clean_failure(result, "truncated or was replaced", "Nothing was loaded")
    assert other_engine.image_ids() == before


@pytest.mark.per_store
@pytest.mark.parametrize("name", ["flip.tar", "flip.tar.zst"])
def test_checksum_mismatch_loads_nothing(ansible, engine, other_engine, saved_once, workdir, name):
    # The sidecar plans a load: the mismatch is met while the archive streams to the engine.
    path, _image = saved_archive(ansible, engine, saved_once, workdir, name)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, in a layer, the tar stays well formed
    path.write_bytes(bytes(data))
    before_ids, before_tags = other_engine.image_ids(), other_engine.tags()
    result = ansible.run(task(other_engine, path, state="loaded"))[0]
    assert result.get("failed"), result
    assert "checksum" in result["msg"] or "corrupt" in result["msg"], result["msg"]
    assert other_engine.image_ids() == before_ids and other_engine.tags() == before_tags


def test_unsupported_compression(ansible, one_engine, unique, workdir):
    one_engine.build(unique + ":1")
    result = ansible.run(task(one_engine, workdir / "img.tar.xz", images=[unique + ":1"]))[0]
    assert_clean_failure(result, "Cannot choose a compression", ".tar.zst")
    result = ansible.run(task(one_engine, workdir / "img.tar", images=[unique + ":1"], compression="zstd", compression_level=99))[0]
    assert_clean_failure(result, "out of range")
    assert not list(workdir.iterdir())


def test_platform_needs_a_new_engine(ansible, engine, unique, workdir):
    if engine.api_version() >= (1, 48):
        pytest.skip("the %s engine speaks API 1.48 or newer: test_platform.py tests platform there" % engine.name)
    engine.build(unique + ":1")
    result = ansible.run(task(engine, workdir / "p.tar", images=[unique + ":1"], platform="linux/amd64"))[0]
    assert_clean_failure(result, "API 1.48")


@pytest.fixture
def small_mount(tmp_path, request):
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    size = getattr(request, "param", "3m")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", str(mount_point)], check=True)
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=False)


@pytest.mark.per_store
def test_no_space_fails_early_with_numbers_and_keeps_the_old_archive(ansible, engine, unique, small_mount):
    engine.build(unique + ":small")
    engine.build(unique + ":big", marker="big", random_bytes=8 << 20)
    path = small_mount / "img.tar"
    assert ansible.run(task(engine, path, images=[unique + ":small"]))[0]["changed"]
    before = digest(path)
    result = ansible.run(task(engine, path, images=[unique + ":big"]))[0]
    assert_clean_failure(result, "Not enough free space", "needed", "free")
    assert digest(path) == before
    assert sorted(p.name for p in small_mount.iterdir()) == ["img.tar", "img.tar.airgap.json"]


@pytest.mark.per_store
@pytest.mark.parametrize("small_mount", ["8m"], indirect=True)
def test_disk_full_mid_stream_keeps_the_old_archive(ansible, engine, unique, small_mount):
    # gzip is expected to halve the size, so the check up front passes (about 5.5 of 7 MiB free);
    # random data does not compress, so the disk fills during the stream.
    engine.build(unique + ":small")
    engine.build(unique + ":big", marker="big", random_bytes=9 << 20)
    path = small_mount / "img.tar.gz"
    assert ansible.run(task(engine, path, images=[unique + ":small"]))[0]["changed"]
    before = digest(path)
    result = ansible.run(task(engine, path, images=[unique + ":big"]))[0]
    assert_clean_failure(result, "No space left")
    assert digest(path) == before
    assert sorted(p.name for p in small_mount.iterdir()) == ["img.tar.gz", "img.tar.gz.airgap.json"]


MANAGED_VENV = pathlib.Path(os.environ.get("AIRGAP_ENGINES_ROOT", "/var/tmp/airgap-engines")) / "managed-venv"


def as_nobody(task_dict):
    """Run the task as the unprivileged user nobody (not in any docker group), as `become` does
    on a real host, with a Python the user can read; pipelined, so that nobody needs no copy of
    the module in root's temporary directory."""
    if not (MANAGED_VENV / "bin/python").exists():
        pytest.fail("%s is missing; run tests/harness/bootstrap.sh" % MANAGED_VENV)
    return dict(task_dict, become=True, become_user="nobody", become_method="su", become_flags="-s /bin/sh",
                vars={"ansible_python_interpreter": str(MANAGED_VENV / "bin/python"), "ansible_pipelining": True})


@pytest.fixture
def shared_dir():
    """A root-owned directory that nobody can enter but not write to."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="airgap-locked-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# Refused on the file (or the directory) or the socket's permissions, before any engine answers: one engine.


def test_permission_denied_reading_the_archive(ansible, one_engine, saved_once, shared_dir):
    archive, _image = saved_archive(ansible, one_engine, saved_once, shared_dir, "img.tar")
    os.chmod(archive, 0o600)
    result = ansible.run(as_nobody(task(one_engine, archive, state="loaded")))[0]
    assert_clean_failure(result, "ermission denied", str(archive))


def test_permission_denied_writing_the_archive(ansible, one_engine, unique, shared_dir):
    one_engine.build(unique + ":1")
    # nobody cannot reach the engine either; the archive directory is checked first.
    result = ansible.run(as_nobody(task(one_engine, shared_dir / "new.tar", images=[unique + ":1"])))[0]
    assert_clean_failure(result, "Permission denied", str(shared_dir))
    assert not list(shared_dir.iterdir())


def test_permission_denied_on_the_engine_socket(ansible, one_engine, unique, tmp_path):
    world = pathlib.Path(tempfile.mkdtemp(prefix="airgap-open-", dir="/tmp"))
    os.chmod(world, 0o777)
    try:
        result = ansible.run(as_nobody(task(one_engine, world / "img.tar", images=[unique + ":1"])))[0]
        assert_clean_failure(result, one_engine.host, "ermission denied")
        assert not list(world.iterdir())
    finally:
        shutil.rmtree(world, ignore_errors=True)
