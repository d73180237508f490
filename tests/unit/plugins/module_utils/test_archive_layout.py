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
    parse_with_links,
    rewrite_archive,
    scan,
)

from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import (
    LEGACY,
    OCI,
    ArchiveImage,
    member_present,
    parse_layout,
    resolve_member,
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
