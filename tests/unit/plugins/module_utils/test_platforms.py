# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.airgap.docker.plugins.module_utils.platforms import container_platform, engine_platform


def test_container_platform_is_its_images():
    image = {"Os": "linux", "Architecture": "arm", "Variant": "v7"}
    assert container_platform(image, {"Os": "windows", "Arch": "amd64"}) == {"os": "linux", "architecture": "arm",
                                                                             "variant": "v7"}


def test_container_platform_falls_back_to_the_engine_then_linux_amd64():
    assert container_platform(None, {"Os": "linux", "Arch": "arm64"}) == {"os": "linux", "architecture": "arm64",
                                                                          "variant": None}
    assert container_platform({}, {}) == {"os": "linux", "architecture": "amd64", "variant": None}


def test_engine_platform():
    assert engine_platform({"Os": "linux", "Arch": "s390x"}) == {"os": "linux", "architecture": "s390x"}
    assert engine_platform({}) == {"os": "linux", "architecture": "amd64"}
