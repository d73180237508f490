"""`platform` and multi-platform images, on a two-platform image built here (multiplatform.py).

Only Docker 28 (API 1.48+, the containerd2 engine) saves or loads one platform; classic (20.10)
and modern (26.1) refuse the option. Classic cannot even hold a two-platform image: it loads
only the amd64 image that the archive's manifest.json names.
"""

from __future__ import annotations

import json
import tarfile

import multiplatform as mp
import pytest
from ansible_calls import assert_clean_failure, changed

MODULE = "airgap.docker.image_archive"


def task(engine, path, check=False, **args):
    return {MODULE: dict(path=str(path), docker_host=engine.host, **args), "check_mode": check}


def state_of(engine):
    return engine.image_ids(), engine.tags()


def loaded_two_platform_image(engine, workdir, reference):
    archive = workdir / "two-platforms.tar"
    mp.write_two_platform_archive(archive, reference)
    mp.load(engine.client, archive)
    return archive


def saved_platforms(engine, reference, workdir):
    """The platforms a plain `docker save` of reference holds: what the engine has of the image."""
    path = workdir / "plain-save.tar"
    with open(path, "wb") as handle:
        for block in engine.client.get_image(reference):
            handle.write(block)
    return mp.archive_platforms(path)


# What each engine does with the two-platform archive ---------------------------------------


@pytest.mark.parametrize("engine_name, held", [
    ("classic", {"linux/amd64"}),  # manifest.json only: one tag, one config
    ("modern", {"linux/amd64", "linux/arm64"}),
    ("containerd2", {"linux/amd64", "linux/arm64"}),
])
def test_engine_keeps_what_it_can_of_two_platforms(factories, unique, workdir, engine_name, held):
    engine = factories[engine_name]
    loaded_two_platform_image(engine, workdir, unique + ":1")
    assert engine.inspect(unique + ":1")["Architecture"] == "amd64"
    assert saved_platforms(engine, unique + ":1", workdir) == held


def test_classic_cannot_load_an_archive_without_manifest_json(factories, unique, workdir):
    classic = factories["classic"]
    archive = workdir / "oci-only.tar"
    mp.write_two_platform_archive(archive, unique + ":1", manifest_json=False)
    assert any("error" in m for m in mp.load(classic.client, archive))
    assert classic.inspect(unique + ":1") is None


# platform on Docker 28 ---------------------------------------------------------------------


@pytest.mark.parametrize("engine_name", ["containerd2"])
@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64"])
def test_save_writes_only_the_platform(ansible, factories, unique, workdir, engine_name, platform):
    engine = factories[engine_name]
    loaded_two_platform_image(engine, workdir, unique + ":1")
    path = workdir / "one-platform.tar"
    results = ansible.run(*[task(engine, path, check, images=[unique + ":1"], platform=platform) for check in (True, False, True, False)])
    assert not any(r.get("failed") for r in results), results
    assert changed(results) == [True, True, False, False]
    assert mp.archive_platforms(path) == {platform}


@pytest.mark.parametrize("engine_name", ["containerd2"])
@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64"])
def test_load_brings_only_the_platform(ansible, factories, unique, workdir, engine_name, platform):
    engine = factories[engine_name]
    path = workdir / "two-platforms.tar"
    mp.write_two_platform_archive(path, unique + ":1")
    results = ansible.run(*[task(engine, path, check, state="loaded", platform=platform) for check in (True, False, True, False)])
    failures = [(i, r.get("msg")) for i, r in enumerate(results) if r.get("failed")]
    lost = [msg for _i, msg in failures if "content digest" in msg and "not found" in msg]
    if lost:
        # Both platform cases load the same layers under other names, and the case before removed
        # its image: the containerd store's garbage collector can drop a blob the load is using
        # (the engine race test_image_archive_load names too; seen here under load, on Docker 28).
        pytest.xfail("the containerd store lost a shared layer blob during the load: %s" % lost[0])
    # The failing run's own message, whole: the result list is cut short when printed.
    assert not failures, failures
    assert changed(results) == [True, True, False, False]
    assert mp.engine_platforms(engine.client, unique + ":1") == {p: p == platform for p in mp.PLATFORMS}


@pytest.mark.parametrize("engine_name", ["containerd2"])
def test_saving_a_platform_the_image_lacks_fails_and_writes_nothing(ansible, factories, unique, workdir, engine_name):
    engine = factories[engine_name]
    loaded_two_platform_image(engine, workdir, unique + ":1")
    path = workdir / "s390x.tar"
    (result,) = ansible.run(task(engine, path, images=[unique + ":1"], platform="linux/s390x"))
    assert_clean_failure(result, "linux/s390x")
    assert list(workdir.glob("s390x*")) == []


@pytest.mark.parametrize("engine_name", ["containerd2"])
def test_loading_a_platform_the_archive_lacks_fails_and_loads_nothing(ansible, factories, unique, workdir, engine_name):
    # Docker 28 itself tags the image and then refuses the load; the module stops before that.
    engine = factories[engine_name]
    path = workdir / "two-platforms.tar"
    mp.write_two_platform_archive(path, unique + ":1")
    before = state_of(engine)
    (result,) = ansible.run(task(engine, path, state="loaded", platform="linux/s390x"))
    assert_clean_failure(result, "holds no linux/s390x image of " + unique + ":1", "nothing was loaded")
    assert state_of(engine) == before


@pytest.mark.parametrize("engine_name", ["classic", "modern"])
def test_platform_is_refused_below_api_1_48(ansible, factories, unique, workdir, engine_name):
    engine = factories[engine_name]
    archive = loaded_two_platform_image(engine, workdir, unique + ":1")
    engine.remove(unique + ":1")
    before = state_of(engine)
    saved = workdir / "saved.tar"
    results = ansible.run(task(engine, saved, images=[unique + ":1"], platform="linux/amd64"),
                          task(engine, archive, state="loaded", platform="linux/amd64"))
    for result in results:
        assert_clean_failure(result, "platform needs Docker API 1.48", engine.host)
    assert not saved.exists()
    assert state_of(engine) == before


# Damaged and thin archives: Docker 28 answers such a load with success --------------------
#
# Its containerd store tags the image, logs "Error unpacking image" as a progress line and
# answers 200. The module must fail with one sentence and leave the engine as it was.


def without_top_layer(engine, reference, workdir):
    """A `docker save` archive of reference whose top layer blob is removed."""
    full = workdir / "full.tar"
    with open(full, "wb") as handle:
        for block in engine.client.get_image(reference):
            handle.write(block)
    damaged = workdir / "damaged.tar"
    with tarfile.open(full) as source, tarfile.open(damaged, "w") as target:
        top = json.load(source.extractfile("manifest.json"))[0]["Layers"][-1]
        for member in source.getmembers():
            if member.name != top:
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
    return damaged


def damaged_save(engine, unique, workdir):
    engine.build(unique + ":1")
    damaged = without_top_layer(engine, unique + ":1", workdir)
    engine.remove(unique + ":1")
    return damaged, "lacks layer"


def thin_without_base(engine, unique, workdir):
    path = workdir / "thin.tar"
    mp.write_two_platform_archive(path, unique + ":1", drop=[("linux/amd64", 0)])
    return path, "lacks layer 1"


def thin_on_broken_image(engine, unique, workdir):
    """The engine holds an image whose amd64 layers never unpacked (the silent failure, left by
    a plain docker load); a thin archive leaving those layers out must not be loaded on top."""
    broken = workdir / "broken.tar"
    mp.write_two_platform_archive(broken, unique + ":broken", manifest_json=False, drop=[("linux/amd64", 1)])
    assert any("Error unpacking image" in m.get("stream", "") for m in mp.load(engine.client, broken))
    path = workdir / "thin.tar"
    mp.write_two_platform_archive(path, unique + ":1", marker=unique + ":broken", label="thin",
                                  drop=[("linux/amd64", 0), ("linux/amd64", 1)])
    return path, "lacks layer 1"


@pytest.mark.parametrize("engine_name", ["containerd2"])
@pytest.mark.parametrize("make", [damaged_save, thin_without_base, thin_on_broken_image])
def test_a_load_docker_would_half_do_fails_and_changes_nothing(ansible, factories, unique, workdir, engine_name, make):
    engine = factories[engine_name]
    path, reason = make(engine, unique, workdir)
    before = state_of(engine)
    results = ansible.run(task(engine, path, True, state="loaded"), task(engine, path, state="loaded"))
    for result in results:  # check mode too: it must not promise a load that cannot happen
        assert_clean_failure(result, reason)
    assert state_of(engine) == before
    assert engine.inspect(unique + ":1") is None


@pytest.mark.parametrize("engine_name", ["containerd2"])
def test_the_engine_client_reports_a_failed_unpack(factories, unique, workdir, engine_name):
    # The engine's own answer, sent without the module's checks: an error although the status is 200.
    # The engine has tagged the image by then, which is why the module checks before sending.
    from ansible_collections.airgap.docker.plugins.module_utils.engine import EngineClient
    from ansible_collections.airgap.docker.plugins.module_utils.errors import EngineError

    broken = workdir / "broken.tar"
    mp.write_two_platform_archive(broken, unique + ":1", manifest_json=False, drop=[("linux/amd64", 1)])
    client = EngineClient(factories[engine_name].host)
    with open(broken, "rb") as body, pytest.raises(EngineError) as caught:
        client.load(iter(lambda: body.read(65536), b""))
    assert "failed to load the archive: Error unpacking image " + unique + ":1" in caught.value.msg
    assert "\n" not in caught.value.msg
