# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""staging_dir: one pass over a staging tree, honest in check mode, never following a link."""

from __future__ import annotations

import os
import stat

import pytest
from module_fakes import Failed, run_module

from ansible_collections.airgap.docker.plugins.module_utils import staging_dirs
from ansible_collections.airgap.docker.plugins.modules import staging_dir

SUBDIRS = ["incoming/images", "incoming/containers"]


def tree(root):
    """Each directory under root (root included) with its mode."""
    found = {}
    for path, _dirs, _files in os.walk(root):
        found[os.path.relpath(path, root)] = "%04o" % stat.S_IMODE(os.lstat(path).st_mode)
    return found


def run(monkeypatch, path, check_mode=False, diff=False, **params):
    return run_module(monkeypatch, staging_dir, dict({"path": str(path), "subdirs": SUBDIRS}, **params), check_mode=check_mode, diff=diff)


def test_check_run_check_run(monkeypatch, tmp_path):
    staging = tmp_path / "var" / "staging"
    results = [run(monkeypatch, staging, check_mode=True), run(monkeypatch, staging),
               run(monkeypatch, staging, check_mode=True), run(monkeypatch, staging)]
    assert [r["changed"] for r in results] == [True, True, False, False]
    wanted = [str(tmp_path / "var"), str(staging)] + [str(staging / d) for d in ("incoming", *SUBDIRS)]
    assert results[0]["made"] == results[1]["made"] == wanted
    assert results[3]["directories"] == wanted[1:]  # a parent that exists is not the module's
    assert results[3]["made"] == []
    assert tree(tmp_path / "var") == dict.fromkeys([".", "staging", "staging/incoming", "staging/incoming/images",
                                                    "staging/incoming/containers"], "0700")


def test_check_mode_makes_nothing(monkeypatch, tmp_path):
    result = run(monkeypatch, tmp_path / "staging", check_mode=True, diff=True)
    assert result["changed"] and not (tmp_path / "staging").exists()
    assert result["diff"]["before"][str(tmp_path / "staging")] is None
    assert result["diff"]["after"][str(tmp_path / "staging")]["mode"] == "0700"


def test_a_wrong_mode_is_put_right_and_shown_in_the_diff(monkeypatch, tmp_path):
    staging = tmp_path / "staging"
    run(monkeypatch, staging)
    os.chmod(staging / "incoming", 0o777)
    checked = run(monkeypatch, staging, check_mode=True, diff=True)
    assert checked["changed"] and checked["changed_directories"] == [str(staging / "incoming")]
    assert checked["diff"]["before"] == {str(staging / "incoming"): {"mode": "0777", "uid": os.geteuid()}}
    assert stat.S_IMODE(os.stat(staging / "incoming").st_mode) == 0o777  # check mode changed nothing
    assert run(monkeypatch, staging)["changed"]
    assert stat.S_IMODE(os.stat(staging / "incoming").st_mode) == 0o700


@pytest.mark.parametrize("where", ["staging", "staging/incoming", "staging/incoming/images"])
def test_a_symbolic_link_in_place_of_a_directory_is_refused_before_anything_is_made(monkeypatch, tmp_path, where):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / where
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(elsewhere)
    before = tree(tmp_path)
    with pytest.raises(Failed) as failed:
        run(monkeypatch, tmp_path / "staging")
    assert failed.value.result["msg"] == ("%s is a symbolic link; a staging directory must be a real directory, since a link in its "
                                          "place could send the archives elsewhere." % link)
    assert tree(tmp_path) == before and os.listdir(elsewhere) == []


def test_a_file_in_place_of_a_directory_is_refused(monkeypatch, tmp_path):
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "incoming").write_bytes(b"x")
    with pytest.raises(Failed, match="incoming exists and is not a directory"):
        run(monkeypatch, tmp_path / "staging")
    assert not (tmp_path / "staging" / "incoming" / "images").exists()


@pytest.mark.parametrize("subdir", ["/abs", "..", "a/../b", "", "./a"])
def test_a_subdirectory_outside_the_staging_directory_is_refused(monkeypatch, tmp_path, subdir):
    with pytest.raises(Failed, match="must be a relative path inside the staging directory"):
        run(monkeypatch, tmp_path / "staging", subdirs=[subdir])
    assert not (tmp_path / "staging").exists()


@pytest.mark.parametrize("params, message", [
    ({"path": "relative/dir"}, "must be an absolute path"),
    ({"mode": "0789"}, "is not an octal permission"),
    ({"owner": "no-such-user-here"}, "is not a user of this host"),
])
def test_bad_options_fail_with_one_sentence(monkeypatch, tmp_path, params, message):
    with pytest.raises(Failed, match=message):
        run_module(monkeypatch, staging_dir, dict({"path": str(tmp_path / "s")}, **params))
    assert not (tmp_path / "s").exists()


def test_the_owner_is_set_by_name_or_number(monkeypatch, tmp_path):
    me = os.geteuid()
    name = __import__("pwd").getpwuid(me).pw_name
    assert staging_dirs.owner_uid(name) == me == staging_dirs.owner_uid(str(me))
    assert staging_dirs.owner_uid(None) is None
    result = run(monkeypatch, tmp_path / "s", owner=name)
    assert all(os.lstat(d).st_uid == me for d in result["directories"])


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory away needs root")
def test_root_gives_the_directories_to_the_owner(monkeypatch, tmp_path):
    staging = tmp_path / "s"
    staging.mkdir(mode=0o755)
    result = run(monkeypatch, staging, owner="65534")
    assert result["changed_directories"] == [str(staging)]
    assert {os.lstat(d).st_uid for d in result["directories"]} == {65534}
    assert run(monkeypatch, staging, owner="65534")["changed"] is False


def test_a_link_planted_after_the_plan_is_not_followed(tmp_path):
    staging = tmp_path / "s"
    steps = staging_dirs.plan(staging_dirs.directories(str(staging), ["in"]), 0o700, None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    staging.symlink_to(elsewhere)  # between the decision and the act
    with pytest.raises(Exception, match="cannot be used as a staging directory"):
        staging_dirs.apply(steps, 0o700, None)
    assert stat.S_IMODE(os.stat(elsewhere).st_mode) == 0o755
