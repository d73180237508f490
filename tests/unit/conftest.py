# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make `ansible_collections.airgap.docker` importable for the unit tests.

Once per test session (at import of this conftest, before any test module is collected) a
temporary directory gets the tree `ansible_collections/airgap/docker`, where `docker` is a
symlink to the repository root; that directory goes first on sys.path so that the code under
test is always this checkout, never an installed copy of the collection.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

UNIT_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(UNIT_DIR))


def _make_collection_root():
    root = tempfile.mkdtemp(prefix="airgap-docker-unit-")
    atexit.register(shutil.rmtree, root, True)
    namespace = os.path.join(root, "ansible_collections", "airgap")
    os.makedirs(namespace)
    os.symlink(REPO_ROOT, os.path.join(namespace, "docker"))
    return root


def _install():
    # Drop anything an earlier import may have bound to another copy of the collection.
    for name in list(sys.modules):
        if name == "ansible_collections" or name.startswith("ansible_collections."):
            del sys.modules[name]
    root = _make_collection_root()
    sys.path.insert(0, root)
    # The shared test helpers (archive_factory) live next to this file.
    if UNIT_DIR not in sys.path:
        sys.path.insert(1, UNIT_DIR)
    return root


COLLECTION_ROOT = _install()
