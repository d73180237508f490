"""Issue 11, classes 4, 5 and 6 on both engines: what reaches the engine comes from the archive's own
verified content, a damaged archive is refused with or without a sidecar, and the engine never
receives a complete tar before the whole file is verified."""

from __future__ import annotations

import json
import os
import shutil
import tarfile

import pytest
from ansible_calls import changed, sha256_of

MODULE = "airgap.docker.image_archive"


def task(engine, path, check=False, **extra):
    args = {"path": str(path), "docker_host": engine.host}
    args.update(extra)
    return {MODULE: args, "check_mode": check, "diff": True}


def save(ansible, engine, path, images):
    result = ansible.run(task(engine, path, images=images))[0]
    assert result["changed"] and not result.get("failed"), result
    return result


def assert_not_in_engine(engine, saved):
    """None of the saved images' IDs is in the engine (compared by ID: other tests may come and go meanwhile)."""
    held = set(engine.image_ids())
    for image in saved["images"]:
        assert not held & {image["config_digest"], image.get("manifest_digest")}, image


def carried(path, workdir, name):
    """The archive (and its sidecar) as it arrives on another medium: a new file this host never verified."""
    copy = workdir / name
    shutil.copyfile(str(path), str(copy))
    sidecar = str(path) + ".airgap.json"
    if os.path.exists(sidecar):
        shutil.copyfile(sidecar, str(copy) + ".airgap.json")
    return copy


def edit_sidecar(path, change):
    sidecar = str(path) + ".airgap.json"
    with open(sidecar) as handle:
        document = json.load(handle)
    change(document)
    with open(sidecar, "w") as handle:
        json.dump(document, handle)


# Class 4: the sidecar cannot change what reaches the engine --------------------------------


@pytest.mark.per_store
def test_a_sidecar_cannot_move_an_unrelated_tag(ansible, engine, unique, workdir):
    image_id = engine.build(unique + ":app")
    victim_id = engine.build(unique + ":victim", marker="victim")
    path = workdir / "app.tar.zst"
    save(ansible, engine, path, [unique + ":app"])
    medium = carried(path, workdir, "medium.tar.zst")
    checksum = sha256_of(medium)
    edit_sidecar(medium, lambda doc: doc["images"][0]["tags"].append(unique + ":victim"))
    results = ansible.run(*[task(engine, medium, check=c, state="loaded", checksum=checksum) for c in (True, False)])
    for result in results:
        assert not result.get("failed") and not result["changed"], json.dumps(result, indent=1)
        assert [i["tags"] for i in result["images"]] == [[unique + ":app"]]
    assert results[0]["stats"]["archive_bytes_read"] > 0, "the sidecar was believed without reading the archive"
    assert results[1]["stats"]["archive_bytes_read"] == 0, "what was verified is remembered"
    assert engine.inspect(unique + ":victim")["Id"] == victim_id
    assert engine.inspect(unique + ":app")["Id"] == image_id


@pytest.mark.per_store
def test_a_sidecar_cannot_make_a_load_skip(ansible, engine, unique, workdir):
    """The sidecar claims the archive holds an image the engine already has; the archive holds a new one."""
    engine.build(unique + ":old", marker="old")
    engine.build(unique + ":new", marker="new")
    old_archive, new_archive = workdir / "old.tar", workdir / "new.tar"
    save(ansible, engine, old_archive, [unique + ":old"])
    save(ansible, engine, new_archive, [unique + ":new"])
    medium = carried(new_archive, workdir, "medium.tar")
    shutil.copyfile(str(old_archive) + ".airgap.json", str(medium) + ".airgap.json")
    edit_sidecar(medium, lambda doc: doc["archive"].update(size=os.path.getsize(medium), sha256=sha256_of(medium)))
    engine.remove(unique + ":new")
    results = ansible.run(*[task(engine, medium, check=c, state="loaded", checksum=sha256_of(medium))
                            for c in (True, False, True, False)])
    assert changed(results) == [True, True, False, False], results
    assert engine.inspect(unique + ":new") is not None
    assert results[0]["images"][0]["tags"] == [unique + ":new"]


@pytest.mark.per_store
def test_a_sidecar_that_understates_the_archive_is_refused_by_the_load(ansible, engine, unique, workdir):
    """Claims that plan a load are checked against the archive before the engine gets its end."""
    engine.build(unique + ":a", marker="a")
    engine.build(unique + ":b", marker="b")
    path = workdir / "ab.tar"
    save(ansible, engine, path, [unique + ":a", unique + ":b"])
    medium = carried(path, workdir, "medium.tar")
    edit_sidecar(medium, lambda doc: doc.update(images=[i for i in doc["images"] if i["tags"] == [unique + ":a"]]))
    saved = save(ansible, engine, workdir / "again.tar", [unique + ":a", unique + ":b"])
    engine.remove(unique + ":a", unique + ":b")
    assert_not_in_engine(engine, saved)
    result = ansible.run(task(engine, medium, state="loaded"))[0]
    assert result.get("failed") and "does not describe the archive" in result["msg"], result
    assert unique + ":b" in result["msg"]
    assert_not_in_engine(engine, saved)
    assert engine.inspect(unique + ":a") is None and engine.inspect(unique + ":b") is None
    os.unlink(str(medium) + ".airgap.json")  # without the lying sidecar the archive loads
    assert ansible.run(task(engine, medium, state="loaded"))[0]["changed"]


# Class 5: a corrupt archive is refused with or without a sidecar ---------------------------


def _base_layer_member(path):
    """The member holding the image's bottom layer, in either layout."""
    with tarfile.open(str(path)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        name = manifest[0]["Layers"][0]
        member = tar.getmember(name)
        while member.issym() or member.islnk():
            name = os.path.normpath(os.path.join(os.path.dirname(name), member.linkname)) if member.issym() else member.linkname
            member = tar.getmember(name)
        return member


@pytest.mark.parametrize("with_sidecar", [False, True])
def test_a_damaged_layer_the_engine_already_holds_is_refused(ansible, engine, unique, workdir, with_sidecar):
    engine.build(unique + ":base", marker="base", random_bytes=200_000)
    engine.build_on(unique + ":base", unique + ":app", ["RUN echo top > /top.txt"])
    path = workdir / "app.tar"
    saved = save(ansible, engine, path, [unique + ":app"])
    member = _base_layer_member(path)
    with open(str(path), "r+b") as handle:
        handle.seek(member.offset_data + member.size // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    if with_sidecar:
        # Damaged before its sidecar was written: the sidecar's checksum is the damaged file's.
        edit_sidecar(path, lambda doc: doc["archive"].update(sha256=sha256_of(path)))
    else:
        os.unlink(str(path) + ".airgap.json")
    engine.remove(unique + ":app")  # the engine keeps the base layer through :base
    assert_not_in_engine(engine, saved)
    for check in (True, False):
        result = ansible.run(task(engine, path, check=check, state="loaded"))[0]
        assert result.get("failed"), result
        assert "does not match" in result["msg"] and member.name in result["msg"], result["msg"]
    assert_not_in_engine(engine, saved)
    assert engine.inspect(unique + ":app") is None


@pytest.mark.per_store
def test_a_good_load_says_how_much_it_verified(ansible, engine, unique, workdir):
    engine.build(unique + ":1", random_bytes=100_000)
    path = workdir / "ok.tar.zst"
    save(ansible, engine, path, [unique + ":1"])
    medium = carried(path, workdir, "medium.tar.zst")
    engine.remove(unique + ":1")
    results = ansible.run(*[task(engine, medium, check=c, state="loaded") for c in (False, False)])
    assert changed(results) == [True, False]
    assert results[0]["stats"]["bytes_verified"] >= 100_000
    assert results[1]["stats"]["archive_bytes_read"] == 0, "a verified archive is remembered for O(1) re-runs"


# Class 6: the engine never receives a complete tar before the whole file is verified ------


@pytest.mark.parametrize("trailing", [3 << 20, 100])
def test_data_after_the_end_of_the_tar_does_not_let_a_mismatch_through(ansible, engine, unique, workdir, trailing):
    engine.build(unique + ":1")
    path = workdir / "img.tar"
    saved = save(ansible, engine, path, [unique + ":1"])
    checksum = sha256_of(path)
    with open(str(path), "ab") as handle:
        handle.write(os.urandom(trailing))
    # A sidecar that agrees with the expected checksum, so the load streams and meets the mismatch at the end.
    edit_sidecar(path, lambda doc: doc["archive"].update(size=os.path.getsize(path)))
    engine.remove(unique + ":1")
    assert_not_in_engine(engine, saved)
    result = ansible.run(task(engine, path, state="loaded", checksum=checksum))[0]
    assert result.get("failed") and "checksum" in result["msg"], result
    assert "does not match its recorded checksum" in result["msg"], "the load must have streamed to meet the mismatch at the end"
    assert_not_in_engine(engine, saved)
    assert engine.inspect(unique + ":1") is None
