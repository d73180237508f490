# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""SSH signatures of a bundle manifest (`ssh-keygen -Y sign` / `-Y verify`, OpenSSH 8.2+).

SSH keys are what operators on both sides of an air gap already have and trust; an
allowed_signers file (see ssh-keygen(1), ALLOWED SIGNERS) names the keys whose bundles a
disconnected site accepts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from ansible_collections.airgap.docker.plugins.module_utils.errors import InvalidInput, SignatureError

# The signature namespace binds a signature to its purpose: a key's signature over a manifest
# cannot be replayed as, say, a git commit signature, and the other way round.
NAMESPACE = "airgap.docker-bundle"
SIGNER_PRINCIPAL = "airgap-docker-packer"


def _ssh_keygen():
    path = shutil.which("ssh-keygen")
    if path is None:
        raise InvalidInput("ssh-keygen (OpenSSH 8.2 or newer) is needed to sign or verify bundles and is not installed.")
    return path


def _run(args, data=None):
    return subprocess.run([_ssh_keygen()] + args, input=data, capture_output=True, check=False)


def _stderr(proc):
    return proc.stderr.decode("utf-8", "replace").strip() or "exit status %d" % proc.returncode


def public_key(key_path):
    """The public key line of a private key file (unencrypted, or with the key in ssh-agent)."""
    if not os.path.isfile(key_path):
        raise InvalidInput("The signing key %s does not exist." % key_path)
    proc = _run(["-y", "-P", "", "-f", key_path])
    if proc.returncode != 0:
        raise InvalidInput("Cannot read the signing key %s: %s." % (key_path, _stderr(proc)))
    return proc.stdout.decode("ascii", "replace").strip()


def sign(key_path, data):
    """The armored SSH signature of `data`."""
    public_key(key_path)
    proc = _run(["-Y", "sign", "-n", NAMESPACE, "-f", key_path, "-P", ""], data)
    if proc.returncode != 0:
        raise SignatureError("Signing the bundle manifest with %s failed: %s." % (key_path, _stderr(proc)))
    return proc.stdout


def signed_by_key(key_path, signature, data):
    """True when `signature` is a valid signature of `data` by the key at key_path."""
    with tempfile.TemporaryDirectory(prefix="airgap-sign-") as scratch:
        allowed = os.path.join(scratch, "allowed_signers")
        with open(allowed, "w") as handle:
            handle.write('%s namespaces="%s" %s\n' % (SIGNER_PRINCIPAL, NAMESPACE, public_key(key_path)))
        try:
            _verify_as(allowed, SIGNER_PRINCIPAL, signature, data, scratch)
        except SignatureError:
            return False
    return True


def verify(allowed_signers, signature, data):
    """The principal of allowed_signers whose key signed `data`; SignatureError otherwise."""
    if not os.path.isfile(allowed_signers):
        raise InvalidInput("The allowed signers file %s does not exist." % allowed_signers)
    with tempfile.TemporaryDirectory(prefix="airgap-verify-") as scratch:
        sig_path = os.path.join(scratch, "manifest.json.sig")
        with open(sig_path, "wb") as handle:
            handle.write(signature)
        proc = _run(["-Y", "find-principals", "-s", sig_path, "-f", allowed_signers])
        principals = proc.stdout.decode("utf-8", "replace").split() if proc.returncode == 0 else []
        if not principals:
            raise SignatureError("The bundle is signed by a key that %s does not list (%s)." % (allowed_signers, _stderr(proc)))
        for principal in principals:
            try:
                _verify_as(allowed_signers, principal, signature, data, scratch)
                return principal
            except SignatureError as exc:
                failure = exc
        raise failure


def _verify_as(allowed_signers, principal, signature, data, scratch):
    sig_path = os.path.join(scratch, "check.sig")
    with open(sig_path, "wb") as handle:
        handle.write(signature)
    proc = _run(["-Y", "verify", "-f", allowed_signers, "-I", principal, "-n", NAMESPACE, "-s", sig_path], data)
    if proc.returncode != 0:
        raise SignatureError("The bundle manifest's signature does not verify for %s: %s." % (principal, _stderr(proc)))
