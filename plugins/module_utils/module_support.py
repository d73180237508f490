# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Ansible side shared by the modules: connection options, engine client, error handling.

This is the only helper that imports Ansible; everything it calls is plain Python.
"""

from __future__ import annotations

import os
import resource
import signal
import time

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.airgap.docker.plugins.module_utils import compression
from ansible_collections.airgap.docker.plugins.module_utils.archive_parts import all_parts
from ansible_collections.airgap.docker.plugins.module_utils.constants import DEFAULT_HOST, KIND_IMAGES
from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError, ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.file_access import check_writable_directory, stat_or_none
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import describes_same_content, read_sidecar, sidecar_path
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import write as write_sidecar
from ansible_collections.airgap.docker.plugins.module_utils.verified_memo import VerifiedMemo, file_identity

ENGINE_ARGUMENT_SPEC = dict(
    docker_host=dict(type="str", default=DEFAULT_HOST, aliases=["docker_url"],
                     fallback=(env_fallback, ["DOCKER_HOST"])),
    tls=dict(type="bool", default=False, fallback=(env_fallback, ["DOCKER_TLS"])),
    validate_certs=dict(type="bool", default=False, aliases=["tls_verify"], fallback=(env_fallback, ["DOCKER_TLS_VERIFY"])),
    ca_path=dict(type="path", aliases=["ca_cert", "tls_ca_cert"]),
    client_cert=dict(type="path", aliases=["tls_client_cert", "cert_path"]),
    client_key=dict(type="path", aliases=["tls_client_key", "key_path"], no_log=False),
    api_version=dict(type="str", default="auto", aliases=["docker_api_version"], fallback=(env_fallback, ["DOCKER_API_VERSION"])),
    timeout=dict(type="int", fallback=(env_fallback, ["DOCKER_TIMEOUT"])),
)

ARCHIVE_ARGUMENT_SPEC = dict(
    compression=dict(type="str", default="auto", choices=["auto", "none", "gzip", "zstd"]),
    compression_level=dict(type="int"),
    checksum=dict(type="str"),
)


def _cert_path_default(params, option, filename):
    cert_dir = os.environ.get("DOCKER_CERT_PATH")
    if params.get(option) or not cert_dir:
        return params.get(option)
    candidate = os.path.join(cert_dir, filename)
    return candidate if os.path.exists(candidate) else None


def engine_client(params):
    """An EngineClient from the module's connection options."""
    # Imported here: the Docker SDK is only loaded by the modules that talk to an engine (not bundle).
    from ansible_collections.airgap.docker.plugins.module_utils.engine import EngineClient

    return EngineClient(
        docker_host=params["docker_host"],
        tls=params["tls"],
        validate_certs=params["validate_certs"],
        ca_path=_cert_path_default(params, "ca_path", "ca.pem"),
        client_cert=_cert_path_default(params, "client_cert", "cert.pem"),
        client_key=_cert_path_default(params, "client_key", "key.pem"),
        api_version=None if params["api_version"] in (None, "auto") else params["api_version"],
        timeout=params["timeout"],
    )


def build_module(argument_spec: dict, engine: bool = True, **kwargs) -> AnsibleModule:
    """AnsibleModule with check mode and, for a module that talks to an engine (`engine`), the
    connection options; that one fails with the install hint when the SDK is missing."""
    spec = dict(ENGINE_ARGUMENT_SPEC) if engine else {}
    spec.update(argument_spec)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True, **kwargs)
    if not engine:
        return module
    from ansible_collections.airgap.docker.plugins.module_utils.engine import DOCKER_IMPORT_ERROR

    if DOCKER_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("docker (Docker SDK for Python >= 7.0)"), exception=DOCKER_IMPORT_ERROR)
    return module


def _exit_on_signal(signum, _frame):
    # SystemExit unwinds like an error: temporary files are removed, a paused container unpaused.
    raise SystemExit(128 + signum)


def run_manager(module: AnsibleModule, manager_class: type) -> None:
    """Run manager_class(module).run() and exit; our errors become one fail_json each.

    The result gets the run's `stats` (time, peak memory) unless the manager class sets
    `reports_stats = False`.
    """
    started = time.monotonic()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # nohup stays nohup
            signal.signal(signum, _exit_on_signal)
    try:
        result = manager_class(module).run()
    except AirgapError as exc:
        details = {k: v for k, v in exc.details.items() if v is not None}
        module.fail_json(msg=exc.msg, **details)
    if getattr(manager_class, "reports_stats", True):
        stats = result.setdefault("stats", {})
        stats["seconds"] = round(time.monotonic() - started, 3)
        # Linux reports kibibytes: the module's peak memory, which must not grow with archive size.
        stats["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    module.exit_json(**result)


# Stats returned only by the runs that measure them (a save from the engine), beside those every run returns.
MEASURED_STATS = ("engine_wait_seconds",)


class ArchiveManager:
    """What the archive modules share: engine access, results, diff, stats, file attributes.

    `writes_state` names the state in which the module writes the archive, the only one in
    which the file options (mode, owner, group) apply.
    """

    writes_state = None
    sidecar_kind = KIND_IMAGES
    handlers = {}  # state -> name of the method that ensures it; any other state is `absent`
    # The sidecar document that describes the archive as this host wrote or verified it; the
    # manager sets it, and it is what the result returns (never the file's claims).
    trusted_document = None

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.path = self.params["path"]
        self.check_mode = module.check_mode
        stats = {"bytes_from_engine": 0, "bytes_to_engine": 0, "archive_bytes_read": 0, "archive_bytes_written": 0,
                 "bytes_verified": 0}
        self.result = {"changed": False, "actions": [], "stats": stats}
        self._engine = None
        self.memo = VerifiedMemo()

    @property
    def engine(self):
        if self._engine is None:
            self._engine = engine_client(self.params)
        return self._engine

    def run(self):
        getattr(self, self.handlers.get(self.params["state"], "ensure_absent"))()
        self._add_sidecar()
        return self.result

    def _add_sidecar(self):
        """Return the sidecar of a written archive that is current, so that a playbook can carry
        what the archive holds (a bundle manifest does) without reading the file back.

        The document returned is the one this host wrote or verified; a sidecar file that says
        otherwise (edited by someone else) is put back, since the archive is this module's output.
        """
        if self.params["state"] != self.writes_state or "archive" not in self.result or self.trusted_document is None:
            return
        if self.check_mode and self.result["changed"]:
            return  # the sidecar on disk describes the archive a real run would replace
        on_disk = read_sidecar(self.path, kind=self.sidecar_kind)
        if on_disk is not None and describes_same_content(on_disk, self.trusted_document):
            self.result["sidecar"] = on_disk  # it agrees with what was verified, and may say more (engine, request)
            return
        if not self.check_mode:
            try:
                write_sidecar(self.path, self.trusted_document)
            except OSError as exc:
                raise AirgapError("Cannot rewrite the sidecar %s: %s." % (sidecar_path(self.path), exc.strerror))
            self.apply_file_attributes(False)
        self.result["sidecar"] = self.trusted_document

    def remember_verified(self, path, document, file_stat):
        """Remember what was verified (or written) about the archive at path, for O(1) re-runs."""
        self.memo.remember(path, self.sidecar_kind, document, file_stat)

    def recall_verified(self, path, stat):
        """The document remembered for exactly this file, or None."""
        return self.memo.recall(path, self.sidecar_kind, stat)

    def remember_if_unchanged(self, document: dict, known: os.stat_result) -> None:
        """Remember document for the file whose stat was `known`; taken after the file attributes
        were set (which changes the ctime), and only while it is still that file, unmodified."""
        now = stat_or_none(self.path)
        if now is None or (now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns) != (
                known.st_dev, known.st_ino, known.st_size, known.st_mtime_ns):
            return
        if file_identity(now) != file_identity(known) or self.recall_verified(self.path, now) != document:
            self.remember_verified(self.path, document, now)

    def writing_compression(self):
        """(kind, level) for writing the archive; fails before any work when they cannot be used."""
        kind = compression.resolve(self.params["compression"], self.path)
        compression.require(kind)
        level = compression.check_level(kind, self.params["compression_level"])
        check_writable_directory(self.path)
        return kind, level

    def finish(self, changed, msg, actions, archive=None, **extra):
        """Record the outcome; an unchanged archive may still need its file attributes set."""
        if not changed and archive is not None:
            changed = self.apply_file_attributes(False)
            if changed:
                msg, actions = msg + "; file attributes updated", "attributes"
        self.result.update(changed=changed, msg=msg, actions=[actions] if isinstance(actions, str) else list(actions))
        if archive is not None:
            self.result["archive"] = archive
        self.result.update({key: value for key, value in extra.items() if value is not None})

    def apply_file_attributes(self, changed):
        if self.params["state"] != self.writes_state or not os.path.exists(self.path):
            return changed
        before = os.stat(self.path)
        changed = self._apply_file_attributes(changed)
        self._follow_attribute_change(before)
        return changed

    def _follow_attribute_change(self, before):
        """A chmod or chown changes the archive's ctime: carry its memo entry over, the content being untouched."""
        after = os.stat(self.path)
        if after.st_ctime_ns == before.st_ctime_ns:
            return
        same = all(getattr(after, key) == getattr(before, key) for key in ("st_dev", "st_ino", "st_size", "st_mtime_ns"))
        document = self.recall_verified(self.path, before) if same else None
        if document is not None:
            self.remember_verified(self.path, document, after)

    def _apply_file_attributes(self, changed):
        # The sidecar gets the archive's owner and mode: it records the container's config (ENV may hold secrets).
        for path in (self.path, sidecar_path(self.path)):
            if os.path.exists(path):
                file_args = self.module.load_file_common_arguments(self.params, path=path)
                changed = self.module.set_fs_attributes_if_different(file_args, changed)
        return changed

    def diff(self, before, after):
        if self.module._diff:
            self.result["diff"] = {"before": before, "after": after}

    def add_stats(self, stats):
        for key, value in stats.items():
            if key in self.result["stats"] or key in MEASURED_STATS:
                self.result["stats"][key] = self.result["stats"].get(key, 0) + value

    def ensure_absent(self):
        """Remove the archive, every part of it (see archive_parts), and its sidecar."""
        whole = [self.path] if os.path.lexists(self.path) else []
        parts = all_parts(self.path)
        targets = whole + parts + [p for p in (sidecar_path(self.path),) if os.path.lexists(p)]
        before = "file" if whole else ("parts" if parts else "absent")
        self.diff({"path": self.path, "state": before}, {"path": self.path, "state": "absent"})
        if not targets:
            self.finish(False, "the archive does not exist", "skipped")
            return
        if os.path.isdir(self.path):
            raise ArchiveError("%s is a directory, not an archive; refusing to remove it." % self.path)
        if not self.check_mode:
            for target in targets:
                try:
                    os.unlink(target)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise ArchiveError("Cannot remove %s: %s." % (target, exc.strerror))
        self.finish(True, "%s %s" % ("would remove" if self.check_mode else "removed", ", ".join(targets)), "removed")
