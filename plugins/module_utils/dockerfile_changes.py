# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Dockerfile-style `changes` applied to an image config, as `docker import --change` does.

Supported: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, SHELL, STOPSIGNAL, USER,
VOLUME, WORKDIR. Each change is validated; a bad one raises InvalidInput naming it.

Keywords, option names and numbers are ASCII only, as in Docker's parser: a port in Arabic-Indic
digits or a superscript two as a signal is refused, never read as 80 or 2, and `user` spelt with
a long s (U+017F, whose upper case is S in Python, not in Go) is not an instruction.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re

from ansible_collections.airgap.docker.plugins.module_utils.errors import InvalidInput

DEFAULT_SHELL = ["/bin/sh", "-c"]
# The longest argument or environment entry Linux passes to a program (MAX_ARG_STRLEN, 32 pages):
# a longer instruction is a mistake, not a config.
MAX_INSTRUCTION_BYTES = 128 * 1024
# What Docker's parser splits words on; other Unicode spaces are part of a word, as in Go.
_BLANKS = re.compile(r"[ \t\n\v\f\r]+")
_KEYWORD = re.compile(r"[A-Za-z]+\Z")
# One piece of a shell-quoted word, as shlex.split (POSIX mode) reads it, in one linear pass
# (shlex grows each token a character at a time: seconds for one long value). Each branch
# matches a character one way only, so an unclosed quote fails in linear time too.
_WORD_PIECE = re.compile(r"""
    (?P<blank>[ \t\r\n]+)
  | '(?P<single>[^']*)'
  | "(?P<double>(?:[^"\\]|\\.)*)"
  | \\(?P<escaped>.)
  | (?P<plain>[^ \t\r\n'"\\]+)
""", re.VERBOSE | re.DOTALL)
_DOUBLE_QUOTED_ESCAPE = re.compile(r'\\(["\\])')  # inside "...", only \" and \\ are escapes
_UNCLOSED_ESCAPE = re.compile(r'"(?:[^"\\]|\\.)*\\\Z', re.DOTALL)  # an unclosed "... ending in a lone backslash
# Go's time.ParseDuration syntax, ASCII digits only; both micro signs (U+00B5, U+03BC) as in Go.
_DURATION = re.compile(r"(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+\Z")
_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_MS = 10 ** 6
_NANOS = {"ns": 1, "us": 1000, "\u00b5s": 1000, "\u03bcs": 1000, "ms": _MS, "s": 10 ** 9, "m": 60 * 10 ** 9, "h": 3600 * 10 ** 9}
_MAX_DURATION = 2 ** 63 - 1  # a Go time.Duration, in nanoseconds
_MAX_INT32 = 2 ** 31 - 1  # Docker parses --retries as an int32, uids and gids are checked against it too
_PORT = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?(?:/(tcp|udp|sctp))?\Z")
_DIGITS = re.compile(r"[0-9]{1,10}\Z")
_UNICODE_DIGITS = re.compile(r"\d+\Z")
_SIGNALS = frozenset([
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE", "POLL", "PROF", "PWR",
    "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH",
    "XCPU", "XFSZ",
])
# Docker's signal table names RTMIN+1..RTMIN+15 and RTMAX-14..RTMAX-1 besides RTMIN and RTMAX.
_REALTIME = re.compile(r"RTM(?:IN(?:\+([1-9][0-9]?))?|AX(?:-([1-9][0-9]?))?)\Z")
_HEALTH_DURATIONS = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod", "start-interval": "StartInterval"}
# Keys of the restored config that changes extend, with the type they must have.
_EXTENDED = {"Env": list, "Labels": dict, "ExposedPorts": dict, "Volumes": dict, "Shell": list, "OnBuild": list, "WorkingDir": str}


def apply_changes(config, changes):
    """A new config dict with each change applied in order; config is not modified."""
    if not isinstance(changes, (list, tuple, type(None))):
        raise InvalidInput("changes must be a list of Dockerfile instructions, not a %s." % type(changes).__name__)
    result = copy.deepcopy(_checked_config(config))
    for index, change in enumerate(changes or []):
        try:
            _apply(result, change)
        except InvalidInput as exc:
            raise InvalidInput("changes[%d] %s: %s" % (index, _quoted(change), exc.msg))
    return result


def _checked_config(config):
    """The restored config, refused with one sentence when a key that changes extend has another type."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise InvalidInput("The image config to change is a %s, not a mapping." % type(config).__name__)
    for key, kind in _EXTENDED.items():
        value = config.get(key)
        if value is not None and not isinstance(value, kind):
            raise InvalidInput("The image config's %s is a %s, not a %s." % (key, type(value).__name__, kind.__name__))
    for key in ("Env", "Shell", "OnBuild"):
        if not all(isinstance(item, str) for item in config.get(key) or []):
            raise InvalidInput("The image config's %s holds an item that is not a string." % key)
    return config


def _quoted(change):
    """The change as the error prefix shows it: verbatim in quotes when short and printable."""
    if not isinstance(change, str):
        return repr(change)
    text = change if change.isprintable() else change.encode("unicode_escape").decode("ascii")
    return "'%s'" % (text if len(text) <= 200 else text[:200] + "...")


def _shown(value):
    """A value as an error message names it: at most 60 characters, so a long input stays one readable line."""
    return value if len(value) <= 60 else value[:60] + "..."


def _upper(word):
    """word in upper case when ASCII; otherwise unchanged, so that no non-ASCII word becomes a keyword."""
    return word.upper() if word.isascii() else word


def _split_keyword(text):
    """(first word, the rest) split on ASCII blanks, as Docker's parser splits."""
    parts = _BLANKS.split(text, maxsplit=1)
    return parts[0], (parts[1] if len(parts) > 1 else "")


def _apply(config, change):
    if change is not None and not isinstance(change, str):
        raise InvalidInput("an instruction must be a string, not a %s" % type(change).__name__)
    text = (change or "").strip()
    if not text:
        raise InvalidInput("an empty instruction")
    _check_text(text)
    word, rest = _split_keyword(text)
    keyword = word.upper() if _KEYWORD.match(word) else word
    handler = _HANDLERS.get(keyword)
    if handler is None:
        raise InvalidInput("%s is not an instruction that can change an image's config (use one of %s)"
                           % (_shown(keyword) if keyword.isascii() and keyword.isprintable() else repr(_shown(keyword)),
                              ", ".join(sorted(_HANDLERS))))
    if not rest and keyword != "HEALTHCHECK":
        raise InvalidInput("%s needs an argument" % keyword)
    handler(config, rest)


def _check_text(text):
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidInput("U+%04X is a lone surrogate, not a character" % ord(text[exc.start]))
    if size > MAX_INSTRUCTION_BYTES:
        raise InvalidInput("the instruction is %d bytes long, more than the %d Linux allows for one argument or "
                           "environment entry" % (size, MAX_INSTRUCTION_BYTES))


def _json_list(rest):
    """The exec form `["a", "b"]`, or None when rest is not a JSON list of strings."""
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except (ValueError, RecursionError):  # deep nesting is not a list of strings either
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return None
    for item in value:
        _check_text(item)  # a JSON escape such as \ud800 decodes to a lone surrogate
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


def _shell_words(text):
    """The words of text as shlex.split gives them, or ValueError with shlex's reason."""
    words, pieces, pos = [], None, 0  # pieces is None between words; `""` is a word, empty
    while pos < len(text):
        match = _WORD_PIECE.match(text, pos)
        if match is None:
            escape = text[pos] == "\\" or _UNCLOSED_ESCAPE.match(text, pos)
            raise ValueError("No escaped character" if escape else "No closing quotation")
        pos = match.end()
        kind = match.lastgroup
        if kind == "blank":
            if pieces is not None:
                words.append("".join(pieces))
            pieces = None
            continue
        piece = match.group(kind)
        pieces = pieces if pieces is not None else []
        pieces.append(_DOUBLE_QUOTED_ESCAPE.sub(r"\1", piece) if kind == "double" else piece)
    if pieces is not None:
        words.append("".join(pieces))
    return words


def _pairs(rest, keyword):
    """`K=V K2="v 2"` or the legacy single `K V` form -> [(key, value)]."""
    try:
        words = _shell_words(rest)
    except ValueError as exc:
        raise InvalidInput("cannot parse %s arguments (%s)" % (keyword, exc))
    if words and "=" not in words[0]:
        key, value = _split_keyword(rest)
        if not value.strip():
            raise InvalidInput("%s %s needs a value" % (keyword, _shown(key)))
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, separator, value = word.partition("=")
        if not separator or not key:
            raise InvalidInput("%r is not KEY=VALUE" % _shown(word))
        pairs.append((key, value))
    return pairs


def _env(config, rest):
    env = list(config.get("Env") or [])
    # Docker replaces the first entry of a key in place; an index keeps long lists linear.
    first = {}
    for position, item in enumerate(env):
        first.setdefault(item.split("=", 1)[0], position)
    for key, value in _pairs(rest, "ENV"):
        entry = "%s=%s" % (key, value)
        if key in first:
            env[first[key]] = entry
        else:
            first[key] = len(env)
            env.append(entry)
    config["Env"] = env


def _label(config, rest):
    labels = dict(config.get("Labels") or {})
    labels.update(_pairs(rest, "LABEL"))
    config["Labels"] = labels


def _port_range(spec):
    """(protocol, first, last) of an EXPOSE word, or InvalidInput naming it."""
    match = _PORT.match(spec)
    first, last = (int(match.group(1)), int(match.group(2) or match.group(1))) if match else (0, -1)
    if not 0 < first <= last <= 65535:
        raise InvalidInput("EXPOSE %r is not a port from 1 to 65535 in ASCII digits, such as 80, 80/tcp, 53/udp or 8000-8010"
                           % _shown(spec))
    return match.group(3) or "tcp", first, last


def _merged(ranges):
    """Overlapping and adjacent ranges of one protocol merged: a port is expanded once however
    many times the instruction repeats it (`EXPOSE 1-65535 1-65535 ...` stays linear)."""
    merged = []
    for protocol, first, last in sorted(ranges):
        if merged and merged[-1][0] == protocol and first <= merged[-1][2] + 1:
            merged[-1][2] = max(merged[-1][2], last)
        else:
            merged.append([protocol, first, last])
    return merged


def _expose(config, rest):
    ports = dict(config.get("ExposedPorts") or {})
    for protocol, first, last in _merged(_port_range(spec) for spec in _BLANKS.split(rest) if spec):
        for port in range(first, last + 1):  # a range is one key per port, as Docker stores it
            ports["%d/%s" % (port, protocol)] = {}
    config["ExposedPorts"] = ports


def _volume(config, rest):
    paths = _json_list(rest) or [path for path in _BLANKS.split(rest) if path]
    volumes = dict(config.get("Volumes") or {})
    for path in paths:
        if not path.startswith("/"):
            raise InvalidInput("volume %r must be an absolute path" % _shown(path))
        volumes[path] = {}
    config["Volumes"] = volumes


def _workdir(config, rest):
    base = config.get("WorkingDir") or "/"
    # normpath keeps a leading `//`; Docker cleans it to `/`.
    config["WorkingDir"] = "/" + posixpath.normpath(posixpath.join(base, rest)).lstrip("/")


def _user(config, rest):
    # Names are free (Windows has `NT AUTHORITY\SYSTEM`); what reads as a number must be one the
    # runtime takes as an ID: ASCII digits within its range, never a name made of other digits.
    for part in rest.split(":", 1):
        if _UNICODE_DIGITS.match(part) and not (_DIGITS.match(part) and int(part) <= _MAX_INT32):
            raise InvalidInput("USER %r: %r is not an ID from 0 to %d in ASCII digits" % (_shown(rest), _shown(part), _MAX_INT32))
    config["User"] = rest


def _stopsignal(config, rest):
    name = _upper(rest)
    name = name[3:] if name.startswith("SIG") else name
    realtime = _REALTIME.match(name)
    if realtime:
        plus, minus = (int(group or "1") for group in realtime.groups())
        valid = plus <= 15 and minus <= 14
    else:
        valid = name in _SIGNALS or (_DIGITS.match(rest) is not None and 0 < int(rest) < 65)
    if not valid:
        raise InvalidInput("STOPSIGNAL %r is not a signal name or a number from 1 to 64" % _shown(rest))
    config["StopSignal"] = rest


def _shell(config, rest):
    shell = _json_list(rest)
    if not shell:
        raise InvalidInput('SHELL takes the JSON form, e.g. ["/bin/bash", "-c"]')
    config["Shell"] = shell


def _onbuild(config, rest):
    inner = _upper(_split_keyword(rest)[0])
    if inner in ("ONBUILD", "FROM", "MAINTAINER"):
        raise InvalidInput("ONBUILD %s is not allowed" % inner)  # one of three ASCII words
    config["OnBuild"] = list(config.get("OnBuild") or []) + [rest]


def _duration(value, option):
    """Nanoseconds of a Go duration, with Docker's HEALTHCHECK rules: 0 or 1ms to about 292 years."""
    if value != "0" and not _DURATION.match(value):
        raise InvalidInput("HEALTHCHECK --%s=%s is not a duration such as 30s or 1m30s" % (option, _shown(value)))
    nanos = 0
    for whole, fraction, unit in _DURATION_PART.findall(value):
        # Past 19 whole digits the total overflows anyway; fraction digits past 20 are below a nanosecond.
        whole = whole.lstrip("0")
        if len(whole) > 19:
            nanos = _MAX_DURATION + 1
            break
        fraction = (fraction or "")[:20]
        nanos += int(whole or "0") * _NANOS[unit] + int(fraction or "0") * _NANOS[unit] // 10 ** len(fraction)
    if nanos > _MAX_DURATION:
        raise InvalidInput("HEALTHCHECK --%s=%s is longer than the longest duration Docker stores (about 292 years)"
                           % (option, _shown(value)))
    if 0 < nanos < _MS:
        raise InvalidInput("HEALTHCHECK --%s=%s is shorter than 1ms, the shortest Docker accepts (0 means the default)" % (option, value))
    return nanos


def _retries(value):
    if not (_DIGITS.match(value) and int(value) <= _MAX_INT32):
        raise InvalidInput("HEALTHCHECK --retries=%s is not a number from 0 to %d in ASCII digits" % (_shown(value), _MAX_INT32))
    return int(value)


def _health_options(rest):
    """The --name=value options before the command -> (check dict, the rest)."""
    check = {}
    while rest.startswith("--"):
        word, rest = _split_keyword(rest)
        option, separator, value = word[2:].partition("=")
        key = _HEALTH_DURATIONS.get(option) or ("Retries" if option == "retries" else None)
        if key is None or not separator:
            raise InvalidInput("unknown or invalid HEALTHCHECK option --%s" % _shown(option))
        if key in check:
            raise InvalidInput("HEALTHCHECK --%s is given twice" % option)
        check[key] = _retries(value) if key == "Retries" else _duration(value, option)
    return check, rest


def _healthcheck(config, rest):
    if _upper(rest) == "NONE":
        config["Healthcheck"] = {"Test": ["NONE"]}
        return
    check, rest = _health_options(rest)
    keyword, argument = _split_keyword(rest)  # the command itself is kept exactly as written
    if _upper(keyword) != "CMD" or not argument.strip():
        raise InvalidInput("HEALTHCHECK needs NONE or CMD <command>")
    exec_form = _json_list(argument.strip())
    check["Test"] = ["CMD"] + exec_form if exec_form is not None else ["CMD-SHELL", argument.strip()]
    config["Healthcheck"] = check


_HANDLERS = {
    "CMD": _cmd, "ENTRYPOINT": _entrypoint, "ENV": _env, "EXPOSE": _expose, "HEALTHCHECK": _healthcheck,
    "LABEL": _label, "ONBUILD": _onbuild, "SHELL": _shell, "STOPSIGNAL": _stopsignal, "USER": _user,
    "VOLUME": _volume, "WORKDIR": _workdir,
}
