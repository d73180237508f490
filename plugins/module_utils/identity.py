# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What makes two images the same image, on either Docker storage backend.

On the classic graph-driver store the engine's image ID is the digest of the image config.
On the containerd image store the ID is the digest of the manifest (or index), and an archive
without one (legacy `docker save` layout) gets a manifest synthesized on load, so the same
image gets a different ID there. The config digest is not shown by `docker image inspect` on
Docker < 28 either. What both stores do show, byte for byte from the config, is the content:
layer diff IDs, creation time, platform and the runtime config. The fingerprint is a digest of
exactly those, so it is equal for the same image whatever store or layout it came through.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re

# Runtime configuration that decides what a container of the image does.
RUNTIME_KEYS = (
    "Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Labels", "ExposedPorts",
    "Volumes", "StopSignal", "Healthcheck", "Shell", "OnBuild",
)
_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)?$")


def normalize_created(value):
    """An RFC 3339 time as `<unix seconds>.<nanoseconds>` in UTC; '' for none or Go's zero time."""
    if not value:
        return ""
    match = _TIME.match(value.strip())
    if not match:
        return value
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if int(year) <= 1:
        return ""  # Go's zero time: no creation time recorded
    seconds = calendar.timegm((int(year), int(month), int(day), int(hour), int(minute), int(second)))
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    nanos = int((fraction or "0")[:9].ljust(9, "0"))
    return "%d.%09d" % (seconds, nanos)


def _normalize_value(key, value):
    if value in (None, "", [], {}):
        return None
    if key in ("ExposedPorts", "Volumes") and isinstance(value, dict):
        return sorted(value)
    if key == "Labels" and isinstance(value, dict):
        return sorted(value.items())
    return value


def runtime_config(config):
    """The runtime keys of a container config, empty values dropped so that null == [] == {}."""
    config = config or {}
    result = {}
    for key in RUNTIME_KEYS:
        value = _normalize_value(key, config.get(key))
        if value is not None:
            result[key] = value
    return result


def fingerprint(diff_ids, created, os_name, architecture, variant, config):
    """Digest of an image's content and runtime config: equal for the same image on any store."""
    document = {
        "diff_ids": list(diff_ids or []),
        "created": normalize_created(created),
        "os": os_name or "",
        "architecture": architecture or "",
        "variant": variant or "",
        "config": runtime_config(config),
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def fingerprint_from_config_blob(blob):
    """Fingerprint of an image config as stored in an archive (the JSON document)."""
    return fingerprint(
        (blob.get("rootfs") or {}).get("diff_ids"),
        blob.get("created"),
        blob.get("os"),
        blob.get("architecture"),
        blob.get("variant"),
        blob.get("config"),
    )


def fingerprint_from_inspect(inspect):
    """Fingerprint of an image as `docker image inspect` (the engine API) shows it."""
    return fingerprint(
        (inspect.get("RootFS") or {}).get("Layers"),
        inspect.get("Created"),
        inspect.get("Os"),
        inspect.get("Architecture"),
        inspect.get("Variant"),
        inspect.get("Config"),
    )
