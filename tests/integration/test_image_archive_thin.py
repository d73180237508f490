"""Thin archives (exclude_layers, from_archive) on both engines and across them.

The receiver holds a base image; the sender has an update of it with one small layer on top.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from ansible_calls import changed

MODULE = "airgap.docker.image_archive"
SMALL = 64 * 1024


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_ok(ansible, *tasks):
    results = ansible.run(*tasks)
    for result in results:
        assert not result.get("failed"), result
    return results


def make_update(source, unique, random_bytes=256 * 1024):
    """base:1 (busybox + some data) and app:2 = base:1 + one small layer, on the source engine."""
    source.build(unique + "-base:1", random_bytes=random_bytes)
    source.build_on(unique + "-base:1", unique + ":2", ["RUN echo update-2 > /update.txt", 'CMD ["cat", "/update.txt"]'])
    return unique + "-base:1", unique + ":2"


def give_base(source, target, base):
    """The receiver gets the base image by a full archive, as it would have from an earlier rollout: a
    plain docker save | docker load (set-up; the module's own full save and load are tested elsewhere)."""
    source.send_to(target, base)


def inventory(ansible, target):
    return run_ok(ansible, {"airgap.docker.image_info": {"inventory": True, "docker_host": target.host}})[0]["inventory"]


def thin_save(source, path, image, layers, check=False, **extra):
    args = {"path": str(path), "images": [image], "exclude_layers": layers, "docker_host": source.host}
    args.update(extra)
    return {MODULE: args, "check_mode": check}


def load(target, path, check=False, **extra):
    args = {"path": str(path), "state": "loaded", "docker_host": target.host}
    args.update(extra)
    return {MODULE: args, "check_mode": check}


@pytest.mark.parametrize("direction", ["same-engine", "cross-store"])
def test_thin_round_trip(ansible, engine, other_engine, unique, workdir, direction):
    source = engine
    target = engine if direction == "same-engine" else other_engine
    base, app = make_update(source, unique)
    if target is not source:
        give_base(source, target, base)
    held = inventory(ansible, target)["layers"]
    assert set(source.inspect(base)["RootFS"]["Layers"]) <= set(held)
    if target is source:
        held = source.inspect(base)["RootFS"]["Layers"]  # the engine also holds app:2 itself until it is removed

    path = workdir / "app-thin.tar.zst"
    results = ansible.run(*[thin_save(source, path, app, held, check=c) for c in (True, False, True, False)])
    assert changed(results) == [True, True, False, False], results
    saved = results[1]
    base_layers = len(source.inspect(base)["RootFS"]["Layers"])
    assert saved["archive"]["layout"] == "oci"
    assert saved["images"][0]["omitted_layers"] == base_layers
    assert saved["sidecar"]["images"][0]["omitted_layers"] == base_layers
    assert path.stat().st_size < SMALL, "the thin archive carries only the top layer"
    assert results[3]["stats"]["bytes_from_engine"] == 0, "an up-to-date thin archive is not saved again"
    original = source.inspect(app)
    if target is source:
        source.remove(app)

    results = ansible.run(*[load(target, path, check=c) for c in (True, False, True, False)])
    assert changed(results) == [True, True, False, False], results
    assert results[1]["stats"]["bytes_to_engine"] < SMALL
    loaded = target.inspect(app)
    assert loaded["RootFS"]["Layers"] == original["RootFS"]["Layers"]
    assert loaded["Config"]["Cmd"] == original["Config"]["Cmd"]
    out = target.cli("run", "--rm", "--pull", "never", "--network", "none", app)
    assert out.strip() == "update-2"


@pytest.mark.per_store
def test_thin_archive_from_full_archive_without_engine(ansible, engine, other_engine, unique, workdir):
    source, target = engine, other_engine
    base, app = make_update(source, unique)
    give_base(source, target, base)
    full = workdir / "app-full.tar.zst"
    run_ok(ansible, {MODULE: {"path": str(full), "images": [app], "docker_host": source.host}})
    layers = inventory(ansible, target)["layers"]
    thin = workdir / "app-thin.tar"
    dead = "unix://%s/no-engine-here.sock" % workdir
    results = ansible.run(*[thin_save(source, thin, app, layers, check=c, from_archive=str(full), docker_host=dead)
                            for c in (True, False, True, False)])
    assert changed(results) == [True, True, False, False], results
    assert results[1]["stats"]["bytes_from_engine"] == 0
    assert results[1]["stats"]["archive_bytes_read"] == full.stat().st_size
    assert thin.stat().st_size < SMALL
    results = ansible.run(load(target, thin), load(target, thin))
    assert changed(results) == [True, False], results
    assert target.inspect(app)["RootFS"]["Layers"] == source.inspect(app)["RootFS"]["Layers"]


@pytest.mark.per_store
def test_thin_save_from_tampered_full_archive_is_refused(ansible, engine, unique, workdir):
    source = engine
    base, app = make_update(source, unique)
    full = workdir / "app-full.tar"
    run_ok(ansible, {MODULE: {"path": str(full), "images": [app], "docker_host": source.host}})
    data = bytearray(full.read_bytes())
    data[len(data) // 2] ^= 0x01
    full.write_bytes(bytes(data))
    layers = source.inspect(base)["RootFS"]["Layers"]
    thin = workdir / "app-thin.tar"
    result = ansible.run(thin_save(source, thin, app, layers, from_archive=str(full)))[0]
    assert result.get("failed")
    assert "checksum" in result["msg"] or "sha256" in result["msg"], result["msg"]
    assert not thin.exists() and not list(workdir.glob(".app-thin*")), "nothing written, no temporary file left"


@pytest.mark.per_store
def test_thin_load_without_the_base_fails_cleanly(ansible, engine, other_engine, unique, workdir):
    source, target = engine, other_engine
    base, app = make_update(source, unique)
    thin = workdir / "app-thin.tar"
    run_ok(ansible, thin_save(source, thin, app, source.inspect(base)["RootFS"]["Layers"]))
    before = sha256(thin)
    images_before = target.image_ids()
    for check in (True, False):
        result = ansible.run(load(target, thin, check=check))[0]
        assert result.get("failed"), result
        assert "is thin" in result["msg"] and "lacks layer" in result["msg"], result["msg"]
        assert "Nothing was loaded" in result["msg"]
    assert target.inspect(app) is None
    assert target.image_ids() == images_before
    assert sha256(thin) == before, "the archive is left as it was"


@pytest.mark.per_store
def test_tampered_thin_archive_is_refused(ansible, engine, other_engine, unique, workdir):
    source, target = engine, other_engine
    base, app = make_update(source, unique)
    give_base(source, target, base)
    thin = workdir / "app-thin.tar"
    saved = run_ok(ansible, thin_save(source, thin, app, inventory(ansible, target)["layers"]))[0]
    good = saved["archive"]["sha256"]
    data = bytearray(thin.read_bytes())
    index = data.find(b"update-2")
    assert index > 0
    data[index] ^= 0x01
    thin.write_bytes(bytes(data))
    # The sidecar still describes the original bytes (same size): the load verifies while streaming.
    result = ansible.run(load(target, thin, checksum=good))[0]
    assert result.get("failed"), result
    assert "checksum" in result["msg"], result["msg"]
    assert target.inspect(app) is None


def test_exclude_nothing_writes_a_full_archive(ansible, engine, unique, workdir):
    source = engine
    base, app = make_update(source, unique, random_bytes=0)
    path = workdir / "app.tar"
    saved = run_ok(ansible, thin_save(source, path, app, []))[0]
    assert saved["images"][0]["omitted_layers"] == 0
    # Asking again for a thin one against the base layers re-saves: the archive would leave out fewer layers.
    again = run_ok(ansible, thin_save(source, path, app, source.inspect(base)["RootFS"]["Layers"]))[0]
    assert again["changed"] and "leaves out 0 bottom layer" in again["msg"], again["msg"]
    sidecar = json.loads((workdir / "app.tar.airgap.json").read_text())
    assert sidecar["images"][0]["omitted_layers"] == len(source.inspect(base)["RootFS"]["Layers"])


def test_update_of_the_config_only_travels_without_layers(ansible, engine, other_engine, unique, workdir):
    """An update that changes only ENV/CMD adds no layer: its thin archive carries config and manifest."""
    source, target = engine, other_engine
    base, _app = make_update(source, unique)
    config_only = unique + ":3"
    source.build_on(base, config_only, ["ENV MODE=config-only", 'CMD ["cat", "/marker.txt"]'])
    layers = source.inspect(base)["RootFS"]["Layers"]
    assert source.inspect(config_only)["RootFS"]["Layers"] == layers
    give_base(source, target, base)
    thin = workdir / "config-only.tar"
    saved = run_ok(ansible, thin_save(source, thin, config_only, inventory(ansible, target)["layers"]))[0]
    assert saved["images"][0]["omitted_layers"] == len(layers)
    assert thin.stat().st_size < 16 * 1024
    results = ansible.run(load(target, thin), load(target, thin))
    assert changed(results) == [True, False], results
    loaded = target.inspect(config_only)
    assert loaded["Config"]["Env"] == source.inspect(config_only)["Config"]["Env"]
    assert "MODE=config-only" in loaded["Config"]["Env"]


BAD_THIN_INPUTS = {
    "input is itself thin": ("thin", [], "is itself a thin archive"),
    "input is the output": ("self", None, "must name another file than path"),
    "platform with from_archive": ("full", None, "platform cannot be combined with from_archive"),
}


# Refused on the options and the input archive, before any engine is contacted: on one engine.
@pytest.mark.parametrize("case", sorted(BAD_THIN_INPUTS))
def test_bad_thin_inputs_fail_cleanly_and_keep_every_file(ansible, one_engine, unique, workdir, case):
    source = one_engine
    base, app = make_update(source, unique, random_bytes=0)
    full, thin, out = workdir / "full.tar", workdir / "thin.tar", workdir / "out.tar"
    base_layers = source.inspect(base)["RootFS"]["Layers"]
    run_ok(ansible, {MODULE: {"path": str(full), "images": [app], "docker_host": source.host}},
           thin_save(source, thin, app, base_layers, from_archive=str(full)))
    before = {p.name: sha256(p) for p in workdir.iterdir()}
    kind, layers, message = BAD_THIN_INPUTS[case]
    input_path = {"thin": thin, "self": full, "full": full}[kind]
    output = full if kind == "self" else out
    extra = {"platform": "linux/amd64"} if case.startswith("platform") else {}
    result = ansible.run(thin_save(source, output, app, base_layers if layers is None else layers, from_archive=str(input_path),
                                   **extra))[0]
    assert result.get("failed"), result
    assert message in result["msg"], result["msg"]
    assert {p.name: sha256(p) for p in workdir.iterdir()} == before, "nothing written, removed or left behind"


def test_save_on_containerd_of_an_image_whose_base_came_from_elsewhere_is_refused(ansible, factories, unique, workdir):
    """The containerd store keeps no blobs for layers a thin archive left out when the receiver's base
    came from another engine's archive (other blob digests); Docker's save of such an image exits 0
    with the layers missing. The module refuses that archive instead of writing it."""
    classic, modern = factories["classic"], factories["modern"]
    base, app = make_update(modern, unique, random_bytes=0)
    full = workdir / "app-oci.tar"
    run_ok(ansible, {MODULE: {"path": str(full), "images": [app], "docker_host": modern.host}})
    # The base travels through the classic store and comes back as a legacy archive (uncompressed blobs).
    give_base(modern, classic, base)
    legacy_base = workdir / "base-legacy.tar"
    run_ok(ansible, {MODULE: {"path": str(legacy_base), "images": [base], "docker_host": classic.host}})
    modern.remove(app, base)
    modern.client.prune_images(filters={"dangling": True})
    run_ok(ansible, load(modern, legacy_base))
    thin = workdir / "app-thin.tar"
    run_ok(ansible, thin_save(modern, thin, app, modern.inspect(base)["RootFS"]["Layers"], from_archive=str(full)),
           load(modern, thin))
    assert modern.cli("run", "--rm", "--pull", "never", "--network", "none", app).strip() == "update-2"

    again = workdir / "again.tar"
    result = ansible.run({MODULE: {"path": str(again), "images": [app], "docker_host": modern.host}})[0]
    assert result.get("failed"), result
    assert "incomplete or damaged archive" in result["msg"] or "lacks the data of" in result["msg"], result["msg"]
    assert not again.exists() and not list(workdir.glob(".again*")), "nothing written, no temporary file left"
