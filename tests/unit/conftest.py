# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The unit tests import `ansible_collections.airgap.docker` from this checkout.

pytest-ansible does that when pytest starts in the checkout's root (where galaxy.yml is): it
links the checkout as collections/ansible_collections/airgap/docker (symlinks, nothing copied)
and puts that first for Ansible's collection loader and on sys.path. This file only checks that
it happened, and makes the shared test helpers (archive_factory) importable.
"""

from __future__ import annotations

import os
import sys

import pytest

UNIT_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(UNIT_DIR))

if UNIT_DIR not in sys.path:
    sys.path.insert(0, UNIT_DIR)


def pytest_sessionstart(session):
    from ansible_collections.airgap.docker.plugins.module_utils import errors  # pylint: disable=import-outside-toplevel

    where = os.path.realpath(errors.__file__)
    if not where.startswith(os.path.realpath(REPO_ROOT) + os.sep):
        raise pytest.UsageError("The unit tests must import this checkout (%s), not %s: run pytest from the checkout's root, "
                                "where pytest-ansible finds galaxy.yml." % (REPO_ROOT, where))
