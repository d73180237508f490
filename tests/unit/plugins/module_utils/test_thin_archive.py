# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import replace

import pytest
from archive_factory import (
    OCI_MANIFEST,
    ImageSpec,
    chunks,
    digest,
    layer_tar,
    legacy_archive,
    member_names,
    oci_archive,
    parse,
    random_bytes,
    rewrite_archive,
    scan,
)

from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import (
    LEGACY,
    OCI,
    parse_layout,
    wants_member,
)
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.tarscan import TarScanner
from ansible_collections.airgap.docker.plugins.module_utils.thin_archive import InputReader, ThinLayout
from ansible_collections.airgap.docker.plugins.module_utils.thin_plan import plan_omissions, skippable_members

BASE = layer_tar({"etc/os-release": b"ID=airgap\n", "bin/sh": random_bytes(10, 3000)})
LIB = layer_tar({"usr/lib/libapp.so": random_bytes(11, 5000)})
APP = layer_tar({"app/bin": random_bytes(12, 7000)})
TOOL = layer_tar({"usr/bin/tool": random_bytes(13, 900)})


def app_spec():
    return ImageSpec(tags=["app:2", "registry.example.com:5000/team/app:2"], layers=[BASE, LIB, APP], runtime={"Cmd": ["/app/bin"]})


def tool_spec():
    return ImageSpec(tags=["bitnami/tool:1"], layers=[BASE, TOOL], runtime={"Cmd": ["tool"]})


def full_archive(layout, specs, **kwargs):
    if layout == LEGACY:
        return legacy_archive(specs)
    return oci_archive(specs, **kwargs)


def blob(data):
    return "blobs/sha256/" + digest(data)[7:]


def read_input(data, directory, skip=(), chunk=4096):
    reader = InputReader(str(directory), skip)
    for piece in chunks(data, chunk):
        reader.feed(piece)
    reader.feed(None)
    return reader


def thin_bytes(data, directory, omitted, skip=(), chunk=4096):
    """The thin archive of every image of data; omitted: {first tag: count}, default 0."""
    reader = read_input(data, directory, skip, chunk)
    try:
        layout, images = reader.images()
        counts = [omitted.get(image.tags[0] if image.tags else None, 0) for image in images]
        return b"".join(ThinLayout(reader, layout, images, counts).blocks())
    finally:
        reader.discard()


def untar(data):
    """{name: bytes} of the regular members, and the names of all members in order."""
    files = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        for info in tar:
            if info.isreg():
                files[info.name] = tar.extractfile(info).read()
    return files, names


def reparse(data):
    scanner = TarScanner(wants_member)
    for piece in chunks(data, 1000):
        scanner.feed(piece)
    scanner.finish()
    return parse_layout(scanner.members, scanner.sizes, scanner.links)


def by_tag(images):
    return {image.tags[0] if image.tags else None: image for image in images}


# InputReader --------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", [LEGACY, OCI])
def test_reader_spools_every_layer_member(layout, tmp_path):
    data = full_archive(layout, [app_spec(), tool_spec()])
    reader = read_input(data, tmp_path)
    try:
        images = reader.images()[1]
        layers = {path for image in images for path in image.layers}
        assert layers <= set(reader.spools)
        for image, spec in zip(images, (app_spec(), tool_spec())):
            for path, layer in zip(image.layers, spec.layers):
                spool = reader.spools[path]
                assert spool.size == len(layer)
                assert b"".join(spool.chunks()) == layer
        if layout == LEGACY:
            assert set(reader.spools) == layers  # configs and layer json files are not spooled
    finally:
        reader.discard()


@pytest.mark.parametrize("layout", [LEGACY, OCI])
def test_skipped_members_are_not_spooled(layout, tmp_path):
    data = full_archive(layout, [app_spec()])
    (image,) = parse(data)[1]
    skip = set(image.layers[:2])
    reader = read_input(data, tmp_path, skip=skip)
    try:
        assert not skip & set(reader.spools)
        assert image.layers[2] in reader.spools
        # still seen: sized and part of the parsed archive
        assert all(path in reader.scanner.sizes for path in skip)
        assert reader.images()[1][0].omitted_layers == 0
    finally:
        reader.discard()


def test_reader_discard_closes_the_spool_file(tmp_path):
    reader = read_input(legacy_archive([app_spec(), tool_spec()]), tmp_path)
    spools = list(reader.spools.values())
    spool_file = reader._spool_file.file
    assert len(spools) > 1 and not spool_file.closed
    # Every layer lives in the one file, end to end: one descriptor however many layers there are.
    assert sorted((s.offset, s.size) for s in spools)[0][0] == 0
    assert sum(s.size for s in spools) == reader._spool_file.end
    reader.discard()
    assert spool_file.closed and reader.spools == {}
    reader.discard()  # twice is harmless


def test_spool_write_failure_is_one_sentence(tmp_path, monkeypatch):
    import errno

    from ansible_collections.airgap.docker.plugins.module_utils.errors import SpaceError
    from ansible_collections.airgap.docker.plugins.module_utils.thin_archive import _SpoolFile

    spool_file = _SpoolFile(str(tmp_path))
    spool = spool_file.member()

    def full(_data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool_file.file, "write", full)
    with pytest.raises(SpaceError, match="No space left on the device while writing the layers being sorted in"):
        spool.write(b"x")
    spool_file.close()


def test_reader_feed_none_on_a_truncated_input_raises(tmp_path):
    data = legacy_archive([app_spec()])
    reader = InputReader(str(tmp_path))
    try:
        reader.feed(data[:len(data) // 2])
        with pytest.raises(ArchiveError, match="truncated"):
            reader.feed(None)
    finally:
        reader.discard()


def test_reader_ignores_data_after_the_end_of_the_tar(tmp_path):
    data = legacy_archive([app_spec()])
    reader = read_input(data + b"\0" * 10240 + b"trailing garbage", tmp_path)
    try:
        assert reader.images()[1][0].tags == ["app:2", "registry.example.com:5000/team/app:2"]
    finally:
        reader.discard()


# ThinLayout: the end-to-end pure path -------------------------------------------------------


@pytest.mark.parametrize("layout", [LEGACY, OCI])
@pytest.mark.parametrize("omitted", [0, 1, 2, 3])
def test_thin_archive_of_one_image(layout, omitted, tmp_path):
    spec = app_spec()
    data = full_archive(layout, [spec])
    out = thin_bytes(data, tmp_path, {"app:2": omitted})
    files, names = untar(out)
    # a valid tar holding an OCI layout that also carries manifest.json
    assert {"oci-layout", "index.json", "manifest.json", "blobs/sha256/" + spec.config_digest[7:]} <= set(files)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    assert len(names) == len(set(names))
    # the config is copied byte for byte
    assert files["blobs/sha256/" + spec.config_digest[7:]] == spec.config_bytes
    # left-out layers are absent, kept ones present with their bytes
    for position, layer in enumerate(spec.layers):
        if position < omitted:
            assert blob(layer) not in files
        else:
            assert files[blob(layer)] == layer
    # manifest.json lists every layer, the absent ones too
    (entry,) = json.loads(files["manifest.json"])
    assert entry["Config"] == "blobs/sha256/" + spec.config_digest[7:]
    assert entry["Layers"] == [blob(layer) for layer in spec.layers]
    assert entry["RepoTags"] == ["app:2", "registry.example.com:5000/team/app:2"]
    # index.json names each tag as the containerd store does
    index = json.loads(files["index.json"])
    assert index["schemaVersion"] == 2
    annotations = [d["annotations"] for d in index["manifests"]]
    assert annotations == [
        {"io.containerd.image.name": "docker.io/library/app:2", "org.opencontainers.image.ref.name": "2"},
        {"io.containerd.image.name": "registry.example.com:5000/team/app:2", "org.opencontainers.image.ref.name": "2"},
    ]
    manifest_digests = {d["digest"] for d in index["manifests"]}
    assert len(manifest_digests) == 1
    (manifest_digest,) = manifest_digests
    manifest_bytes = files["blobs/sha256/" + manifest_digest[7:]]
    assert digest(manifest_bytes) == manifest_digest
    assert all(d["size"] == len(manifest_bytes) and d["mediaType"] == OCI_MANIFEST for d in index["manifests"])
    manifest = json.loads(manifest_bytes)
    assert manifest["config"]["digest"] == spec.config_digest
    assert manifest["config"]["size"] == len(spec.config_bytes)
    assert [d["size"] for d in manifest["layers"]] == [len(layer) for layer in spec.layers]
    if layout == LEGACY:
        # synthesized: uncompressed layers, so the layer digests are the diff IDs
        assert [d["digest"] for d in manifest["layers"]] == spec.diff_ids
        assert manifest["mediaType"] == OCI_MANIFEST and manifest["schemaVersion"] == 2
        assert {d["mediaType"] for d in manifest["layers"]} == {"application/vnd.oci.image.layer.v1.tar"}
    else:
        # kept byte for byte: the image keeps its manifest digest
        assert manifest_bytes == spec.manifest_bytes
        assert manifest_digest == spec.manifest_digest
    # read again, the archive says what it leaves out
    out_layout, (image,) = reparse(out)
    assert out_layout == OCI
    assert image.omitted_layers == omitted
    assert image.required_layers() == spec.diff_ids[:omitted]
    assert image.config_digest == spec.config_digest
    assert image.diff_ids == spec.diff_ids
    assert image.tags == ["app:2", "registry.example.com:5000/team/app:2"]
    assert image.manifest_digest == manifest_digest


@pytest.mark.parametrize("layout", [LEGACY, OCI])
def test_thin_archive_of_two_images_sharing_a_base(layout, tmp_path):
    app, tool = app_spec(), tool_spec()
    data = full_archive(layout, [app, tool])
    omitted = plan_omissions([app.diff_ids, tool.diff_ids], [digest(BASE), digest(LIB)])
    assert omitted == [2, 1]
    out = thin_bytes(data, tmp_path, {"app:2": 2, "bitnami/tool:1": 1})
    files = untar(out)[0]
    assert blob(BASE) not in files and blob(LIB) not in files
    assert files[blob(APP)] == APP and files[blob(TOOL)] == TOOL
    index = json.loads(files["index.json"])
    assert {d["annotations"]["io.containerd.image.name"] for d in index["manifests"]} == {
        "docker.io/library/app:2", "registry.example.com:5000/team/app:2", "docker.io/bitnami/tool:1"}
    assert {d["annotations"]["org.opencontainers.image.ref.name"] for d in index["manifests"]} == {"2", "1"}
    images = by_tag(reparse(out)[1])
    assert images["app:2"].omitted_layers == 2
    assert images["bitnami/tool:1"].omitted_layers == 1
    assert len(json.loads(files["manifest.json"])) == 2


@pytest.mark.parametrize("layout", [LEGACY, OCI])
def test_thin_archive_carries_a_shared_layer_once(layout, tmp_path):
    out = thin_bytes(full_archive(layout, [app_spec(), tool_spec()]), tmp_path, {})
    files, names = untar(out)
    assert names.count(blob(BASE)) == 1
    assert files[blob(BASE)] == BASE
    assert all(image.omitted_layers == 0 for image in reparse(out)[1])


def test_thin_archive_of_a_nested_oci_input_keeps_the_platform_manifest(tmp_path):
    spec = app_spec()
    data = oci_archive([spec], nested=True, attestation=True)
    out = thin_bytes(data, tmp_path, {"app:2": 1})
    files = untar(out)[0]
    index = json.loads(files["index.json"])
    assert {d["digest"] for d in index["manifests"]} == {spec.manifest_digest}
    assert files["blobs/sha256/" + spec.manifest_digest[7:]] == spec.manifest_bytes
    assert "blobs/sha256/" + spec.index_digest[7:] not in files
    (image,) = reparse(out)[1]
    assert image.omitted_layers == 1 and image.manifest_digest == spec.manifest_digest


def test_thin_archive_of_an_untagged_image(tmp_path):
    spec = ImageSpec(tags=[], layers=[BASE, APP], runtime={"Cmd": ["u"]})
    out = thin_bytes(legacy_archive([spec]), tmp_path, {None: 1})
    files = untar(out)[0]
    (descriptor,) = json.loads(files["index.json"])["manifests"]
    assert "annotations" not in descriptor
    (entry,) = json.loads(files["manifest.json"])
    assert not entry["RepoTags"]
    (image,) = reparse(out)[1]
    assert image.tags == [] and image.omitted_layers == 1 and image.config_digest == spec.config_digest


@pytest.mark.parametrize("layout", [LEGACY, OCI])
def test_thin_archive_is_deterministic(layout, tmp_path):
    data = full_archive(layout, [app_spec(), tool_spec()])
    omitted = {"app:2": 2, "bitnami/tool:1": 1}
    first = thin_bytes(data, tmp_path, omitted)
    assert thin_bytes(data, tmp_path, omitted) == first
    # whatever the chunking of the input
    assert thin_bytes(data, tmp_path, omitted, chunk=1) == first
    assert thin_bytes(data, tmp_path, omitted, chunk=513) == first
    # and whether or not the left-out members were spooled
    images = parse(data)[1]
    skip = skippable_members(images, [omitted[i.tags[0]] for i in images])
    assert skip
    assert thin_bytes(data, tmp_path, omitted, skip=skip) == first


def test_thin_blocks_can_be_read_twice(tmp_path):
    reader = read_input(oci_archive([app_spec()]), tmp_path)
    try:
        layout, images = reader.images()
        thin = ThinLayout(reader, layout, images, [1])
        first = b"".join(thin.blocks())
        assert b"".join(thin.blocks()) == first
    finally:
        reader.discard()


def test_thin_tar_layout(tmp_path):
    spec = app_spec()
    out = thin_bytes(legacy_archive([spec]), tmp_path, {"app:2": 1})
    assert len(out) % 512 == 0
    assert out.endswith(b"\0" * 1024)
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos[:2]] == ["blobs", "blobs/sha256"] and all(i.isdir() for i in infos[:2])
    assert [i.name for i in infos[2:5]] == ["oci-layout", "index.json", "manifest.json"]
    blobs = [i.name for i in infos[5:]]
    assert all(n.startswith("blobs/sha256/") for n in blobs)
    # the configs and manifests by name, then the layers by name
    layers = [i.name for i in infos[5:] if i.size > 4096]
    assert blobs == sorted(set(blobs) - set(layers)) + sorted(layers) and len(layers) == 2
    assert {(i.mtime, i.uid, i.gid) for i in infos} == {(0, 0, 0)}
    assert {i.mode for i in infos if i.isreg()} == {0o644}


def test_size_estimate_covers_the_archive(tmp_path):
    reader = read_input(legacy_archive([app_spec(), tool_spec()]), tmp_path)
    try:
        layout, images = reader.images()
        thin = ThinLayout(reader, layout, images, [1, 0])
        out = b"".join(thin.blocks())
        carried = len(LIB) + len(APP) + len(BASE) + len(TOOL)
        assert carried < thin.size_estimate()
        assert len(out) <= thin.size_estimate()
    finally:
        reader.discard()


def test_plan_skip_and_build_end_to_end(tmp_path):
    """The module's path: plan against held layers, skip what no image carries, build, read back."""
    app, tool = app_spec(), tool_spec()
    data = legacy_archive([app, tool])
    images = parse(data)[1]
    held = [digest(BASE), digest(LIB), digest(TOOL)]
    omitted = plan_omissions([i.diff_ids for i in images], held)
    assert omitted == [2, 2]
    skip = skippable_members(images, omitted)
    reader = read_input(data, tmp_path, skip=skip)
    try:
        assert not skip & set(reader.spools)
        layout, parsed = reader.images()
        out = b"".join(ThinLayout(reader, layout, parsed, omitted).blocks())
    finally:
        reader.discard()
    files = untar(out)[0]
    assert files[blob(APP)] == APP
    assert not {blob(BASE), blob(LIB), blob(TOOL)} & set(files)
    assert [i.omitted_layers for i in reparse(out)[1]] == omitted


# ThinLayout: errors -------------------------------------------------------------------------


@pytest.mark.parametrize("layout", [LEGACY, OCI])
def test_a_needed_layer_that_was_skipped_is_an_error(layout, tmp_path):
    spec = app_spec()
    data = full_archive(layout, [spec])
    (image,) = parse(data)[1]
    reader = read_input(data, tmp_path, skip={image.layers[1]})
    try:
        layout_read, images = reader.images()
        with pytest.raises(ArchiveError) as info:
            ThinLayout(reader, layout_read, images, [1])
        assert "lacks layer 2 of app:2" in info.value.msg
        assert spec.diff_ids[1] in info.value.msg
        # leaving that layer out too is fine
        thin = ThinLayout(reader, layout_read, images, [2])
        assert blob(LIB) not in thin.blobs
    finally:
        reader.discard()


@pytest.mark.parametrize("layout", [LEGACY, OCI])
def test_a_needed_layer_absent_from_a_thin_input_is_an_error(layout, tmp_path):
    spec = app_spec()
    full = full_archive(layout, [spec])
    (image,) = parse(full)[1]
    thin_input = rewrite_archive(full, drop={image.layers[0]})
    reader = read_input(thin_input, tmp_path)
    try:
        layout_read, images = reader.images()
        assert images[0].omitted_layers == 1
        with pytest.raises(ArchiveError, match="lacks layer 1 of app:2"):
            ThinLayout(reader, layout_read, images, [0])
    finally:
        reader.discard()


def test_a_thin_oci_input_can_be_thinned_further(tmp_path):
    spec = app_spec()
    full = oci_archive([spec])
    thin_input = rewrite_archive(full, drop={blob(BASE)})
    out = thin_bytes(thin_input, tmp_path, {"app:2": 2})
    files = untar(out)[0]
    assert files["blobs/sha256/" + spec.manifest_digest[7:]] == spec.manifest_bytes
    assert set(files) & {blob(BASE), blob(LIB), blob(APP)} == {blob(APP)}
    assert reparse(out)[1][0].omitted_layers == 2
    # the same output as from the full input
    assert thin_bytes(full, tmp_path, {"app:2": 2}) == out


def test_layer_count_mismatch_is_an_error(tmp_path):
    reader = read_input(legacy_archive([app_spec()]), tmp_path)
    try:
        layout, (image,) = reader.images()
        damaged = replace(image, layers=image.layers[:2])
        with pytest.raises(ArchiveError, match="lists 2 layers for app:2"):
            ThinLayout(reader, layout, [damaged], [0])
    finally:
        reader.discard()


def test_missing_config_is_an_error(tmp_path):
    reader = read_input(legacy_archive([app_spec()]), tmp_path)
    try:
        layout, (image,) = reader.images()
        other = replace(image, config_digest="sha256:" + "0" * 64)
        with pytest.raises(ArchiveError, match="no config for app:2"):
            ThinLayout(reader, layout, [other], [0])
    finally:
        reader.discard()


# links in the input -------------------------------------------------------------------------


def test_legacy_input_layer_behind_a_symlink(tmp_path):
    """docker save writes a layer it already wrote under another chain as a symlink; the thin
    archive carries the link target's data."""
    common = layer_tar({"common": random_bytes(14, 2000)})
    first = ImageSpec(tags=["first:1"], layers=[BASE, common], runtime={"Cmd": ["1"]})
    second = ImageSpec(tags=["second:1"], layers=[TOOL, common], runtime={"Cmd": ["2"]})
    full = legacy_archive([first, second])
    images = by_tag(parse(full)[1])
    linked_path, target_path = images["second:1"].layers[1], images["first:1"].layers[1]
    assert linked_path != target_path
    target_id = target_path.split("/")[0]
    data = rewrite_archive(full, links={linked_path: ("sym", "../%s/layer.tar" % target_id)})
    assert linked_path in member_names(data)
    assert scan(data).links == {linked_path: "../%s/layer.tar" % target_id}
    out = thin_bytes(data, tmp_path, {"second:1": 1})
    files = untar(out)[0]
    assert files[blob(common)] == common
    assert blob(TOOL) not in files
    manifests = {}
    for descriptor in json.loads(files["index.json"])["manifests"]:
        manifests[descriptor["annotations"]["io.containerd.image.name"]] = json.loads(files["blobs/sha256/" + descriptor["digest"][7:]])
    assert manifests["docker.io/library/second:1"]["layers"][1] == {
        "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(common), "size": len(common)}
    assert by_tag(reparse(out)[1])["second:1"].omitted_layers == 1
    # identical to the output of the archive without the link
    assert out == thin_bytes(full, tmp_path, {"second:1": 1})
