# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ansible_collections.airgap.docker.plugins.module_utils import signing
from ansible_collections.airgap.docker.plugins.module_utils.errors import InvalidInput, SignatureError


def make_key(directory, name):
    path = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return str(path)


@pytest.fixture
def keys(tmp_path):
    return {name: make_key(tmp_path, name) for name in ("release", "stranger")}


def allowed(tmp_path, keys, *names):
    path = tmp_path / "allowed_signers"
    path.write_text("".join('%s@example.com namespaces="%s" %s\n' % (n, signing.NAMESPACE, Path(keys[n] + ".pub").read_text().strip())
                            for n in names))
    return str(path)


def test_sign_and_verify_names_the_principal(tmp_path, keys):
    signature = signing.sign(keys["release"], b"manifest")
    assert signing.verify(allowed(tmp_path, keys, "stranger", "release"), signature, b"manifest") == "release@example.com"


def test_ed25519_signatures_are_reproducible(keys):
    assert signing.sign(keys["release"], b"m") == signing.sign(keys["release"], b"m")


def test_changed_manifest_fails(tmp_path, keys):
    signature = signing.sign(keys["release"], b"manifest")
    with pytest.raises(SignatureError, match="does not verify"):
        signing.verify(allowed(tmp_path, keys, "release"), signature, b"manifest!")


def test_key_not_in_allowed_signers_fails(tmp_path, keys):
    signature = signing.sign(keys["stranger"], b"manifest")
    with pytest.raises(SignatureError, match="does not list"):
        signing.verify(allowed(tmp_path, keys, "release"), signature, b"manifest")


def test_garbage_signature_fails(tmp_path, keys):
    with pytest.raises(SignatureError):
        signing.verify(allowed(tmp_path, keys, "release"), b"not a signature", b"manifest")


def test_signed_by_key(keys):
    signature = signing.sign(keys["release"], b"m")
    assert signing.signed_by_key(keys["release"], signature, b"m")
    assert not signing.signed_by_key(keys["stranger"], signature, b"m")
    assert not signing.signed_by_key(keys["release"], signature, b"other")


def test_missing_or_encrypted_key_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        signing.sign(str(tmp_path / "nope"), b"m")
    path = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(path)], check=True)
    with pytest.raises(InvalidInput, match="Cannot read the signing key"):
        signing.sign(str(path), b"m")


def test_missing_allowed_signers_file(tmp_path, keys):
    with pytest.raises(InvalidInput, match="does not exist"):
        signing.verify(str(tmp_path / "none"), signing.sign(keys["release"], b"m"), b"m")
