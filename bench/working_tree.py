"""The collection as this working tree has it, importable without installing it: for the profiling
scripts, which measure the code as it is being changed."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def import_working_tree():
    """Put a collections path whose airgap.docker is this working tree first on sys.path."""
    root = Path(tempfile.mkdtemp(prefix="airgap-working-tree-"))
    (root / "ansible_collections/airgap").mkdir(parents=True)
    (root / "ansible_collections/airgap/docker").symlink_to(REPO)
    sys.path.insert(0, str(root))
