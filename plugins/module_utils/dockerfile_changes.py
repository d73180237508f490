# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Dockerfile-style `changes` applied to an image config, as `docker import --change` does.

Supported: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, SHELL, STOPSIGNAL, USER,
VOLUME, WORKDIR. Each change is validated; a bad one raises InvalidInput naming it.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
import shlex
from decimal import Decimal

from ansible_collections.airgap.docker.plugins.module_utils.errors import InvalidInput

DEFAULT_SHELL = ["/bin/sh", "-c"]
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_NANOS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10 ** 6, "s": 10 ** 9, "m": 60 * 10 ** 9, "h": 3600 * 10 ** 9}
_PORT = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?(?:/(tcp|udp|sctp))?$")
_SIGNALS = frozenset([
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE", "POLL", "PROF", "PWR",
    "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH",
    "XCPU", "XFSZ",
])


def apply_changes(config, changes):
    """A new config dict with each change applied in order; config is not modified."""
    result = copy.deepcopy(config or {})
    for index, change in enumerate(changes or []):
        try:
            _apply(result, change)
        except InvalidInput as exc:
            raise InvalidInput("changes[%d] '%s': %s" % (index, change, exc.msg))
    return result


def _apply(config, change):
    text = (change or "").strip()
    if not text:
        raise InvalidInput("an empty instruction")
    parts = re.split(r"\s+", text, maxsplit=1)
    keyword, rest = parts[0].upper(), (parts[1] if len(parts) > 1 else "").strip()
    handler = _HANDLERS.get(keyword)
    if handler is None:
        raise InvalidInput("%s is not an instruction that can change an image's config (use one of %s)" % (keyword, ", ".join(sorted(_HANDLERS))))
    if not rest and keyword != "HEALTHCHECK":
        raise InvalidInput("%s needs an argument" % keyword)
    handler(config, rest)


def _json_list(rest):
    """The exec form `["a", "b"]`, or None when rest is not a JSON list of strings."""
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return None
    return value


def _command(config, rest):
    exec_form = _json_list(rest)
    if exec_form is not None:
        return exec_form
    return list(config.get("Shell") or DEFAULT_SHELL) + [rest]


def _cmd(config, rest):
    config["Cmd"] = _command(config, rest)


def _entrypoint(config, rest):
    config["Entrypoint"] = _command(config, rest)


def _pairs(rest, keyword):
    """`K=V K2="v 2"` or the legacy single `K V` form -> [(key, value)]."""
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise InvalidInput("cannot parse %s arguments (%s)" % (keyword, exc))
    if words and "=" not in words[0]:
        key, _sep, value = rest.partition(" ")
        if not value.strip():
            raise InvalidInput("%s %s needs a value" % (keyword, key))
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, separator, value = word.partition("=")
        if not separator or not key:
            raise InvalidInput("%r is not KEY=VALUE" % word)
        pairs.append((key, value))
    return pairs


def _env(config, rest):
    env = list(config.get("Env") or [])
    for key, value in _pairs(rest, "ENV"):
        entry = "%s=%s" % (key, value)
        keys = [item.split("=", 1)[0] for item in env]
        if key in keys:
            env[keys.index(key)] = entry  # replaced in place, as Docker does
        else:
            env.append(entry)
    config["Env"] = env


def _label(config, rest):
    labels = dict(config.get("Labels") or {})
    labels.update(_pairs(rest, "LABEL"))
    config["Labels"] = labels


def _expose(config, rest):
    ports = dict(config.get("ExposedPorts") or {})
    for spec in rest.split():
        match = _PORT.match(spec)
        first, last = (int(match.group(1)), int(match.group(2) or match.group(1))) if match else (0, -1)
        if not match or not 0 < first <= last <= 65535:
            raise InvalidInput("%r is not a port such as 80, 80/tcp, 53/udp or 8000-8010" % spec)
        for port in range(first, last + 1):  # a range is one key per port, as Docker stores it
            ports["%d/%s" % (port, match.group(3) or "tcp")] = {}
    config["ExposedPorts"] = ports


def _volume(config, rest):
    paths = _json_list(rest) or rest.split()
    volumes = dict(config.get("Volumes") or {})
    for path in paths:
        if not path.startswith("/"):
            raise InvalidInput("volume %r must be an absolute path" % path)
        volumes[path] = {}
    config["Volumes"] = volumes


def _workdir(config, rest):
    base = config.get("WorkingDir") or "/"
    # normpath keeps a leading `//`; Docker cleans it to `/`.
    config["WorkingDir"] = "/" + posixpath.normpath(posixpath.join(base, rest)).lstrip("/")


def _user(config, rest):
    config["User"] = rest


def _stopsignal(config, rest):
    name = rest.upper()
    name = name[3:] if name.startswith("SIG") else name
    realtime = re.match(r"^RTM(IN|AX)([+-]\d+)?$", name)
    if not (name in _SIGNALS or realtime or (rest.isdigit() and 0 < int(rest) < 65)):
        raise InvalidInput("%r is not a signal name or number" % rest)
    config["StopSignal"] = rest


def _shell(config, rest):
    shell = _json_list(rest)
    if not shell:
        raise InvalidInput('SHELL takes the JSON form, e.g. ["/bin/bash", "-c"]')
    config["Shell"] = shell


def _onbuild(config, rest):
    inner = rest.split(" ", 1)[0].upper()
    if inner in ("ONBUILD", "FROM", "MAINTAINER"):
        raise InvalidInput("ONBUILD %s is not allowed" % inner)
    config["OnBuild"] = list(config.get("OnBuild") or []) + [rest]


def _duration(value, option):
    if not _DURATION.match(value):
        raise InvalidInput("%s=%s is not a duration such as 30s or 1m30s" % (option, value))
    return int(sum(Decimal(number) * _NANOS[unit] for number, unit in _DURATION_PART.findall(value)))


def _healthcheck(config, rest):
    if rest.upper() == "NONE":
        config["Healthcheck"] = {"Test": ["NONE"]}
        return
    check = {}
    while rest.startswith("--"):
        parts = re.split(r"\s+", rest, maxsplit=1)
        word, rest = parts[0], (parts[1] if len(parts) > 1 else "")
        option, _sep, value = word[2:].partition("=")
        if option in ("interval", "timeout", "start-period", "start-interval"):
            check[{"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
                   "start-interval": "StartInterval"}[option]] = _duration(value, option)
        elif option == "retries" and value.isdigit():
            check["Retries"] = int(value)
        else:
            raise InvalidInput("unknown or invalid HEALTHCHECK option --%s" % option)
    parts = re.split(r"\s+", rest, maxsplit=1)  # the command itself is kept exactly as written
    keyword, argument = parts[0], (parts[1] if len(parts) > 1 else "")
    if keyword.upper() != "CMD" or not argument.strip():
        raise InvalidInput("HEALTHCHECK needs NONE or CMD <command>")
    exec_form = _json_list(argument.strip())
    check["Test"] = ["CMD"] + exec_form if exec_form is not None else ["CMD-SHELL", argument.strip()]
    config["Healthcheck"] = check


_HANDLERS = {
    "CMD": _cmd, "ENTRYPOINT": _entrypoint, "ENV": _env, "EXPOSE": _expose, "HEALTHCHECK": _healthcheck,
    "LABEL": _label, "ONBUILD": _onbuild, "SHELL": _shell, "STOPSIGNAL": _stopsignal, "USER": _user,
    "VOLUME": _volume, "WORKDIR": _workdir,
}
