# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import io
import json
import tarfile

import pytest
from archive_factory import canonical, chunks, digest, layer_tar, parse, random_bytes, scan

from ansible_collections.airgap.docker.plugins.module_utils import container_image, oci_layout
from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import OCI, wants_member
from ansible_collections.airgap.docker.plugins.module_utils.container_image import (
    HISTORY_BY,
    ImportArchive,
    capture_config,
    check_snapshot_record,
    image_config,
    snapshot_record,
)
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.identity import (
    RUNTIME_KEYS,
    fingerprint_from_config_blob,
)
from ansible_collections.airgap.docker.plugins.module_utils.tarscan import TarScanner

CREATED = "2024-05-06T07:08:09.123456789Z"
PLATFORM = {"os": "linux", "architecture": "amd64"}
RUNTIME = {"Cmd": ["/srv/run.sh"], "Env": ["PATH=/usr/bin:/bin", "MODE=offline"], "WorkingDir": "/srv"}


# capture_config -----------------------------------------------------------------------------


def test_capture_config_keeps_runtime_keys_and_drops_empty_values():
    container = {
        "Cmd": ["sh"],
        "Entrypoint": None,
        "Env": [],
        "Labels": {},
        "User": "",
        "WorkingDir": "/srv",
        "ExposedPorts": {"80/tcp": {}},
        "Volumes": None,
        "StopSignal": "SIGINT",
        # not runtime configuration of an image
        "Hostname": "abc123",
        "Domainname": "",
        "Image": "busybox:latest",
        "AttachStdout": True,
        "Tty": False,
        "OpenStdin": False,
    }
    assert capture_config(container) == {"Cmd": ["sh"], "WorkingDir": "/srv", "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGINT"}


def test_capture_config_keeps_every_non_empty_runtime_key():
    container = {key: ["value of %s" % key] for key in RUNTIME_KEYS}
    container["Unrelated"] = "x"
    assert capture_config(container) == {key: ["value of %s" % key] for key in RUNTIME_KEYS}
    assert set(RUNTIME_KEYS) >= {"Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes",
                                 "StopSignal", "Healthcheck", "Shell", "OnBuild"}


@pytest.mark.parametrize("container", [None, {}, {"Hostname": "x", "Image": "y"}, {key: None for key in RUNTIME_KEYS}])
def test_capture_config_of_nothing(container):
    assert capture_config(container) == {}


# snapshot records ---------------------------------------------------------------------------

CONTAINER = {"id": "abc", "name": "app", "image": "app:1", "image_id": "sha256:1", "started_at": "x", "running": False}


def test_snapshot_record_keeps_what_an_import_uses_and_who_it_was():
    record = snapshot_record(RUNTIME, CREATED, dict(PLATFORM, extra="dropped"), CONTAINER)
    assert record == {"schema": 1, "config": RUNTIME, "created": CREATED,
                      "platform": {"os": "linux", "architecture": "amd64", "variant": None},
                      "container": {"id": "abc", "name": "app", "image": "app:1"}}
    assert check_snapshot_record(record) is None


def test_a_captured_config_of_every_key_is_a_valid_record():
    config = capture_config({
        "Cmd": ["sh"], "Entrypoint": ["/init"], "Env": ["A=1"], "WorkingDir": "/srv", "User": "app", "Labels": {"a": "b"},
        "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}}, "StopSignal": "SIGINT", "Shell": ["/bin/bash", "-c"],
        "OnBuild": ["RUN true"],
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 10 ** 9, "Timeout": 10 ** 9, "Retries": 3, "StartPeriod": 0},
    })
    assert set(config) == set(RUNTIME_KEYS)
    assert check_snapshot_record(snapshot_record(config, CREATED, PLATFORM, CONTAINER)) is None


@pytest.mark.parametrize("change,fragment", [
    ({"schema": 2}, "schema 2"),
    ({"created": "0001-01-01T00:00:00Z"}, "created"),
    ({"created": 1700000000}, "created"),
    ({"container": ["abc"]}, "container is not an object"),
    ({"config": []}, "config is not an object"),
    ({"config": {"Env": ["A=1", 2]}}, "config.Env is not a list of strings"),
    ({"config": {"User": 0}}, "config.User is not a string"),
    ({"config": {"Labels": {"a": 1}}}, "config.Labels"),
    ({"config": {"ExposedPorts": ["80/tcp"]}}, "config.ExposedPorts"),
    ({"config": {"Healthcheck": {"Test": "true"}}}, "config.Healthcheck"),
    ({"config": {"HostConfig": {}}}, "not runtime configuration"),
    ({"platform": None}, "platform is not an object"),
    ({"platform": {"os": "linux", "architecture": "amd64", "variant": 7}}, "platform.variant"),
    ({"platform": {"os": "linux", "architecture": "amd64", "cpu": "x"}}, "platform is not an object"),
])
def test_check_snapshot_record_names_the_problem(change, fragment):
    record = dict(snapshot_record(RUNTIME, CREATED, PLATFORM, CONTAINER), **change)
    assert fragment in check_snapshot_record(record)


@pytest.mark.parametrize("record", [None, [], "text", {"schema": 1}])
def test_check_snapshot_record_of_no_record(record):
    assert check_snapshot_record(record)


# image_config -------------------------------------------------------------------------------


LAYER = digest(b"layer")


def config_of(**overrides):
    arguments = {"layer_digest": LAYER, "created": CREATED, "platform": dict(PLATFORM), "config": dict(RUNTIME), "message": None}
    arguments.update(overrides)
    return image_config(**arguments)


def test_image_config_document():
    document = json.loads(config_of(message="imported by airgap"))
    assert document == {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": RUNTIME,
        "rootfs": {"type": "layers", "diff_ids": [LAYER]},
        "history": [{"created": CREATED, "created_by": HISTORY_BY, "comment": "imported by airgap"}],
    }


def test_image_config_is_canonical_json():
    data = config_of()
    document = json.loads(data)
    assert data == canonical(document)
    assert b", " not in data and b": " not in data  # compact separators
    assert list(json.loads(data)) == sorted(document)


def test_image_config_is_deterministic():
    first = config_of()
    # the same inputs, dicts built in another order
    reordered = dict(reversed(list(RUNTIME.items())))
    second = config_of(config=reordered, platform={"architecture": "amd64", "os": "linux"})
    assert first == second
    assert container_image.sha256_digest(first) == container_image.sha256_digest(second)


def test_image_config_non_ascii_is_stable_utf8():
    data = config_of(config={"Labels": {"owner": "Zoë"}}, message="café")
    assert "Zoë".encode() in data and "café".encode() in data
    assert data == config_of(config={"Labels": {"owner": "Zoë"}}, message="café")


@pytest.mark.parametrize("overrides", [
    {"created": "2024-05-06T07:08:10.123456789Z"},
    {"layer_digest": digest(b"another layer")},
    {"config": dict(RUNTIME, User="app")},
    {"config": {}},
    {"platform": {"os": "linux", "architecture": "arm64"}},
    {"platform": {"os": "windows", "architecture": "amd64"}},
    {"platform": dict(PLATFORM, variant="v7")},
    {"message": "a comment"},
])
def test_image_config_changes_with_every_input(overrides):
    assert container_image.sha256_digest(config_of(**overrides)) != container_image.sha256_digest(config_of())


def test_image_config_variant_only_when_set():
    assert json.loads(config_of(platform={"os": "linux", "architecture": "arm", "variant": "v7"}))["variant"] == "v7"
    for platform in ({"os": "linux", "architecture": "arm"}, {"os": "linux", "architecture": "arm", "variant": ""},
                     {"os": "linux", "architecture": "arm", "variant": None}):
        assert "variant" not in json.loads(config_of(platform=platform))


def test_image_config_defaults():
    document = json.loads(config_of(platform={}, config=None, message=""))
    assert document["os"] == "linux"
    assert document["architecture"] == "amd64"
    assert document["config"] == {}
    assert document["history"] == [{"created": CREATED, "created_by": HISTORY_BY}]


# ImportArchive ------------------------------------------------------------------------------


def build(layer, name="app:1", config=None, platform=None):
    layer_digest = digest(layer)
    config_bytes = image_config(layer_digest, CREATED, platform or PLATFORM, RUNTIME if config is None else config)
    archive = ImportArchive(name, config_bytes, layer_digest, len(layer))
    return archive, archive.head() + layer + archive.tail()


def members(data):
    """{name: (TarInfo, bytes)} of a tar, read with Python's tarfile."""
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for info in tar.getmembers():
            assert info.name not in found, "duplicate member %s" % info.name
            found[info.name] = (info, tar.extractfile(info).read() if info.isfile() else None)
    return found


def blob(name_digest):
    return "blobs/sha256/" + name_digest.split(":", 1)[1]


LAYERS = {
    "odd": random_bytes(11, 1000),  # not a multiple of 512
    "one short of a block": random_bytes(12, 1023),
    "one past a block": random_bytes(13, 1025),
    "exactly two blocks": random_bytes(14, 1024),
    "a real layer tar": layer_tar({"etc/hostname": b"airgap\n", "srv/run.sh": b"#!/bin/sh\nexec app\n"}),
    "empty": b"",
}


@pytest.mark.parametrize("layer", list(LAYERS.values()), ids=list(LAYERS))
def test_import_archive_parses_with_tarfile(layer):
    archive, data = build(layer)
    assert len(data) % 512 == 0
    found = members(data)
    layer_digest = digest(layer)
    assert list(found) == ["blobs", "blobs/sha256", "oci-layout", "index.json", "manifest.json",
                           *sorted([blob(archive.config_digest), blob(archive.manifest_digest)]), blob(layer_digest)]
    for info, _body in list(found.values())[2:]:
        assert info.isfile()
        assert (info.mtime, info.mode) == (0, 0o644)

    assert json.loads(found["oci-layout"][1]) == {"imageLayoutVersion": "1.0.0"}

    # the config blob is the config, under its digest
    config_info, config_bytes = found[blob(archive.config_digest)]
    assert config_bytes == archive.config_bytes
    assert digest(config_bytes) == archive.config_digest
    assert config_info.size == len(config_bytes)

    # the manifest blob, under its digest, points at the config and the layer
    manifest_bytes = found[blob(archive.manifest_digest)][1]
    assert manifest_bytes == archive.manifest_bytes
    assert digest(manifest_bytes) == archive.manifest_digest
    manifest = json.loads(manifest_bytes)
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == container_image.MANIFEST_TYPE
    assert manifest["config"] == {"mediaType": container_image.CONFIG_TYPE, "digest": archive.config_digest, "size": len(config_bytes)}
    assert manifest["layers"] == [{"mediaType": container_image.LAYER_TYPE, "digest": layer_digest, "size": len(layer)}]

    # index.json names the manifest with the containerd image name
    index = json.loads(found["index.json"][1])
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == oci_layout.INDEX_TYPE
    assert index["manifests"] == [{
        "mediaType": container_image.MANIFEST_TYPE, "digest": archive.manifest_digest, "size": len(manifest_bytes),
        "annotations": {"io.containerd.image.name": "docker.io/library/app:1", "org.opencontainers.image.ref.name": "1"},
    }]

    # manifest.json for the classic store
    assert json.loads(found["manifest.json"][1]) == [{
        "Config": blob(archive.config_digest), "RepoTags": ["app:1"], "Layers": [blob(layer_digest)],
    }]

    # the layer member carries the layer's bytes under its digest
    layer_info, layer_bytes = found[blob(layer_digest)]
    assert layer_info.size == len(layer)
    assert layer_bytes == layer


@pytest.mark.parametrize("name, full", [
    ("app:1", "docker.io/library/app:1"),
    ("team/app:2.0", "docker.io/team/app:2.0"),
    ("registry.example.com:5000/team/app:v3", "registry.example.com:5000/team/app:v3"),
    ("localhost/app:dev", "localhost/app:dev"),
])
def test_import_archive_names(name, full):
    archive, data = build(LAYERS["odd"], name=name)
    found = members(data)
    annotations = json.loads(found["index.json"][1])["manifests"][0]["annotations"]
    assert annotations == {"io.containerd.image.name": full, "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}
    assert json.loads(found["manifest.json"][1])[0]["RepoTags"] == [name]
    _layout, images = parse(data)
    assert [image.tags for image in images] == [[name]]
    assert images[0].manifest_digest == archive.manifest_digest


def test_import_archive_digests():
    layer = LAYERS["odd"]
    archive, _data = build(layer)
    assert archive.config_digest == digest(archive.config_bytes)
    assert archive.manifest_digest == digest(archive.manifest_bytes)
    assert archive.manifest_bytes == container_image.image_manifest(archive.config_bytes, digest(layer), len(layer))


def test_import_archive_is_deterministic():
    first = build(LAYERS["odd"])
    second = build(LAYERS["odd"])
    assert first[1] == second[1]
    assert first[0].manifest_digest == second[0].manifest_digest
    other = build(LAYERS["odd"], config=dict(RUNTIME, User="app"))
    assert other[0].config_digest != first[0].config_digest
    assert other[0].manifest_digest != first[0].manifest_digest


@pytest.mark.parametrize("layer", [LAYERS["odd"], LAYERS["a real layer tar"], LAYERS["empty"]], ids=["odd", "tar", "empty"])
@pytest.mark.parametrize("piece", [1 << 20, 511, 97])
def test_import_archive_parses_with_the_project_scanner(layer, piece):
    archive, data = build(layer, platform={"os": "linux", "architecture": "arm", "variant": "v7"})
    scanner = scan(data, chunk=piece)
    assert scanner.ended
    assert scanner.sizes[blob(digest(layer))] == len(layer)
    layout, images = parse(data)
    assert layout == OCI
    assert len(images) == 1
    image = images[0]
    assert image.config_digest == archive.config_digest
    assert image.manifest_digest == archive.manifest_digest
    assert image.index_digest is None
    assert image.tags == ["app:1"]
    assert image.diff_ids == [digest(layer)]
    assert image.created == CREATED
    assert (image.os, image.architecture) == ("linux", "arm")
    assert image.size == len(layer)
    assert image.fingerprint == fingerprint_from_config_blob(json.loads(archive.config_bytes))


def test_import_archive_streamed_in_pieces_parses_the_same():
    layer = random_bytes(21, 5000)
    archive, data = build(layer)
    streamed = b"".join([archive.head()] + chunks(layer, 777) + [archive.tail()])
    assert streamed == data
    assert parse(streamed)[1][0].manifest_digest == archive.manifest_digest


def test_head_ends_with_the_layer_header_and_tail_pads_and_ends_the_tar():
    for size in (0, 1, 511, 512, 513, 1000):
        archive = ImportArchive("app:1", b"{}", digest(b"x"), size)
        head, tail = archive.head(), archive.tail()
        assert len(head) % 512 == 0
        assert len(head + b"\0" * size + tail) % 512 == 0
        assert tail == b"\0" * ((512 - size % 512) % 512) + b"\0" * 1024


def test_head_describes_a_layer_of_8_gib_and_more():
    size = (8 << 30) + 1001  # too large for the ustar size field: needs a PAX size record
    archive = ImportArchive("app:1", b"{}", digest(b"x"), size)
    scanner = TarScanner(wants_member)
    scanner.feed(archive.head())
    assert scanner.sizes[blob(digest(b"x"))] == size
    assert not scanner.ended
    with pytest.raises(ArchiveError, match="truncated"):
        scanner.finish()  # the layer's bytes are still to come
    with tarfile.open(fileobj=io.BytesIO(archive.head()), mode="r:") as tar:
        infos = [tar.next() for _index in range(8)]
    assert infos[-1].name == blob(digest(b"x"))
    assert infos[-1].size == size
