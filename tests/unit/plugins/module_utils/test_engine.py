# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the engine's answer to a load means: the message stream and the platform check."""

from __future__ import annotations

import http.client

import pytest
import urllib3.exceptions

from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import ArchiveImage
from ansible_collections.airgap.docker.plugins.module_utils.engine import EngineClient, _json_messages, load_errors
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, EngineError, InvalidInput
from ansible_collections.airgap.docker.plugins.module_utils.image_transfer import check_platform_held
from ansible_collections.airgap.docker.plugins.module_utils.streaming import CHUNK

# Docker 28.5 (containerd 2.1 image store), an archive whose top layer blob is missing: HTTP 200.
UNPACK_ANSWER = (
    b'{"stream":"Loaded image: airgap-probe/broken:1\\n"}\r\n'
    b'{"stream":"Error unpacking image airgap-probe/broken:1: apply layer error for \\"docker.io/airgap-probe/broken:1\\": '
    b'failed to extract layer sha256:d034: NotFound: content digest sha256:d034: not found\\n"}\r\n'
)


def messages(*blocks):
    return _json_messages(iter(blocks))


def test_a_failed_unpack_is_an_error_even_with_a_success_status():
    errors = load_errors(messages(UNPACK_ANSWER[:70], UNPACK_ANSWER[70:]))
    assert len(errors) == 1
    assert errors[0].startswith("Error unpacking image airgap-probe/broken:1: apply layer error")
    assert "\n" not in errors[0] and errors[0].endswith("not found")


def test_a_clean_load_has_no_errors():
    assert load_errors(messages(b'{"stream":"Loaded image: a/b:1\\n"}\n{"stream":"Loaded image ID: sha256:aa\\n"}')) == []


def test_error_messages_are_errors():
    answer = b'{"errorDetail":{"message":"open /x/blobs/json: no such file"},"error":"open /x/blobs/json: no such file"}'
    assert load_errors(messages(answer)) == ["open /x/blobs/json: no such file"]
    assert load_errors([{"errorDetail": {"message": "only the detail.\n"}}]) == ["only the detail"]


def test_unpacking_mentioned_later_in_a_line_is_not_an_error():
    assert load_errors([{"stream": "Loaded image: error-unpacking-image:1\n"}]) == []


def image(tags, os_name, architecture, index="sha256:1"):
    return ArchiveImage("sha256:c-" + architecture, tags=tags, index_digest=index, os=os_name, architecture=architecture)


TWO_PLATFORMS = [image(["a/b:1"], "linux", "amd64"), image(["a/b:1"], "linux", "arm64")]


@pytest.mark.parametrize("platform", [None, "", "linux/amd64", "linux/arm64", "linux/arm64/v8"])
def test_a_held_platform_passes(platform):
    check_platform_held(TWO_PLATFORMS, platform)


def test_a_platform_the_archive_lacks_is_refused_naming_the_images():
    images = TWO_PLATFORMS + [image([], "linux", "amd64", index="sha256:2")]
    with pytest.raises(ArchiveError) as caught:
        check_platform_held(images, "linux/s390x")
    assert caught.value.msg == "The archive holds no linux/s390x image of a/b:1, sha256:2"


def test_every_tag_must_have_the_platform():
    images = TWO_PLATFORMS + [image(["c/d:1"], "linux", "amd64", index="sha256:2")]
    with pytest.raises(ArchiveError, match=r"no linux/arm64 image of c/d:1$"):
        check_platform_held(images, "linux/arm64")


class FakeAPI:
    """The few Docker SDK calls EngineClient makes, answering as Podman 4.3 or Docker 26 does."""

    def __init__(self, podman):
        self.podman, self.tagged = podman, []
        self._version = "1.41" if podman else "1.45"

    def version(self):
        name = "Podman Engine" if self.podman else "Engine"
        return {"Version": "4.3.1", "Components": [{"Name": name}], "Os": "linux", "Arch": "amd64"}

    def info(self):
        return {"Driver": "overlay", "DriverStatus": [["Backing Filesystem", "extfs"]]}

    def inspect_image(self, ref):
        return {"Id": "sha256:" + "a" * 64, "RepoTags": ["localhost/steer/app:1", "docker.io/library/app:1", "quay.io/x/y:2"]}

    def images(self, all=False):
        return [self.inspect_image("x")]

    def tag(self, image, repository, tag, force=False):
        self.tagged.append("%s:%s" % (repository, tag))


def engine_client(podman):
    client = EngineClient.__new__(EngineClient)
    client.host, client.api, client._info, client._version = "unix:///test.sock", FakeAPI(podman), None, None
    return client


def test_on_podman_names_read_and_tag_as_on_docker():
    client = engine_client(podman=True)
    assert client.inspect_image("steer/app:1")["RepoTags"] == ["steer/app:1", "app:1", "quay.io/x/y:2"]
    assert client.list_images()[0]["RepoTags"] == ["steer/app:1", "app:1", "quay.io/x/y:2"]
    client.tag("sha256:aa", "steer/app:2")
    client.tag("sha256:aa", "quay.io/x/y:3")
    assert client.api.tagged == ["localhost/steer/app:2", "quay.io/x/y:3"]
    assert client.facts()["engine"] == "podman" and client.facts()["storage"] == "classic"
    with pytest.raises(InvalidInput, match=r"Podman engine at unix:///test\.sock speaks API 1\.41"):
        client.check_platform_support("linux/amd64")


def test_on_docker_names_and_facts_are_left_as_they_are():
    client = engine_client(podman=False)
    assert client.inspect_image("steer/app:1")["RepoTags"][0] == "localhost/steer/app:1"
    client.tag("sha256:aa", "steer/app:2")
    assert client.api.tagged == ["steer/app:2"]
    assert "engine" not in client.facts()


class StreamedBody:
    """A streamed response's raw body: its blocks, then optionally an error, as urllib3 raises it."""

    def __init__(self, blocks, error=None):
        self.blocks, self.error, self.sizes, self.closed = list(blocks), error, [], False

    def read(self, size, decode_content=True):
        self.sizes.append(size)
        if self.blocks:
            return self.blocks.pop(0)
        if self.error is not None:
            raise self.error
        return b""


class StreamingAPI(FakeAPI):
    def __init__(self, body):
        super().__init__(podman=False)
        self.body = body
        self.raw, self.closed = body, False

    def _url(self, template, *args):
        return template.format(*args)

    def _get(self, url, params=None, stream=False):
        self.request = (url, params, stream)
        return self

    def _raise_for_status(self, response):
        pass

    def close(self):
        self.closed = True


def streaming_client(body):
    client = engine_client(podman=False)
    client.api = StreamingAPI(body)
    client._version = {"Components": [{"Name": "Engine"}]}
    return client


def test_a_save_is_read_from_the_raw_body_in_blocks_of_the_stream_size():
    """Not iter_content, which hands each HTTP chunk of dockerd's (32 KiB) on as a block."""
    body = StreamedBody([b"a" * CHUNK, b"b" * 100])
    client = streaming_client(body)
    assert b"".join(client.save_stream(["app:1"])) == b"a" * CHUNK + b"b" * 100
    assert set(body.sizes) == {CHUNK} and client.api.closed
    assert client.api.request == ("/images/get", {"names": ["app:1"]}, True)


@pytest.mark.parametrize("error", [
    urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead(12 bytes read, 20 more expected)"),
    http.client.IncompleteRead(b"x", 20),
    ConnectionResetError(104, "Connection reset by peer"),
])
def test_a_save_cut_off_by_the_engine_fails_with_one_sentence(error):
    client = streaming_client(StreamedBody([b"a" * 10], error))
    with pytest.raises(EngineError) as caught:
        b"".join(client.save_stream(["app:1"]))
    assert caught.value.msg.startswith("The connection to the Docker engine at unix:///test.sock failed while saving app:1: ")
    assert client.api.closed
