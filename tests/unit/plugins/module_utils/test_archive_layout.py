# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os

import pytest
from archive_factory import (
    ImageSpec,
    canonical,
    digest,
    layer_tar,
    legacy_archive,
    oci_archive,
    parse,
    scan,
)

from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import (
    LEGACY,
    OCI,
    ArchiveImage,
    parse_layout,
    wants_member,
)
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.identity import (
    fingerprint_from_config_blob,
)

HEX = "ab" * 32


def busybox(**kwargs):
    kwargs.setdefault("tags", ["busybox:latest", "busybox:1.36"])
    return ImageSpec(**kwargs)


def app(**kwargs):
    kwargs.setdefault("tags", ["registry.example.com:5000/team/app:2"])
    kwargs.setdefault("layers", [layer_tar({"app/bin": b"\x7fELF" + b"\0" * 3000}), layer_tar({"app/conf": b"x=1\n"})])
    kwargs.setdefault("runtime", {"Entrypoint": ["/app/bin"], "ExposedPorts": {"8080/tcp": {}}})
    return ImageSpec(**kwargs)


def check_identity(image, spec):
    assert image.config_digest == spec.config_digest
    assert image.diff_ids == spec.diff_ids
    assert image.created == spec.created
    assert image.os == spec.os
    assert image.architecture == spec.architecture
    assert image.fingerprint == fingerprint_from_config_blob(spec.config)


# wants_member -------------------------------------------------------------------------------


@pytest.mark.parametrize("name, size, wanted", [
    ("manifest.json", 100, True),
    ("index.json", 100, True),
    ("oci-layout", 30, True),
    ("repositories", 80, True),
    (HEX + ".json", 2000, True),  # legacy config
    (HEX + "/json", 300, False),  # legacy layer metadata
    (HEX + "/VERSION", 3, False),
    (HEX + "/layer.tar", 2000, False),
    ("blobs/sha256/" + HEX, 1000, True),
    ("blobs/sha256/" + HEX, 4 << 20, True),
    ("blobs/sha256/" + HEX, (4 << 20) + 1, False),
    ("blobs/sha512/" + HEX, 1000, False),
    ("sub/dir/config.json", 100, False),
    ("README", 10, False),
])
def test_wants_member(name, size, wanted):
    assert wants_member(name, size) is wanted


# legacy -------------------------------------------------------------------------------------


def test_legacy_single_image():
    spec = busybox()
    layout, images = parse(legacy_archive([spec]))
    assert layout == LEGACY
    assert len(images) == 1
    image = images[0]
    check_identity(image, spec)
    assert image.tags == ["busybox:1.36", "busybox:latest"]
    assert image.manifest_digest is None and image.index_digest is None
    assert image.size == spec.layers_size
    assert image.engine_ids() == [spec.config_digest]


def test_legacy_several_images_sorted_and_sized():
    tagged, other, untagged = busybox(), app(), ImageSpec(tags=[], runtime={"Cmd": ["true"]})
    layout, images = parse(legacy_archive([other, untagged, tagged]))
    assert layout == LEGACY
    assert [i.tags for i in images] == [[], ["busybox:1.36", "busybox:latest"], ["registry.example.com:5000/team/app:2"]]
    check_identity(images[0], untagged)
    check_identity(images[2], other)
    assert images[2].size == other.layers_size
    assert len(images[2].diff_ids) == 2


def test_legacy_tags_are_familiar():
    spec = ImageSpec(tags=["docker.io/library/busybox:1", "index.docker.io/library/alpine:3", "docker.io/bitnami/redis:7", "nginx"])
    images = parse(legacy_archive([spec], repositories=False))[1]
    assert images[0].tags == ["alpine:3", "bitnami/redis:7", "busybox:1", "nginx:latest"]


def test_legacy_large_layer_is_sized_from_the_tar_headers():
    big = layer_tar({"blob.bin": os.urandom(5 << 20)})
    spec = busybox(layers=[big, layer_tar({"small": b"s"})])
    scanner = scan(legacy_archive([spec]))
    assert not any(name.endswith("layer.tar") for name in scanner.members)
    images = parse_layout(scanner.members, scanner.sizes)[1]
    assert images[0].size == spec.layers_size > 5 << 20


def test_legacy_without_repositories_file():
    spec = busybox()
    images = parse(legacy_archive([spec], repositories=False))[1]
    assert images[0].tags == ["busybox:1.36", "busybox:latest"]


# oci ----------------------------------------------------------------------------------------


def test_oci_single_image():
    spec = busybox()
    layout, images = parse(oci_archive([spec]))
    assert layout == OCI
    assert len(images) == 1
    image = images[0]
    check_identity(image, spec)
    assert image.tags == ["busybox:1.36", "busybox:latest"]
    assert image.manifest_digest == spec.manifest_digest
    assert image.index_digest is None
    assert image.size == spec.layers_size
    assert image.engine_ids() == [spec.config_digest, spec.manifest_digest]


def test_oci_nested_index_containerd_store():
    spec = busybox()
    layout, images = parse(oci_archive([spec], nested=True, missing_platform=True))
    assert layout == OCI
    assert len(images) == 1  # the arm64 manifest without blobs is not an image of the archive
    image = images[0]
    check_identity(image, spec)
    assert image.manifest_digest == spec.manifest_digest
    assert image.index_digest == spec.index_digest
    assert image.tags == ["busybox:1.36", "busybox:latest"]
    assert image.engine_ids() == [spec.config_digest, spec.manifest_digest, spec.index_digest]


def test_oci_nested_index_without_manifest_json():
    spec = busybox()
    layout, images = parse(oci_archive([spec], nested=True, manifest_json=False, repositories=False))
    assert layout == OCI
    assert [i.tags for i in images] == [["busybox:1.36", "busybox:latest"]]
    assert images[0].index_digest == spec.index_digest
    assert images[0].size == spec.layers_size  # from the manifest's layer descriptors


def test_oci_attestation_manifest_is_not_an_image():
    """Images built by BuildKit carry an attestation manifest (platform unknown/unknown,
    annotated vnd.docker.reference.type=attestation-manifest) in their index; the containerd
    store saves it with the image. It is not an image of the archive."""
    spec = busybox()
    images = parse(oci_archive([spec], nested=True, attestation=True))[1]
    assert [i.config_digest for i in images] == [spec.config_digest]
    assert images[0].os == "linux"


def test_oci_tags_only_in_index_annotations():
    spec = ImageSpec(tags=["busybox:1.36", "localhost:5000/app:dev", "ghcr.io/org/tool:v1"])
    images = parse(oci_archive([spec], manifest_json=False))[1]
    assert images[0].tags == ["busybox:1.36", "ghcr.io/org/tool:v1", "localhost:5000/app:dev"]


def test_oci_untagged_image():
    spec = ImageSpec(tags=[])
    layout, images = parse(oci_archive([spec]))
    assert layout == OCI
    assert images[0].tags == []
    assert images[0].manifest_digest == spec.manifest_digest


def test_oci_several_images():
    first, second = busybox(), app()
    images = parse(oci_archive([second, first], nested=True))[1]
    assert [i.config_digest for i in images] == [first.config_digest, second.config_digest]
    assert images[1].tags == ["registry.example.com:5000/team/app:2"]
    assert images[1].index_digest == second.index_digest
    assert images[0].index_digest == first.index_digest


def test_oci_index_with_null_manifests_falls_back_to_manifest_json():
    # docker save IMAGE@DIGEST on Docker 25.0 wrote "manifests": null (moby/moby#47210)
    spec = busybox()
    members = dict(scan(oci_archive([spec])).members)
    members["index.json"] = json.dumps({"schemaVersion": 2, "manifests": None}).encode()
    layout, images = parse_layout(members, scan(oci_archive([spec])).sizes)
    assert layout == OCI
    check_identity(images[0], spec)
    assert images[0].tags == ["busybox:1.36", "busybox:latest"]
    assert images[0].manifest_digest is None


def test_same_image_same_identity_in_both_layouts():
    legacy = parse(legacy_archive([busybox()]))[1]
    oci = parse(oci_archive([busybox()], nested=True))[1]
    assert legacy[0].config_digest == oci[0].config_digest
    assert legacy[0].fingerprint == oci[0].fingerprint
    assert legacy[0].tags == oci[0].tags
    assert legacy[0].size == oci[0].size


def index_member(*descriptors):
    return json.dumps({"schemaVersion": 2, "manifests": list(descriptors)}).encode()


def oci_members(annotations):
    config = canonical({"os": "linux", "architecture": "amd64", "rootfs": {"diff_ids": []}})
    manifest = canonical({"config": {"digest": digest(config)}, "layers": [{"digest": "sha256:" + "1" * 64, "size": 7}]})
    members = {
        "oci-layout": b"{}",
        "blobs/sha256/" + digest(config)[7:]: config,
        "blobs/sha256/" + digest(manifest)[7:]: manifest,
        "index.json": index_member({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest),
                                    "annotations": annotations}),
    }
    return members


@pytest.mark.parametrize("annotations, tags", [
    ({"io.containerd.image.name": "docker.io/library/busybox:1.36", "org.opencontainers.image.ref.name": "1.36"}, ["busybox:1.36"]),
    ({"io.containerd.image.name": "docker.io/myorg/app:v2"}, ["myorg/app:v2"]),
    ({"io.containerd.image.name": "localhost:5000/app"}, []),  # no tag
    ({"io.containerd.image.name": "docker.io/library/busybox@sha256:" + "2" * 64}, []),  # digest
    ({"org.opencontainers.image.ref.name": "latest"}, []),  # a bare ref name says no repository
    ({}, []),
    (None, []),
])
def test_oci_tag_annotations(annotations, tags):
    layout, images = parse_layout(oci_members(annotations), {})
    assert layout == OCI
    assert images[0].tags == tags
    assert images[0].size == 7


def test_oci_descriptor_without_digest_is_ignored():
    members = oci_members({})
    index = json.loads(members["index.json"])
    index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json"})
    members["index.json"] = json.dumps(index).encode()
    assert len(parse_layout(members, {})[1]) == 1


# errors -------------------------------------------------------------------------------------


def test_not_an_image_archive():
    with pytest.raises(ArchiveError, match="not a Docker image archive"):
        parse_layout({"etc/passwd": b"root"}, {"etc/passwd": 4})
    with pytest.raises(ArchiveError, match="not a Docker image archive"):
        parse_layout({}, {})


def test_index_without_oci_layout_and_without_manifest_json():
    members = oci_members({})
    del members["oci-layout"]
    with pytest.raises(ArchiveError, match="not a Docker image archive"):
        parse_layout(members, {})


def test_index_without_oci_layout_uses_manifest_json():
    spec = busybox()
    members = dict(scan(oci_archive([spec])).members)
    del members["oci-layout"]
    layout, images = parse_layout(members, {})
    assert layout == LEGACY
    assert images[0].config_digest == spec.config_digest


def test_manifest_json_not_json():
    with pytest.raises(ArchiveError, match=r"manifest\.json is not valid JSON"):
        parse_layout({"manifest.json": b"[{"}, {})


def test_manifest_entry_without_config():
    with pytest.raises(ArchiveError, match="without a Config"):
        parse_layout({"manifest.json": json.dumps([{"RepoTags": ["a:1"], "Layers": []}]).encode()}, {})


def test_missing_config():
    manifest = json.dumps([{"Config": HEX + ".json", "RepoTags": ["a:1"], "Layers": []}]).encode()
    with pytest.raises(ArchiveError) as info:
        parse_layout({"manifest.json": manifest}, {})
    assert HEX + ".json is missing" in info.value.msg


def test_config_not_json():
    manifest = json.dumps([{"Config": HEX + ".json", "RepoTags": ["a:1"], "Layers": []}]).encode()
    with pytest.raises(ArchiveError, match="not valid JSON"):
        parse_layout({"manifest.json": manifest, HEX + ".json": b"{not json"}, {})


def test_oci_missing_config_blob():
    members = oci_members({})
    del members[next(n for n in members if n.startswith("blobs/") and b'"os"' in members[n])]
    with pytest.raises(ArchiveError, match="is missing"):
        parse_layout(members, {})


def test_index_json_not_json():
    with pytest.raises(ArchiveError, match=r"index\.json is not valid JSON"):
        parse_layout({"index.json": b"nope", "oci-layout": b"{}"}, {})


@pytest.mark.parametrize("nested", [False, True])
def test_oci_manifest_blob_not_json_is_an_archive_error(nested):
    """A damaged manifest or nested index blob must be reported as a damaged archive, not
    escape as a bare json.JSONDecodeError."""
    spec = busybox()
    members = dict(scan(oci_archive([spec], nested=nested, manifest_json=False)).members)
    damaged = spec.index_digest if nested else spec.manifest_digest
    members["blobs/sha256/" + damaged[7:]] = b"{truncated"
    with pytest.raises(ArchiveError):
        parse_layout(members, {})


# ArchiveImage -------------------------------------------------------------------------------


def test_archive_image_round_trip():
    images = parse(oci_archive([busybox()], nested=True))[1]
    data = images[0].to_dict()
    assert json.loads(json.dumps(data)) == data  # plain JSON types
    assert ArchiveImage.from_dict(data) == images[0]


def test_archive_image_from_dict_tolerates_unknown_and_missing_keys():
    image = ArchiveImage.from_dict({"config_digest": "sha256:" + HEX, "tags": ["a:1"], "engine_id": "sha256:x", "future": 1})
    assert image.config_digest == "sha256:" + HEX
    assert image.tags == ["a:1"]
    assert image.fingerprint is None and image.size == 0 and image.diff_ids == []


def test_engine_ids_skip_unknown_digests():
    image = ArchiveImage("sha256:c", manifest_digest=None, index_digest="sha256:i")
    assert image.engine_ids() == ["sha256:c", "sha256:i"]


def test_default_lists_are_not_shared():
    first, second = ArchiveImage("sha256:a"), ArchiveImage("sha256:b")
    first.tags.append("x:1")
    assert second.tags == []
