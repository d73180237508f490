"""Split archives (split_size): saved and exported as numbered parts, laid out again, loaded and
imported from the parts (or from part001), a missing or damaged part named before anything is
loaded, and state=inspected, which reads an archive, whole or split, without any engine.

Only the loads run on every engine; the rest reads and writes files the same way on any engine."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import uuid

import pytest
from ansible_calls import assert_clean_failure, changed

IMAGES = "airgap.docker.image_archive"
CONTAINERS = "airgap.docker.container_archive"
MIB = 1 << 20
RANDOM = 3 * MIB + 4321  # incompressible content: an archive of 4 to 5 MiB, parts of 1 MiB


def task(module, path, check=False, **args):
    return {module: dict(args, path=str(path)), "check_mode": check, "diff": True}


def four(make):
    return [make(check) for check in (True, False, True, False)]


def parts_of(path):
    return sorted(path.parent.glob(path.name + ".part*"))


def sidecar_of(path):
    return json.loads((path.parent / (path.name + ".airgap.json")).read_text())


def joined_sha256(path):
    digest = hashlib.sha256()
    for part in parts_of(path):
        digest.update(part.read_bytes())
    return digest.hexdigest()


def fresh_memo(tmp_path):
    """Settings for a run on which this host knows nothing of the archive (another host)."""
    directory = tmp_path / ("cache-" + uuid.uuid4().hex[:8])
    directory.mkdir(mode=0o700)
    return {"AIRGAP_DOCKER_CACHE": str(directory)}


def test_save_as_parts_check_run_check_run(ansible, one_engine, unique, workdir):
    one_engine.build(unique + ":1", random_bytes=RANDOM)
    path = workdir / "app.tar.zst"
    results = ansible.run(*four(lambda c: task(IMAGES, path, c, images=[unique + ":1"], split_size="1M",
                                               docker_host=one_engine.host)))
    assert changed(results) == [True, True, False, False]
    assert results[3]["stats"]["archive_bytes_read"] == 0 and results[3]["stats"]["bytes_from_engine"] == 0
    assert not path.exists() and not list(workdir.glob(".*partial")), "no whole file, no temporary file"
    meta = sidecar_of(path)
    parts = parts_of(path)
    assert [p.name for p in parts] == ["app.tar.zst.part%03d" % n for n in range(1, len(parts) + 1)] and len(parts) >= 4
    assert [p.stat().st_size for p in parts[:-1]] == [MIB] * (len(parts) - 1)
    assert meta["archive"]["size"] == sum(p.stat().st_size for p in parts)
    assert joined_sha256(path) == meta["archive"]["sha256"] == results[1]["archive"]["sha256"]
    assert meta["archive"]["parts"] == results[3]["archive"]["parts"]
    assert [(e["name"], e["size"], e["sha256"]) for e in meta["archive"]["parts"]] == [
        (p.name, p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()) for p in parts]


def test_other_split_sizes_lay_the_files_out_again_as_coreutils_split_does(ansible, one_engine, unique, workdir, tmp_path):
    one_engine.build(unique + ":1", random_bytes=RANDOM)
    path = workdir / "app.tar"
    save = {"images": [unique + ":1"], "docker_host": one_engine.host}
    assert changed(ansible.run(task(IMAGES, path, **save))) == [True]
    # What coreutils makes of the whole archive: the parts must be these, byte for byte.
    reference = tmp_path / "coreutils"
    reference.mkdir()
    subprocess.run(["split", "-b", str(MIB), "-d", "-a", "3", "--numeric-suffixes=1", str(path), str(reference / "app.tar.part")],
                   check=True)
    expected = {p.name: p.read_bytes() for p in sorted(reference.iterdir())}
    results = ansible.run(*four(lambda c: task(IMAGES, path, c, split_size="1M", **save)))
    assert changed(results) == [True, True, False, False]
    assert results[1]["actions"] == ["relaid"] and results[1]["stats"]["bytes_from_engine"] == 0
    assert {p.name: p.read_bytes() for p in parts_of(path)} == expected and not path.exists()
    # Another split size, then none: the files follow; parts the new layout does not use go.
    results = ansible.run(task(IMAGES, path, split_size="2M", **save), task(IMAGES, path, split_size="2M", **save),
                          task(IMAGES, path, **save), task(IMAGES, path, **save))
    assert changed(results) == [True, False, True, False]
    assert parts_of(path) == [] and path.exists() and "parts" not in sidecar_of(path)["archive"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sidecar_of(path)["archive"]["sha256"]


def test_absent_removes_the_parts(ansible, one_engine, unique, workdir):
    one_engine.build(unique + ":1", random_bytes=RANDOM)
    path = workdir / "gone.tar"
    ansible.run(task(IMAGES, path, images=[unique + ":1"], split_size="1M", docker_host=one_engine.host))
    assert parts_of(path)
    results = ansible.run(*four(lambda c: task(IMAGES, path, c, state="absent")))
    assert changed(results) == [True, True, False, False]
    assert list(workdir.iterdir()) == []


# Each engine loads from parts saved by another (the first the next in the matrix), by the
# archive's name or by its first part; the engine sees one plain tar either way.
LOAD_CASES = [("classic", "part001"), ("modern", "archive"), ("containerd2", "archive")]


@pytest.mark.per_store
@pytest.mark.parametrize("engine_name, named", LOAD_CASES)
def test_load_from_parts_check_run_check_run(ansible, factories, unique, workdir, tmp_path, engine_name, named):
    if engine_name not in factories:
        pytest.skip("the %s engine is not tested in this run (AIRGAP_TEST_ENGINES)" % engine_name)
    if len(factories) < 2:
        pytest.skip("a load from another engine needs two engines")
    target = factories[engine_name]
    names = sorted(factories)
    source = factories[names[(names.index(engine_name) + 1) % len(names)]]
    source.build(unique + ":1", random_bytes=RANDOM)
    path = workdir / "app.tar.zst"
    ansible.run(task(IMAGES, path, images=[unique + ":1"], split_size="1M", docker_host=source.host))
    name = path if named == "archive" else workdir / (path.name + ".part001")
    assert target.inspect(unique + ":1") is None
    results = ansible.run(*four(lambda c: task(IMAGES, name, c, state="loaded", docker_host=target.host)),
                          extra_env=fresh_memo(tmp_path))
    assert changed(results) == [True, True, False, False]
    assert results[1]["stats"]["archive_bytes_read"] == sidecar_of(path)["archive"]["size"]
    assert results[3]["stats"]["archive_bytes_read"] == 0, "what was verified of the parts is remembered"
    assert results[1]["archive"]["path"] == str(path) and len(results[1]["archive"]["parts"]) == len(parts_of(path))
    assert target.inspect(unique + ":1")["RootFS"]["Layers"] == source.inspect(unique + ":1")["RootFS"]["Layers"]


@pytest.fixture
def split_saved(ansible, one_engine, unique, workdir):
    """An archive saved as parts of 1 MiB from one engine, whose image is then removed from it."""
    one_engine.build(unique + ":1", random_bytes=RANDOM)
    path = workdir / "app.tar"
    ansible.run(task(IMAGES, path, images=[unique + ":1"], split_size="1M", docker_host=one_engine.host))
    one_engine.remove(unique + ":1")
    return path


def test_a_missing_part_is_named_and_nothing_is_loaded(ansible, one_engine, unique, split_saved):
    last = parts_of(split_saved)[-1]
    last.unlink()
    results = ansible.run(*[task(IMAGES, split_saved, c, state="loaded", docker_host=one_engine.host) for c in (True, False)])
    for result in results:
        assert_clean_failure(result, "%s is missing" % last, "nothing was loaded")
    assert one_engine.inspect(unique + ":1") is None


def test_a_damaged_part_is_named_and_nothing_is_loaded(ansible, one_engine, unique, split_saved, tmp_path):
    second = parts_of(split_saved)[1]
    data = bytearray(second.read_bytes())
    data[len(data) // 2] ^= 0x5A
    second.write_bytes(bytes(data))
    for check in (True, False):
        result = ansible.run(task(IMAGES, split_saved, check, state="loaded", docker_host=one_engine.host),
                             extra_env=fresh_memo(tmp_path))[0]
        assert_clean_failure(result, "%s does not match the sidecar" % second, "damaged")
    assert one_engine.inspect(unique + ":1") is None


def test_container_export_and_import_as_parts(ansible, one_engine, unique, workdir, tmp_path):
    one_engine.build(unique + ":src", random_bytes=RANDOM)
    name = "s" + uuid.uuid4().hex[:10]
    container_id = one_engine.create_container(unique + ":src", name)
    try:
        path = workdir / "fs.tar.gz"
        exports = ansible.run(*four(lambda c: task(CONTAINERS, path, c, container=name, split_size="1M",
                                                   docker_host=one_engine.host)))
        assert changed(exports) == [True, True, False, False]
        assert not path.exists() and len(parts_of(path)) >= 4
        assert joined_sha256(path) == sidecar_of(path)["archive"]["sha256"] == exports[3]["archive"]["sha256"]
        assert exports[3]["archive"]["parts"] == sidecar_of(path)["archive"]["parts"]
        image = unique + ":snap"
        imports = ansible.run(*four(lambda c: task(CONTAINERS, workdir / "fs.tar.gz.part001", c, state="imported",
                                                   image=image, docker_host=one_engine.host)),
                              extra_env=fresh_memo(tmp_path))
        assert changed(imports) == [True, True, False, False]
        assert one_engine.inspect(image)["RootFS"]["Layers"] == [exports[1]["archive"]["layer_sha256"]]
        assert one_engine.run_image(image, "r" + uuid.uuid4().hex[:10], ["/bin/sh", "-c", "wc -c < /random.bin"]).strip() == str(RANDOM)
    finally:
        one_engine.remove_container(container_id)


@pytest.fixture
def closed_socket(tmp_path):
    """A docker_host where nothing listens: any attempt to reach an engine fails at once."""
    path = tmp_path / "closed.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.close()
    return "unix://%s" % path


def test_info_needs_no_engine(ansible, one_engine, unique, workdir, tmp_path, closed_socket):
    one_engine.build(unique + ":1", random_bytes=RANDOM, extra_lines=["LABEL purpose=info"])
    whole, split = workdir / "whole.tar.zst", workdir / "split.tar.zst"
    for path, extra in ((whole, {}), (split, {"split_size": "1M"})):
        ansible.run(task(IMAGES, path, images=[unique + ":1"], docker_host=one_engine.host, **extra))
    layers = one_engine.inspect(unique + ":1")["RootFS"]["Layers"]
    for path in (whole, split):
        sha256 = sidecar_of(path)["archive"]["sha256"]
        info = {"state": "inspected", "docker_host": closed_socket}
        memo = fresh_memo(tmp_path)
        plain, checked, wrong = (ansible.run(task(IMAGES, path, check=c, **dict(info, **extra)), extra_env=memo)[0]
                                 for c, extra in ((False, {}), (True, {"checksum": sha256}), (False, {"checksum": "0" * 64})))
        assert changed([plain, checked, wrong]) == [False, False, False]
        assert (plain["source"], plain["verified"], checked["verified"], wrong["verified"]) == ("sidecar", None, True, False)
        image = plain["images"][0]
        assert image["tags"] == [unique + ":1"] and image["layers"] == len(layers) and image["diff_ids"] == layers
        assert image["platform"] == "linux/amd64" and image["size"] > RANDOM
        assert plain["archive"]["size"] == sidecar_of(path)["archive"]["size"]
        assert plain["archive"]["compression"] == "zstd" and plain["archive"]["layout"] in ("legacy", "oci")
        assert len(plain["archive"]["parts"]) == (len(parts_of(path)) if path == split else 0)
        # Without its sidecar (a medium that lost it), the archive itself is read, streamed.
        shutil.move(str(path) + ".airgap.json", str(tmp_path / "sidecar.json"))
        try:
            read = ansible.run(task(IMAGES, path, checksum=sha256, **info), extra_env=fresh_memo(tmp_path))[0]
        finally:
            shutil.move(str(tmp_path / "sidecar.json"), str(path) + ".airgap.json")
        assert (read["changed"], read["source"], read["verified"]) == (False, "archive", True)
        assert read["images"][0]["diff_ids"] == layers and read["archive"]["sha256"] == sha256


def test_info_of_a_file_that_is_no_archive_fails_in_one_sentence(ansible, workdir, closed_socket):
    path = workdir / "notes.tar"
    path.write_text("these are notes, not an archive\n")
    result = ansible.run(task(IMAGES, path, state="inspected", docker_host=closed_socket))[0]
    assert_clean_failure(result, str(path), "is not a tar archive")


def test_progress_file_follows_a_save_and_a_load(ansible, one_engine, unique, workdir, tmp_path):
    """progress_file gets a first and a last line for a save and for a load from parts; a symbolic link
    in its place is not followed, and the task still succeeds, with a warning."""
    one_engine.build(unique + ":1", random_bytes=RANDOM)
    path, progress = workdir / "app.tar.zst", workdir / "app.progress"
    save = task(IMAGES, path, images=[unique + ":1"], split_size="1M", docker_host=one_engine.host, progress_file=str(progress))
    assert changed(ansible.run(save)) == [True]
    lines = progress.read_text().splitlines()
    assert "saving %s:1 to %s" % (unique, path) in lines[0] and "started" in lines[0], lines
    assert lines[-1].split(": ", 1)[1].startswith("done"), lines
    assert oct(progress.stat().st_mode & 0o777) == "0o600"
    one_engine.remove(unique + ":1")
    load = task(IMAGES, path, state="loaded", docker_host=one_engine.host, progress_file=str(progress))
    assert changed(ansible.run(load, extra_env=fresh_memo(tmp_path))) == [True]
    lines = progress.read_text().splitlines()[len(lines):]
    assert "loading %s" % path in lines[0] and lines[-1].split(": ", 1)[1].startswith("done"), lines
    assert "of 4" in lines[-1] or "MiB" in lines[-1], lines  # the total of the parts is known
    target = tmp_path / "elsewhere"
    target.write_text("")
    link = workdir / "link.progress"
    link.symlink_to(target)
    result = ansible.run(dict(load, **{IMAGES: dict(load[IMAGES], progress_file=str(link), force=True)}))[0]
    assert not result.get("failed") and target.read_text() == "", result
    assert any("progress" in w for w in result.get("warnings") or []), result
