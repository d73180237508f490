# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import io
import json
import tarfile

import pytest

from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.podman_names import (
    docker_archive_view,
    familiar_archive_names,
    familiar_name,
    familiar_names,
    is_podman,
    podman_reference,
)

PODMAN_VERSION = {"Components": [{"Name": "Podman Engine", "Version": "4.3.1"}], "Version": "4.3.1"}
DOCKER_VERSION = {"Components": [{"Name": "Engine", "Version": "26.1.5"}, {"Name": "containerd"}], "Version": "26.1.5"}


def test_podman_is_told_from_docker_by_its_components():
    assert is_podman(PODMAN_VERSION)
    assert not is_podman(DOCKER_VERSION)
    assert not is_podman({})


@pytest.mark.parametrize("stored, familiar", [
    ("localhost/steer/app:1", "steer/app:1"),
    ("localhost/plain:2", "plain:2"),
    ("docker.io/library/busybox:1.36", "busybox:1.36"),
    ("docker.io/steer/app:1", "steer/app:1"),
    ("quay.io/org/app:3", "quay.io/org/app:3"),
    ("localhost:5000/app:1", "localhost:5000/app:1"),
    ("<none>:<none>", "<none>:<none>"),
])
def test_stored_names_read_as_docker_prints_them(stored, familiar):
    assert familiar_name(stored) == familiar


def test_names_that_collapse_to_one_are_listed_once():
    assert familiar_names(["localhost/app:1", "docker.io/library/app:1", "quay.io/x/app:1"]) == ["app:1", "quay.io/x/app:1"]
    assert familiar_names(None) == []


@pytest.mark.parametrize("familiar, tagged", [
    ("steer/app:1", "localhost/steer/app:1"),
    ("plain:2", "localhost/plain:2"),
    ("quay.io/org/app:3", "quay.io/org/app:3"),
    ("localhost:5000/app:1", "localhost:5000/app:1"),
    ("localhost/app:1", "localhost/app:1"),
])
def test_registry_less_names_are_tagged_where_podman_loads_them(familiar, tagged):
    assert podman_reference(familiar) == tagged


def _member(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def podman_save(manifest, repositories, layer=b"L" * 3000, fmt=tarfile.USTAR_FORMAT):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        _member(tar, "aaaa.tar", layer)
        link = tarfile.TarInfo("bbbb/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../aaaa.tar"
        tar.addfile(link)
        _member(tar, "manifest.json", json.dumps(manifest).encode())
        _member(tar, "repositories", json.dumps(repositories).encode())
    return out.getvalue()


def rewritten(data, block=777):
    return b"".join(familiar_archive_names(data[i:i + block] for i in range(0, len(data), block)))


def members(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else m.linkname) for m in tar.getmembers()}


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
@pytest.mark.parametrize("block", [1, 512, 777, 1 << 20])
def test_a_save_gets_familiar_names_and_keeps_every_other_byte(fmt, block):
    manifest = [{"Config": "c.json", "RepoTags": ["localhost/steer/app:1", "docker.io/library/plain:2"], "Layers": ["aaaa.tar"]}]
    repositories = {"localhost/steer/app": {"1": "bbbb"}, "docker.io/library/plain": {"2": "bbbb"}}
    data = podman_save(manifest, repositories, fmt=fmt)
    out = members(rewritten(data, block))
    assert json.loads(out["manifest.json"])[0]["RepoTags"] == ["steer/app:1", "plain:2"]
    assert json.loads(out["repositories"]) == {"steer/app": {"1": "bbbb"}, "plain": {"2": "bbbb"}}
    assert out["aaaa.tar"] == b"L" * 3000
    assert out["bbbb/layer.tar"] == "../aaaa.tar"
    assert len(rewritten(data, block)) % 512 == 0


def test_a_save_with_nothing_to_rename_keeps_its_layers_byte_for_byte():
    data = podman_save([{"Config": "c.json", "RepoTags": None, "Layers": ["aaaa.tar"]}], {})
    out = rewritten(data)
    assert out[:4096] == data[:4096]
    assert json.loads(members(out)["manifest.json"])[0]["RepoTags"] is None


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[:2000], "ended in the middle of a member"),
    (lambda data: data[:1024], "ended in the middle of a member"),
    (lambda data: data[:len(data) - 10240], "ended before its end-of-archive marker"),
])
def test_a_cut_save_is_refused(damage, message):
    data = podman_save([{"Config": "c.json", "RepoTags": ["localhost/a:1"], "Layers": ["aaaa.tar"]}], {})
    with pytest.raises(ArchiveError, match=message):
        rewritten(damage(data))


def test_an_unreadable_manifest_is_refused_in_one_sentence():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _member(tar, "manifest.json", b"{not json")
    with pytest.raises(ArchiveError, match=r"unreadable manifest\.json"):
        rewritten(out.getvalue())


def oci_save(with_manifest=True):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _member(tar, "blobs/sha256/aaaa", b"L" * 3000)
        _member(tar, "index.json", b'{"schemaVersion":2,"manifests":[]}')
        if with_manifest:
            _member(tar, "manifest.json", b'[{"Config":"blobs/sha256/c","RepoTags":["a:1"],"Layers":["blobs/sha256/aaaa"]}]')
        _member(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    return out.getvalue()


def viewed(data, complete, block=700):
    return b"".join(docker_archive_view((data[i:i + block] for i in range(0, len(data), block)), lambda: complete))


def test_podman_gets_the_docker_view_of_a_full_archive():
    out = members(viewed(oci_save(), complete=True))
    assert sorted(out) == ["blobs/sha256/aaaa", "manifest.json"]
    assert out["blobs/sha256/aaaa"] == b"L" * 3000


@pytest.mark.parametrize("data, complete", [(oci_save(), False), (oci_save(with_manifest=False), True)])
def test_a_thin_or_index_only_archive_keeps_its_index(data, complete):
    out = members(viewed(data, complete))
    assert sorted(out) == sorted(members(data))
    assert out["index.json"] == members(data)["index.json"]
