# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the engine's answer to a load means: the message stream and the platform check."""

from __future__ import annotations

import pytest

from ansible_collections.airgap.docker.plugins.module_utils.archive_layout import ArchiveImage
from ansible_collections.airgap.docker.plugins.module_utils.engine import _json_messages, load_errors
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.image_transfer import check_platform_held

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
