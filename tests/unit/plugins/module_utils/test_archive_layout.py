# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import gzip
import hashlib
import json
import os

import pytest
from archive_factory import (
    OCI_INDEX,
    OCI_MANIFEST,
    ImageSpec,
    StreamedImage,
    canonical,
    digest,
    layer_tar,
    legacy_archive,
    oci_archive,
    parse,
    parse_with_links,
    rewrite_archive,
    scan,
    tar_bytes,
)

from ansible_collections.airgap.docker.plugins.module_utils import archive_layout, tarscan
from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import (
    LEGACY,
    OCI,
    ArchiveImage,
    may_be_metadata,
    member_present,
    parse_layout,
    resolve_member,
    verify_members,
    wants_member,
)
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.identity import (
    fingerprint_from_config_blob,
)
from ansible_collections.airgap.docker.plugins.module_utils.tarscan import TarScanner

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
    decision = wants_member(name, size)
    legacy_config = name.endswith(".json") and "/" not in name and name not in ("manifest.json", "index.json")
    if legacy_config or (name.startswith("blobs/sha256/") and wanted):
        assert decision is may_be_metadata  # kept when the body can be a JSON object
    else:
        assert decision is wanted


@pytest.mark.parametrize("head, metadata", [
    (b'{"architecture":"amd64"}', True),
    (b'  \n\t{"schemaVersion":2}', True),
    (b"", True),  # nothing seen yet (an empty member)
    (b"   ", True),
    (b"\x1f\x8b\x08\x00", False),  # gzip layer
    (b"\x28\xb5\x2f\xfd", False),  # zstd layer
    (b"etc/\0\0\0", False),  # tar layer
    (b"[1, 2]", False),
    (b'{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document"}', False),
    (b"{weird/" + b"\0" * 250 + b"ustar\x0000" + b"\0" * 200, False),  # a tar whose first name starts with {
])
def test_may_be_metadata(head, metadata):
    assert may_be_metadata(head) is metadata


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


# layers and thin archives -------------------------------------------------------------------


def three_layers(**kwargs):
    kwargs.setdefault("tags", ["app:2"])
    kwargs.setdefault("layers", [layer_tar({"base/%d" % n: b"layer %d\n" % n}) for n in range(3)])
    return ImageSpec(**kwargs)


def build(layout, specs, **kwargs):
    if layout == LEGACY:
        return legacy_archive(specs, **kwargs)
    return oci_archive(specs, **kwargs)


def layer_paths(data):
    """The layer member paths of the single image of a full archive."""
    (image,) = parse(data)[1]
    return image.layers


def test_legacy_layers_are_the_manifest_json_paths():
    spec = three_layers()
    data = legacy_archive([spec])
    manifest = json.loads(scan(data).members["manifest.json"])
    (image,) = parse(data)[1]
    assert image.layers == manifest[0]["Layers"]
    assert len(image.layers) == len(image.diff_ids) == 3
    assert all(path.endswith("/layer.tar") for path in image.layers)
    assert image.omitted_layers == 0
    assert image.required_layers() == []


@pytest.mark.parametrize("manifest_json", [True, False])
def test_oci_layers_are_blob_paths_of_the_layer_descriptors(manifest_json):
    spec = three_layers()
    (image,) = parse(oci_archive([spec], nested=True, manifest_json=manifest_json))[1]
    assert image.layers == ["blobs/sha256/" + digest(layer)[7:] for layer in spec.layers]
    assert image.omitted_layers == 0 and image.required_layers() == []


def test_oci_only_layers_follow_manifest_descriptors_not_diff_ids():
    """The layer paths come from the manifest's descriptors: for a compressed layer the blob
    digest is not the diff ID."""
    config = canonical({"os": "linux", "architecture": "amd64", "rootfs": {"diff_ids": ["sha256:" + "d" * 64]}})
    manifest = canonical({"config": {"digest": digest(config)}, "layers": [{"digest": "sha256:" + "c" * 64, "size": 9}]})
    members = {
        "oci-layout": b"{}",
        "blobs/sha256/" + digest(config)[7:]: config,
        "blobs/sha256/" + digest(manifest)[7:]: manifest,
        "index.json": index_member({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest)}),
    }
    sizes = {name: len(body) for name, body in members.items()}
    sizes["blobs/sha256/" + "c" * 64] = 9
    (image,) = parse_layout(members, sizes)[1]
    assert image.layers == ["blobs/sha256/" + "c" * 64]
    assert image.omitted_layers == 0
    del sizes["blobs/sha256/" + "c" * 64]
    (image,) = parse_layout(members, sizes)[1]
    assert image.omitted_layers == 1
    assert image.required_layers() == ["sha256:" + "d" * 64]


@pytest.mark.parametrize("layout", [LEGACY, OCI])
@pytest.mark.parametrize("omitted", [1, 2, 3])
def test_absent_bottom_layers_make_the_image_thin(layout, omitted):
    spec = three_layers()
    full = build(layout, [spec])
    paths = layer_paths(full)
    (image,) = parse(rewrite_archive(full, drop=set(paths[:omitted])))[1]
    assert image.omitted_layers == omitted
    assert image.required_layers() == spec.diff_ids[:omitted]
    assert image.layers == paths  # the manifest still lists every layer
    assert image.diff_ids == spec.diff_ids
    # the size counts the layers the archive holds
    assert image.size == sum(len(layer) for layer in spec.layers[omitted:])


@pytest.mark.parametrize("layout", [LEGACY, OCI])
@pytest.mark.parametrize("absent, gap", [
    ([1], 2),  # the middle one only
    ([2], 3),  # the top one only
    ([0, 2], 3),  # bottom and top, the middle one held
    ([1, 2], 2),  # top two: not a bottom run
])
def test_absent_layer_above_a_present_one_is_an_error(layout, absent, gap):
    spec = three_layers()
    full = build(layout, [spec])
    paths = layer_paths(full)
    with pytest.raises(ArchiveError) as info:
        parse(rewrite_archive(full, drop={paths[i] for i in absent}))
    assert "lacks layer %d of 3 of app:2" % gap in info.value.msg
    assert "bottom run" in info.value.msg


def test_each_image_of_an_archive_gets_its_own_omitted_count():
    shared = layer_tar({"shared": b"base"})
    first = ImageSpec(tags=["one:1"], layers=[shared, layer_tar({"one": b"1"})], runtime={"Cmd": ["one"]})
    second = ImageSpec(tags=["two:1"], layers=[layer_tar({"two-base": b"2"}), layer_tar({"two": b"2"})], runtime={"Cmd": ["two"]})
    full = oci_archive([first, second])
    drop = {"blobs/sha256/" + digest(shared)[7:], "blobs/sha256/" + digest(second.layers[0])[7:]}
    images = {tuple(i.tags): i for i in parse(rewrite_archive(full, drop=drop))[1]}
    assert images[("one:1",)].omitted_layers == 1
    assert images[("two:1",)].omitted_layers == 1
    assert images[("two:1",)].required_layers() == second.diff_ids[:1]


def test_legacy_layer_behind_a_symlink_is_present():
    """docker save writes a layer it already wrote for another chain as a symlink
    `<id>/layer.tar -> ../<other id>/layer.tar`."""
    spec = three_layers()
    full = legacy_archive([spec])
    paths = layer_paths(full)
    top_id = paths[2].split("/")[0]
    bottom_id = paths[0].split("/")[0]
    linked = rewrite_archive(full, links={paths[2]: ("sym", "../%s/layer.tar" % bottom_id)})
    scanner = scan(linked)
    assert paths[2] not in scanner.sizes and scanner.links[paths[2]] == "../%s/layer.tar" % bottom_id
    (image,) = parse_layout(scanner.members, scanner.sizes, scanner.links)[1]
    assert image.omitted_layers == 0
    assert top_id != bottom_id
    # without the links, the same archive reads as damaged
    with pytest.raises(ArchiveError, match="lacks layer 3 of 3"):
        parse_layout(scanner.members, scanner.sizes)


def test_symlink_to_an_absent_member_counts_as_absent():
    spec = three_layers()
    full = legacy_archive([spec])
    paths = layer_paths(full)
    # the bottom layer is a dangling link: the archive is thin by one layer
    thin = rewrite_archive(full, links={paths[0]: ("sym", "../" + "9" * 64 + "/layer.tar")})
    (image,) = parse_with_links(thin)[1]
    assert image.omitted_layers == 1
    # a dangling link above a present layer is damage
    damaged = rewrite_archive(full, links={paths[1]: ("sym", "../" + "9" * 64 + "/layer.tar")})
    with pytest.raises(ArchiveError, match="lacks layer 2 of 3"):
        parse_with_links(damaged)


def test_legacy_layer_behind_a_hard_link_is_present():
    spec = three_layers()
    full = legacy_archive([spec])
    paths = layer_paths(full)
    linked = rewrite_archive(full, links={paths[2]: ("hard", paths[0])})
    assert scan(linked).links == {paths[2]: "/" + paths[0]}  # a hard link names its target from the root
    (image,) = parse_with_links(linked)[1]
    assert image.omitted_layers == 0


@pytest.mark.parametrize("path, links, resolved", [
    ("a/layer.tar", {}, "a/layer.tar"),
    ("b/layer.tar", {"b/layer.tar": "../a/layer.tar"}, "a/layer.tar"),
    ("b/layer.tar", {"b/layer.tar": "/a/layer.tar"}, "a/layer.tar"),  # absolute: from the archive root
    ("b/layer.tar", {"b/layer.tar": "./other.tar"}, "b/other.tar"),
    ("b/layer.tar", {"b/layer.tar": "other.tar"}, "b/other.tar"),
    ("c/layer.tar", {"c/layer.tar": "../b/layer.tar", "b/layer.tar": "../a/layer.tar"}, "a/layer.tar"),  # a chain
    ("blobs/sha256/x", {"blobs/sha256/x": "y"}, "blobs/sha256/y"),
    ("top", {"top": "../escape"}, "../escape"),
])
def test_resolve_member(path, links, resolved):
    assert resolve_member(path, links) == resolved


def test_resolve_member_stops_on_a_cycle():
    links = {"a/layer.tar": "../b/layer.tar", "b/layer.tar": "../a/layer.tar"}
    assert resolve_member("a/layer.tar", links) in links
    assert not member_present("a/layer.tar", {"c/layer.tar": 1}, links)


@pytest.mark.parametrize("path, sizes, links, present", [
    ("a/layer.tar", {"a/layer.tar": 10}, {}, True),
    ("a/layer.tar", {}, {}, False),
    ("a/layer.tar", {"a/layer.tar": 0}, {}, True),  # an empty member is still a member
    ("b/layer.tar", {"a/layer.tar": 10}, {"b/layer.tar": "../a/layer.tar"}, True),
    ("b/layer.tar", {"a/layer.tar": 10}, {"b/layer.tar": "../z/layer.tar"}, False),
    ("b/layer.tar", {"b/layer.tar": 10}, {"c/layer.tar": "../b/layer.tar"}, True),  # other links do not matter
])
def test_member_present(path, sizes, links, present):
    assert member_present(path, sizes, links) is present


def test_a_cyclic_link_layer_counts_as_absent_without_hanging():
    spec = three_layers()
    full = legacy_archive([spec])
    paths = layer_paths(full)
    first, second = paths[0].split("/")[0], paths[1].split("/")[0]
    cyclic = rewrite_archive(full, links={paths[0]: ("sym", "../%s/layer.tar" % second),
                                          paths[1]: ("sym", "../%s/layer.tar" % first)})
    (image,) = parse_with_links(cyclic)[1]
    assert image.omitted_layers == 2
    # the same cycle above the held bottom layer is damage
    cyclic = rewrite_archive(full, links={paths[1]: ("sym", "../%s/layer.tar" % paths[2].split("/")[0]),
                                          paths[2]: ("sym", "../%s/layer.tar" % second)})
    with pytest.raises(ArchiveError, match="lacks layer 2 of 3"):
        parse_with_links(cyclic)


@pytest.mark.parametrize("omitted, required", [(0, []), (1, ["sha256:a"]), (2, ["sha256:a", "sha256:b"]), (3, ["sha256:a", "sha256:b"])])
def test_required_layers(omitted, required):
    image = ArchiveImage("sha256:c", diff_ids=["sha256:a", "sha256:b"], omitted_layers=omitted)
    assert image.required_layers() == required
    image.required_layers().append("sha256:z")
    assert image.diff_ids == ["sha256:a", "sha256:b"]  # a copy


def test_layers_and_omitted_layers_round_trip_and_default():
    spec = three_layers()
    full = legacy_archive([spec])
    paths = layer_paths(full)
    (image,) = parse(rewrite_archive(full, drop={paths[0]}))[1]
    data = image.to_dict()
    assert data["layers"] == paths and data["omitted_layers"] == 1
    assert ArchiveImage.from_dict(json.loads(json.dumps(data))) == image
    # a sidecar written before thin archives existed: a full archive, layers unknown
    old = ArchiveImage.from_dict({"config_digest": "sha256:" + HEX, "diff_ids": ["sha256:a"]})
    assert old.layers == [] and old.omitted_layers == 0 and old.required_layers() == []
    assert ArchiveImage("sha256:a").layers is not ArchiveImage("sha256:b").layers


def test_full_archive_parsed_without_links_argument_is_not_thin():
    for data in (legacy_archive([three_layers()]), oci_archive([three_layers()], nested=True)):
        scanner = scan(data)
        (image,) = parse_layout(scanner.members, scanner.sizes)[1]
        assert image.omitted_layers == 0


@pytest.mark.parametrize("change", ["fewer", "more"])
def test_layer_count_and_diff_ids_must_agree(change):
    spec = three_layers()
    scanner = scan(legacy_archive([spec]))
    members = dict(scanner.members)
    manifest = json.loads(members["manifest.json"])
    if change == "fewer":
        manifest[0]["Layers"] = manifest[0]["Layers"][:2]
    else:
        manifest[0]["Layers"].append(manifest[0]["Layers"][0])
    members["manifest.json"] = json.dumps(manifest).encode()
    with pytest.raises(ArchiveError, match="lists %d layers for app:2 but its config 3" % len(manifest[0]["Layers"])):
        parse_layout(members, scanner.sizes)


# JSON shapes: one sentence naming the file and the problem ---------------------------------


def shaped_members():
    """The kept members of a one-image OCI archive (nested index, manifest.json), to be bent out of shape."""
    spec = three_layers()
    scanner = scan(oci_archive([spec], nested=True))
    return spec, dict(scanner.members), dict(scanner.sizes)


def replace_json(members, name, change):
    document = json.loads(members[name])
    members[name] = json.dumps(change(document)).encode()


def blob(digest_value):
    return "blobs/sha256/" + digest_value[7:]


def first(document, key):
    return document[key][0]


def set_in(document, path, value):
    """document with the value at path (keys and list positions) set; "DELETE" removes it."""
    target = document
    for key in path[:-1]:
        target = target[key]
    if value == "DELETE":
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


SHAPES = [
    # (document, path, value, fragment of the message)
    ("manifest.json", (), {"Config": "x"}, "manifest.json is malformed (it is not a list)"),
    ("manifest.json", (0,), 7, "entry 1 is not an object"),
    ("manifest.json", (0, "Config"), 5, "entry 1's Config is not a string"),
    ("manifest.json", (0, "Config"), "config.json", "names a config (config.json) that is not named by its digest"),
    ("manifest.json", (0, "RepoTags"), "app:2", "entry 1's RepoTags is not a list"),
    ("manifest.json", (0, "RepoTags"), ["app:2", 3], "entry 1's RepoTags lists something that is not a string"),
    ("manifest.json", (0, "Layers"), {"a": 1}, "entry 1's Layers is not a list"),
    ("manifest.json", (0, "Layers"), [None], "entry 1's Layers lists something that is not a string"),
    ("index.json", (), [], "index.json is malformed (it is not an object)"),
    ("index.json", ("manifests",), {}, "index.json is malformed (manifests is not a list)"),
    ("index.json", ("manifests", 0), "sha256:" + "a" * 64, "descriptor 1 is not an object"),
    ("index.json", ("manifests", 0, "digest"), 12, "descriptor 1's digest is not a string"),
    ("index.json", ("manifests", 0, "digest"), "sha256:../../manifest.json", "descriptor 1's digest 'sha256:../../manifest.json' is not a sha256"),
    ("index.json", ("manifests", 0, "mediaType"), ["x"], "descriptor 1's mediaType is not a string"),
    ("index.json", ("manifests", 0, "annotations"), ["x"], "descriptor 1's annotations is not an object"),
    ("index.json", ("manifests", 0, "annotations", "io.containerd.image.name"), 5, "descriptor 1's annotations are not all strings"),
    ("index.json", ("manifests", 0, "platform"), "linux", "descriptor 1's platform is not an object"),
    ("index.json", ("manifests", 0, "platform"), {"os": 1}, "descriptor 1's platform.os is not a string"),
    ("nested", (), None, None),  # the nested index, checked like index.json (below)
    ("manifest", (), [1], "is malformed (it is not an object)"),
    ("manifest", ("config",), "sha256:" + "a" * 64, "(config is not an object)"),
    ("manifest", ("config", "digest"), "DELETE", "(config has no digest)"),
    ("manifest", ("config", "digest"), 5, "(config.digest is not a string)"),
    ("manifest", ("layers",), {}, "(layers is not a list)"),
    ("manifest", ("layers", 0), "x", "(layer 1 is not an object)"),
    ("manifest", ("layers", 1, "digest"), "DELETE", "(layer 2 has no digest)"),
    ("manifest", ("layers", 1, "digest"), "md5:abc", "(layer 2's digest 'md5:abc' is not a sha256 digest)"),
    ("manifest", ("layers", 0, "size"), "7", "(layer 1's size is not a size in bytes)"),
    ("manifest", ("layers", 0, "size"), -1, "(layer 1's size is not a size in bytes)"),
    ("manifest", ("layers", 0, "size"), True, "(layer 1's size is not a size in bytes)"),
    ("manifest", ("layers", 0, "size"), 1.5, "(layer 1's size is not a size in bytes)"),
    ("config", (), "a string", "is malformed (it is not an object)"),
    ("config", ("rootfs",), [], "(rootfs is not an object)"),
    ("config", ("rootfs", "diff_ids"), "sha256:" + "a" * 64, "(rootfs.diff_ids is not a list)"),
    ("config", ("rootfs", "diff_ids", 1), 7, "(rootfs.diff_ids lists something that is not a string)"),
    ("config", ("rootfs", "diff_ids", 1), "abc", "(rootfs.diff_ids lists 'abc' is not a sha256 digest)"),
    ("config", ("created",), 1700000000, "(created is not a string)"),
    ("config", ("os",), ["linux"], "(os is not a string)"),
    ("config", ("architecture",), {}, "(architecture is not a string)"),
    ("config", ("config",), ["sh"], "(config is not an object)"),
]


@pytest.mark.parametrize("document, path, value, fragment", [case for case in SHAPES if case[0] != "nested"],
                         ids=["%s-%s" % (case[0], "-".join(map(str, case[1])) or "top") for case in SHAPES if case[0] != "nested"])
def test_malformed_json_shapes_are_one_sentence(document, path, value, fragment):
    spec, members, sizes = shaped_members()
    name = {"manifest": blob(spec.manifest_digest), "config": blob(spec.config_digest)}.get(document, document)
    replace_json(members, name, lambda doc: set_in(doc, path, value) if path else value)
    if document not in ("manifest.json", "config"):
        without_manifest_json(members, sizes)  # the index is read for what manifest.json does not say
    with pytest.raises(ArchiveError) as info:
        parse_layout(members, sizes)
    assert fragment in info.value.msg, info.value.msg
    assert "\n" not in info.value.msg
    if document in ("manifest", "config"):
        assert name in info.value.msg  # names the file


def without_manifest_json(members, sizes):
    del members["manifest.json"]
    del sizes["manifest.json"]


def test_malformed_nested_index_is_named():
    spec, members, sizes = shaped_members()
    replace_json(members, blob(spec.index_digest), lambda doc: set_in(doc, ("manifests", 0, "digest"), 5))
    with pytest.raises(ArchiveError) as info:
        parse_layout(members, sizes)
    assert info.value.msg == "The archive's %s is malformed (descriptor 1's digest is not a string)." % blob(spec.index_digest)


def test_null_where_go_allows_it():
    spec, members, sizes = shaped_members()
    replace_json(members, "manifest.json", lambda doc: [dict(doc[0], RepoTags=None)])
    replace_json(members, "index.json", lambda doc: dict(doc, manifests=None))
    (image,) = parse_layout(members, sizes)[1]  # the image comes from manifest.json
    assert image.tags == [] and image.diff_ids == spec.diff_ids


def test_json_null_manifest_json_is_no_images():
    layout, images = parse_layout({"manifest.json": b"null"}, {})
    assert (layout, images) == (LEGACY, [])


# JSON read as Go reads it


def test_struct_fields_match_keys_ignoring_case_and_the_last_wins():
    _spec, members, sizes = shaped_members()
    other = ImageSpec(tags=["other:1"], runtime={"Cmd": ["other"]})
    other_members = scan(oci_archive([other])).members
    members.update({n: b for n, b in other_members.items() if n.startswith("blobs/")})
    entry = json.loads(members["manifest.json"])[0]
    # Go's encoding/json sets Config from "Config", then from "config": the last one counts.
    members["manifest.json"] = ('[{"Config": "%s", "RepoTags": ["app:2"], "Layers": %s, "config": "%s"}]' % (
        entry["Config"], json.dumps(entry["Layers"]), blob(other.config_digest))).encode()
    del members["index.json"], sizes["index.json"]
    with pytest.raises(ArchiveError, match="lists 3 layers for app:2 but its config 1"):
        parse_layout(members, sizes)


def test_folded_keys_in_oci_documents():
    spec, members, sizes = shaped_members()
    manifest = json.loads(members[blob(spec.manifest_digest)])
    # "\u017fize" (long s) and "SIZE" match Go's Size field; keys of maps (annotations) stay exact.
    text = json.dumps({"Config": manifest["config"], "LAYERS": [
        {"Digest": layer["digest"], "\u017fize": 1000} for layer in manifest["layers"]]}).encode()
    members[blob(spec.manifest_digest)] = text
    without_manifest_json(members, sizes)
    (image,) = parse_layout(members, sizes)[1]
    assert image.size == 3000
    assert image.layers == ["blobs/sha256/" + d[7:] for d in spec.diff_ids]


def test_duplicate_keys_last_wins_in_maps():
    _spec, members, sizes = shaped_members()
    (desc,) = json.loads(members["index.json"])["manifests"]
    members["index.json"] = ('{"manifests": [{"mediaType": "%s", "digest": "%s", "annotations": {"io.containerd.image.name": '
                             '"docker.io/library/first:1", "io.containerd.image.name": "docker.io/library/last:2"}}]}'
                             % (desc["mediaType"], desc["digest"])).encode()
    without_manifest_json(members, sizes)
    assert parse_layout(members, sizes)[1][0].tags == ["last:2"]


@pytest.mark.parametrize("text, fragment", [
    (b"[" * 5000 + b"]" * 5000, "nests JSON too deeply"),
    (b'[{"Config": 1' + b"0" * 30 + b'}]', "not valid JSON (a number of more than 19 digits"),
    (b'[{"Config": NaN}]', "not valid JSON (NaN is not JSON"),
    (b'[{"Config": Infinity}]', "not valid JSON"),
    (b"\xef\xbb\xbf[]", "not valid JSON"),
    ('[]'.encode("utf-16"), "not valid JSON"),
])
def test_json_bombs_and_non_json(text, fragment):
    with pytest.raises(ArchiveError) as info:
        parse_layout({"manifest.json": text}, {})
    assert fragment in info.value.msg


def test_json_value_count_is_bounded_before_parsing(monkeypatch):
    monkeypatch.setattr(archive_layout, "MAX_JSON_VALUES", 50)
    calls = []
    monkeypatch.setattr(archive_layout.json, "loads", lambda *a, **k: calls.append(1))
    with pytest.raises(ArchiveError, match=r"manifest\.json has more than 50 JSON values"):
        parse_layout({"manifest.json": b"[" + b"1," * 50 + b"1]"}, {})
    assert calls == []


@pytest.mark.parametrize("text, expected", [
    (b'[1234567890123456789, -1234567890123456789, 0, 1.5]', [1234567890123456789, -1234567890123456789, 0, 1.5]),
    (b'["sha256:000000000000000000000000000000000000000000000000000000000000000a", 7]',
     ["sha256:000000000000000000000000000000000000000000000000000000000000000a", 7]),  # a digit run in a string
])
def test_integers_of_up_to_19_digits_are_read(text, expected):
    parsed = archive_layout._parse_json(text, "x")
    assert parsed == expected and all(type(a) is type(b) for a, b in zip(parsed, expected))


@pytest.mark.parametrize("text", [b"[12345678901234567890]", b'["sha256:00000000000000000000", -12345678901234567890]',
                                  b'{"a": 1' + b"0" * 25 + b"}"])
def test_integers_of_more_than_19_digits_are_refused(text):
    with pytest.raises(ArchiveError, match="a number of more than 19 digits"):
        archive_layout._parse_json(text, "x")


def test_documents_are_decoded_a_piece_at_a_time_as_a_whole_would_be(monkeypatch):
    """Invalid UTF-8 becomes U+FFFD as Go reads it, wherever the pieces are cut."""
    import random

    monkeypatch.setattr(archive_layout, "_DECODE_PIECE", 5)
    rng = random.Random(4)
    alphabet = [b"a", b"\xc3\xa9", b"\xe4\xb8\xad", b"\xf0\x9f\x98\x80", b"\xff", b"\xc3", b"\xf0\x9f", b"\xed\xa0\x80", b"\x80"]
    for _unused in range(3000):
        data = b"".join(rng.choice(alphabet) for _unused in range(rng.randint(0, 16)))
        assert archive_layout._utf8_text(data) == data.decode("utf-8", "replace"), data


def test_a_document_of_four_byte_characters_is_decoded_in_little_more_than_its_own_size():
    """Decoded at once, 4 MiB of emoji would take 21 MB: Python sizes its buffer for four bytes
    a character from the first wide one on."""
    import tracemalloc

    data = b'"' + b"\xf0\x9f\x98\x80" * ((4 << 20) // 4 - 10) + b'"'
    tracemalloc.start()
    try:
        text = archive_layout._utf8_text(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert text == data.decode("utf-8")
    assert peak < 2.5 * len(data)


def test_a_document_too_large_to_keep_is_named():
    with pytest.raises(ArchiveError) as info:
        parse_layout({"oci-layout": b"{}"}, {"index.json": 5 << 20, "oci-layout": 2})
    assert info.value.msg == "The archive's OCI index (index.json) is not a JSON object of at most 4 MiB; refusing it."


def test_invalid_utf8_is_replaced_like_go():
    text = b'[{"Config": "%s", "RepoTags": ["app:\xff"], "Layers": []}]' % (HEX + ".json").encode()
    config = canonical({"rootfs": {"diff_ids": []}})
    members = {"manifest.json": text, HEX + ".json": config}
    assert parse_layout(members, {})[1][0].tags == ["app:\ufffd"]


# nested indexes


def index_blob(*entries, media_type=OCI_INDEX):
    data = canonical({"schemaVersion": 2, "mediaType": media_type, "manifests": list(entries)})
    return digest(data), data


def descriptor(digest_value, media_type=OCI_INDEX, tag=None):
    desc = {"mediaType": media_type, "digest": digest_value, "size": 1}
    if tag:
        desc["annotations"] = {"io.containerd.image.name": "docker.io/library/%s" % tag}
    return desc


def nested_members(levels, fan_out=1):
    """An OCI archive whose index.json reaches its one manifest through `levels` nested indexes,
    each listing the next fan_out times."""
    spec = three_layers()
    members = dict(scan(oci_archive([spec], manifest_json=False)).members)
    target = descriptor(spec.manifest_digest, OCI_MANIFEST)
    for _level in range(levels):
        index_digest, data = index_blob(*[target] * fan_out)
        members[blob(index_digest)] = data
        target = descriptor(index_digest)
    members["index.json"] = index_blob(dict(target, annotations={"io.containerd.image.name": "docker.io/library/app:2"}))[1]
    return spec, members


@pytest.mark.parametrize("levels", [1, 2, 8])
def test_nested_indexes_up_to_the_limit(levels):
    spec, members = nested_members(levels)
    (image,) = parse_layout(members, {})[1]
    assert image.manifest_digest == spec.manifest_digest and image.tags == ["app:2"]


def test_nested_indexes_beyond_the_limit_are_refused_at_once():
    calls = []
    original = archive_layout._parse_json

    def counting(data, name):
        calls.append(name)
        return original(data, name)

    _spec, members = nested_members(22, fan_out=2)  # 2**22 paths down to the manifest
    archive_layout._parse_json = counting
    try:
        with pytest.raises(ArchiveError) as info:
            parse_layout(members, {})
    finally:
        archive_layout._parse_json = original
    assert info.value.msg == "The archive nests image indexes more than 8 deep; refusing it."
    assert len(calls) == 9  # index.json and the 8 indexes it may nest


def test_an_index_listing_itself_is_refused():
    _spec, members = nested_members(0)
    fake = "sha256:" + "5" * 64
    members[blob(fake)] = index_blob(descriptor(fake))[1]  # claims its own digest
    members["index.json"] = index_blob(descriptor(fake))[1]
    with pytest.raises(ArchiveError) as info:
        parse_layout(members, {})
    assert info.value.msg == "The archive's image index %s lists itself; refusing it." % fake


def test_a_cycle_of_indexes_is_refused():
    spec, members = nested_members(0)
    one, two = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    members[blob(one)] = index_blob(descriptor(two))[1]
    members[blob(two)] = index_blob(descriptor(spec.manifest_digest, OCI_MANIFEST), descriptor(one))[1]
    members["index.json"] = index_blob(descriptor(one))[1]
    with pytest.raises(ArchiveError, match="lists itself"):
        parse_layout(members, {})


def test_each_document_is_parsed_once_however_often_it_is_listed(monkeypatch):
    spec, members = nested_members(1)
    (nested,) = [n for n in members if n.startswith("blobs/") and b'"manifests"' in members[n]]
    index = json.loads(members["index.json"])
    index["manifests"] = [dict(index["manifests"][0], annotations={"io.containerd.image.name": "docker.io/library/app:%d" % n})
                          for n in range(2000)]
    members["index.json"] = json.dumps(index).encode()
    calls = []
    original = archive_layout._parse_json
    monkeypatch.setattr(archive_layout, "_parse_json", lambda data, name: calls.append(name) or original(data, name))
    (image,) = parse_layout(members, {})[1]
    assert len(image.tags) == 2000
    assert sorted(calls) == sorted(["index.json", nested, blob(spec.manifest_digest), blob(spec.config_digest)])


def test_references_are_bounded(monkeypatch):
    monkeypatch.setattr(archive_layout, "MAX_REFERENCES", 500)
    _spec, members = nested_members(3, fan_out=10)  # 1,000 ways down to one manifest
    with pytest.raises(ArchiveError, match="list more than 500 images, tags and layers"):
        parse_layout(members, {})


def test_a_manifest_listed_many_times_in_manifest_json_parses_its_config_once(monkeypatch):
    spec = three_layers()
    scanner = scan(legacy_archive([spec]))
    members = dict(scanner.members)
    entry = json.loads(members["manifest.json"])[0]
    members["manifest.json"] = json.dumps([entry] * 3000).encode()
    calls = []
    original = archive_layout._parse_json
    monkeypatch.setattr(archive_layout, "_parse_json", lambda data, name: calls.append(name) or original(data, name))
    (image,) = parse_layout(members, scanner.sizes)[1]
    assert len(calls) == 2 and image.tags == ["app:2"]


def test_manifest_json_paths_are_member_names():
    spec = three_layers()
    scanner = scan(legacy_archive([spec]))
    members = dict(scanner.members)
    entry = json.loads(members["manifest.json"])[0]
    entry["Config"] = "./" + entry["Config"]
    entry["Layers"] = ["/" + path for path in entry["Layers"]]
    members["manifest.json"] = json.dumps([entry]).encode()
    (image,) = parse_layout(members, scanner.sizes)[1]
    assert image.omitted_layers == 0 and image.layers == json.loads(scanner.members["manifest.json"])[0]["Layers"]


# metadata is what is referenced, not what is small


@pytest.mark.parametrize("layout", [LEGACY, OCI])
def test_an_image_of_500_small_layers(layout):
    spec = ImageSpec(tags=["many:1"], layers=[layer_tar({"f%d" % n: b"%d" % n}) for n in range(500)])
    scanner = TarScanner(wants_member, digests=True)
    scanner.feed(build(layout, [spec]))
    scanner.finish()
    assert not any(name.endswith("layer.tar") or name[13:] in {d[7:] for d in spec.diff_ids} for name in scanner.members)
    found_layout, (image,) = parse_layout(scanner.members, scanner.sizes, scanner.links)
    assert found_layout == layout and len(image.layers) == 500 and image.omitted_layers == 0
    assert verify_members(found_layout, [image], scanner.digests, scanner.heads, scanner.sizes, scanner.links) >= spec.layers_size


@pytest.mark.parametrize("layout", [LEGACY, OCI])
def test_an_image_of_40_layers_of_3_4_mib(layout):
    """Each layer is under the 4 MiB that once made any blob metadata: 136 MiB of them were
    counted against the 128 MiB metadata cap, and the archive was refused."""
    image_source = StreamedImage(40, int(3.4 * (1 << 20)))
    scanner = TarScanner(wants_member, digests=True)
    for chunk in image_source.chunks(layout):
        scanner.feed(chunk)
    scanner.finish()
    assert scanner._kept_total < 64 << 10  # configs and manifests only
    found_layout, (image,) = parse_layout(scanner.members, scanner.sizes, scanner.links)
    assert found_layout == layout and image.diff_ids == image_source.diff_ids
    verified = verify_members(found_layout, [image], scanner.digests, scanner.heads, scanner.sizes, scanner.links)
    assert verified >= 40 * 3.4 * (1 << 20)


def test_the_metadata_of_300_images_is_kept_within_the_cap():
    """MAX_KEPT_TOTAL holds the configs, manifests and indexes of hundreds of images: 300 images
    on the containerd store, each with a config of ~8 KiB (what a few dozen layers of history
    make), take under half of it."""
    history = ["ENV LINE_%03d=%s" % (n, "v" * 180) for n in range(40)]
    specs = [ImageSpec(tags=["app%d:1" % n], runtime={"Cmd": ["sh"], "Env": history, "Labels": {"n": str(n)}})
             for n in range(300)]
    scanner = scan(oci_archive(specs, nested=True))
    assert 2 << 20 < scanner._kept_total < tarscan.MAX_KEPT_TOTAL // 2
    layout, images = parse_layout(scanner.members, scanner.sizes, scanner.links)
    assert layout == OCI and sorted(tag for image in images for tag in image.tags) == sorted("app%d:1" % n for n in range(300))


def test_a_large_sbom_attestation_is_not_kept():
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "predicate": "x" * (3 << 20)}).encode()
    data = tar_bytes([("blobs/sha256/" + hashlib.sha256(statement).hexdigest(), statement)])
    scanner = scan(data)
    assert scanner.members == {} and scanner._kept_total == 0


# verify_members


def scanned(data):
    scanner = TarScanner(wants_member, digests=True)
    scanner.feed(data)
    scanner.finish()
    layout, images = parse_layout(scanner.members, scanner.sizes, scanner.links)
    return scanner, layout, images


def verify(scanner, layout, images):
    return verify_members(layout, images, scanner.digests, scanner.heads, scanner.sizes, scanner.links)


@pytest.mark.parametrize("layout", [LEGACY, OCI])
def test_verify_a_genuine_archive(layout):
    spec = three_layers()
    scanner, found, images = scanned(build(layout, [spec]))
    verified = verify(scanner, found, images)
    config = len(spec.config_bytes)
    if layout == OCI:
        blobs = sum(size for name, size in scanner.sizes.items() if name.startswith("blobs/"))
        assert verified == blobs == spec.layers_size + config + len(spec.manifest_bytes)
    else:
        assert verified == spec.layers_size + config


def test_verify_nested_index_archive():
    spec = three_layers()
    scanner, found, images = scanned(oci_archive([spec], nested=True, attestation=True))
    assert verify(scanner, found, images) == sum(size for name, size in scanner.sizes.items() if name.startswith("blobs/"))


def flip_byte(data, inner):
    """data with one byte of the member body `inner` (unique bytes) changed."""
    at = data.index(inner) + len(inner) // 2
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]


@pytest.mark.parametrize("layout", [LEGACY, OCI])
def test_verify_refuses_a_damaged_layer(layout):
    spec = three_layers()
    data = flip_byte(build(layout, [spec]), b"layer 2\n")
    scanner, found, images = scanned(data)
    with pytest.raises(ArchiveError) as info:
        verify(scanner, found, images)
    if layout == OCI:
        assert "blobs/sha256/%s does not match its name" % spec.diff_ids[2][7:] in info.value.msg
    else:
        assert "layer 3 of 3 of app:2" in info.value.msg and "does not match the diff ID" in info.value.msg


@pytest.mark.parametrize("layout", [LEGACY, OCI])
def test_verify_refuses_a_damaged_config(layout):
    spec = three_layers()
    data = build(layout, [spec])
    at = data.index(b'"os":"linux"') + 7
    damaged = data[:at] + b"L" + data[at + 1:]  # still JSON, another config
    scanner, found, images = scanned(damaged)
    with pytest.raises(ArchiveError, match="does not match its name"):
        verify(scanner, found, images)


def test_verify_refuses_an_unreferenced_damaged_blob():
    spec = three_layers()
    stray = b"stray blob"
    data = oci_archive([spec], extra_blobs={"sha256:" + "0" * 64: stray})
    scanner, found, images = scanned(data)
    with pytest.raises(ArchiveError, match=r"blobs/sha256/0{64} does not match its name"):
        verify(scanner, found, images)


def test_verify_accepts_a_compressed_layer_named_by_its_digest():
    """An OCI blob of a compressed layer does not hash to the diff ID: its name is checked, and
    the engine checks the diff ID of what it unpacks."""
    spec = three_layers()
    scanner, found, images = scanned(oci_archive([spec]))
    (image,) = images
    compressed = gzip.compress(spec.layers[1])
    name = "blobs/sha256/" + hashlib.sha256(compressed).hexdigest()
    image.layers[1] = name
    digests = dict(scanner.digests, **{name: "sha256:" + hashlib.sha256(compressed).hexdigest()})
    sizes = dict(scanner.sizes, **{name: len(compressed)})
    heads = dict(scanner.heads, **{name: compressed[:4]})
    assert verify_members(found, images, digests, heads, sizes, {}) > 0
    # a plain tar under a name that is not its diff ID is refused
    heads[name] = spec.layers[1][:4]
    with pytest.raises(ArchiveError, match="layer 2 of 3 of app:2"):
        verify_members(found, images, digests, heads, sizes, {})


def test_verify_skips_the_layers_a_thin_archive_leaves_out():
    spec = three_layers()
    full = legacy_archive([spec])
    paths = layer_paths(full)
    scanner, found, images = scanned(rewrite_archive(full, drop={paths[0]}))
    assert images[0].omitted_layers == 1
    assert verify(scanner, found, images) == sum(len(layer) for layer in spec.layers[1:]) + len(spec.config_bytes)


def test_verify_follows_links_to_layers():
    spec = three_layers(layers=[layer_tar({"same": b"1"})] * 2)
    full = legacy_archive([spec])
    paths = layer_paths(full)
    linked = rewrite_archive(full, links={paths[1]: ("sym", "../%s" % paths[0])})
    scanner, found, images = scanned(linked)
    assert verify(scanner, found, images) == len(spec.layers[0]) + len(spec.config_bytes)


def test_verify_refuses_a_layer_count_the_config_does_not_cover():
    image = ArchiveImage("sha256:" + "c" * 64, tags=["x:1"], layers=["a/layer.tar"], diff_ids=[])
    with pytest.raises(ArchiveError, match="lists no diff ID for layer 1 of 1 of x:1"):
        verify_members(LEGACY, [image], {"a/layer.tar": "sha256:" + "d" * 64}, {}, {"a/layer.tar": 1}, {})
    with pytest.raises(ArchiveError, match="lacks layer 1 of 1 of x:1"):
        verify_members(LEGACY, [image], {}, {}, {}, {})


def test_verify_member_digests_never_trusts_names_alone():
    name = HEX + ".json"
    with pytest.raises(ArchiveError, match="%s does not match its name" % name):
        verify_members(LEGACY, [], {name: "sha256:" + "0" * 64}, {}, {name: 5}, {})
    assert verify_members(LEGACY, [], {"manifest.json": "sha256:" + "0" * 64, "repositories": "sha256:1"}, {}, {}, {}) == 0


def test_resolve_member_gives_up_on_long_chains():
    links = {"l%d" % n: "l%d" % (n + 1) for n in range(10000)}
    assert resolve_member("l0", links) == "l255"
