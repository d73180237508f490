"""staging_dir through Ansible, as the migrate role calls it: check, run, check, run; a planted link refused."""

from __future__ import annotations

import os
import stat

from ansible_calls import assert_clean_failure, changed

SUBDIRS = ["incoming/images", "incoming/containers"]


def test_check_run_check_run_and_a_planted_link_is_refused(ansible, tmp_path):
    staging = tmp_path / "staging"
    task = {"airgap.docker.staging_dir": {"path": str(staging), "subdirs": SUBDIRS}}
    results = ansible.run(dict(task, check_mode=True), task, dict(task, check_mode=True, diff=True), task)
    assert changed(results) == [True, True, False, False]
    for path in (staging, staging / "incoming", *(staging / d for d in SUBDIRS)):
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o700 and stat.S_ISDIR(os.lstat(path).st_mode)

    # Another user's link in place of the staging directory: refused, nothing made where it points.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    planted = tmp_path / "planted"
    planted.symlink_to(elsewhere)
    (refused,) = ansible.run({"airgap.docker.staging_dir": {"path": str(planted), "subdirs": SUBDIRS}})
    assert_clean_failure(refused, str(planted), "is a symbolic link")
    assert os.listdir(elsewhere) == [] and os.path.islink(planted)
