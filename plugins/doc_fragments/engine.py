# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Connection to the Docker engine, shared by every module of the collection.
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - Address of the Docker engine, for example C(unix:///var/run/docker.sock) or C(tcp://10.0.0.5:2376).
      - When not set, the E(DOCKER_HOST) environment variable is used, then the default socket.
    type: str
    default: unix:///var/run/docker.sock
    aliases: [docker_url]
  tls:
    description:
      - Talk to the engine over TLS without verifying its certificate. Prefer O(validate_certs).
      - When not set, E(DOCKER_TLS) is used.
    type: bool
    default: false
  validate_certs:
    description:
      - Talk to the engine over TLS and verify its certificate against O(ca_path).
      - When not set, E(DOCKER_TLS_VERIFY) is used.
    type: bool
    default: false
    aliases: [tls_verify]
  ca_path:
    description:
      - CA certificate that signed the engine's certificate.
      - Defaults to C(ca.pem) in the directory named by E(DOCKER_CERT_PATH) when that is set.
    type: path
    aliases: [ca_cert, tls_ca_cert]
  client_cert:
    description:
      - Client certificate presented to the engine; needs O(client_key).
      - Defaults to C(cert.pem) in the directory named by E(DOCKER_CERT_PATH) when that is set.
    type: path
    aliases: [tls_client_cert, cert_path]
  client_key:
    description:
      - Private key of O(client_cert).
      - Defaults to C(key.pem) in the directory named by E(DOCKER_CERT_PATH) when that is set.
    type: path
    aliases: [tls_client_key, key_path]
  api_version:
    description:
      - Docker API version to speak, for example C(1.41). The default negotiates the engine's version.
      - When not set, E(DOCKER_API_VERSION) is used.
    type: str
    default: auto
    aliases: [docker_api_version]
  timeout:
    description:
      - Seconds to wait for the engine to answer a single read.
      - The default waits as long as the engine needs, since saving or loading gigabytes can take
        minutes between two answers; set it only to detect a hung engine.
      - When not set, E(DOCKER_TIMEOUT) is used.
    type: int
requirements:
  - Docker SDK for Python >= 7.0 (C(pip install docker)) on the managed host.
notes:
  - The modules talk to the engine's API directly; the C(docker) command is not needed on the managed host.
"""
