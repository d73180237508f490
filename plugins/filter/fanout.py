# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migrate role's fan-out as filters; the decisions live in module_utils.fanout_plan.

The batch's fan-out state is one dictionary, set once per round for all hosts (set_fact with
run_once): each host's needs, what it got and what failed, and the transfers of the round under
way. Each round's results are read back from what every host registered.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.airgap.docker.plugins.module_utils import fanout_plan


def _require(condition, name, expected):
    if not condition:
        raise AnsibleFilterError("%s expects %s." % (name, expected))


def _whole(value, name, option, least):
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = least - 1
    _require(number >= least, name, "%s to be a whole number of at least %d, not %r" % (option, least, value))
    return number


def _sizes(archives, name):
    _require(isinstance(archives, list) and all(isinstance(a, Mapping) and {"path", "size", "sha256", "sidecar"} <= set(a)
                                                for a in archives), name, "the manifest's archives")
    return {a["path"]: int(a["size"]) for a in archives}


def _needs(hostvars, batch, name):
    """The archive paths each host of the batch lacks, from its delivery plan (hosts lacking nothing left out)."""
    _require(isinstance(hostvars, Mapping), name, "hostvars")
    _require(isinstance(batch, list), name, "ansible_play_batch")
    needs = {}
    for host in batch:
        plan = hostvars[host].get("__migrate_plan") if host in hostvars else None
        files = sorted({d["file"] for d in (plan or {}).get("deliveries") or []})
        if files:
            needs[host] = files
    return needs


def migrate_fanout_wanted(hostvars, batch, archives, seeds, min_bytes=0):
    """Whether the batch fans out: more hosts lack something than the controller seeds, and the
    copies the controller would otherwise send weigh at least min_bytes."""
    needs = _needs(hostvars, batch, "migrate_fanout_wanted")
    return fanout_plan.worth_it(needs, _sizes(archives, "migrate_fanout_wanted"),
                                _whole(seeds, "migrate_fanout_wanted", "migrate_fanout_seeds", 1),
                                _whole(min_bytes, "migrate_fanout_wanted", "migrate_fanout_min_bytes", 0))


def migrate_fanout_plan(hostvars, batch, archives, seeds, relay=False):
    """The batch's state before round 0: each host's needs, the rounds if every transfer succeeds
    (what check mode reports), and round 0's seeds from the controller. relay: hosts pass archives
    on while they receive them (chains); the later rounds keep to it."""
    name = "migrate_fanout_plan"
    needs = _needs(hostvars, batch, name)
    sizes = _sizes(archives, name)
    seeds = _whole(seeds, name, "migrate_fanout_seeds", 1)
    _require(isinstance(relay, bool), name, "relay to be true or false, not %r" % (relay,))
    hosts = {host: {"needs": paths, "got": [], "failed": []} for host, paths in needs.items()}
    state = fanout_plan.schedule(needs, sizes, seeds, relay=relay)
    # Seeds go to hosts whose share started; in check mode none started, and all count.
    tried = [share for share in (hostvars[h].get("__migrate_share") for h in hosts)
             if isinstance(share, Mapping) and ("port" in share or share.get("failed"))]
    shares = _shares(hostvars, hosts) if tried else None
    state.update(hosts=hosts, relay=relay, spare_rounds=fanout_plan.SPARE_ROUNDS, failures=0, round_number=0, next_number=1,
                 round=fanout_plan.with_details(fanout_plan.next_round(hosts, sizes, seeds, can_send=shares, relay=relay), archives, {}))
    return state


def migrate_fanout_host(state, host, check_mode=False):
    """A host's part of the state, for its report: in check mode, what the plan says it would get."""
    _require(isinstance(state, Mapping), "migrate_fanout_host", "the batch's fan-out state (migrate_fanout_plan)")
    mine = dict((state.get("hosts") or {}).get(host) or {})
    if mine and check_mode:
        mine["got"] = list((state.get("receipts") or {}).get(host) or [])
    return mine


def _registered(hostvars, host, name):
    value = hostvars[host].get(name) if host in hostvars else None
    return list(value.get("results") or []) if isinstance(value, Mapping) else []


def _shares(hostvars, hosts):
    shares = {}
    for host in hosts:
        share = hostvars[host].get("__migrate_share") if host in hostvars else None
        if isinstance(share, Mapping) and not share.get("failed") and share.get("port"):
            shares[host] = {"address": share["address"], "port": share["port"]}
    return shares


def migrate_fanout_advance(state, hostvars, batch, archives, seeds, plan_next=True):
    """Record the round under way, if any, from what each host registered (__migrate_round_pushed,
    __migrate_round_fetched), drop hosts that left the batch, and plan the next round (peers only)
    if plan_next. Recording twice is harmless: a recorded round is no longer under way."""
    name = "migrate_fanout_advance"
    _require(isinstance(state, Mapping) and isinstance(state.get("hosts"), Mapping) and isinstance(state.get("round"), Mapping),
             name, "the batch's fan-out state (migrate_fanout_plan)")
    _require(isinstance(hostvars, Mapping) and isinstance(batch, list), name, "hostvars and ansible_play_batch")
    sizes = _sizes(archives, name)
    hosts = {}
    for host, host_state in state["hosts"].items():
        if host not in batch:
            continue  # failed or unreachable: neither sends nor receives any more
        transfers = state["round"].get(host) or []
        if transfers:
            results = {}
            for result in _registered(hostvars, host, "__migrate_round_pushed") + _registered(hostvars, host, "__migrate_round_fetched"):
                item = result.get("item")
                if isinstance(item, Mapping):
                    results[(item.get("source"), item.get("path"))] = result
            outcome = fanout_plan.round_records(transfers, [results.get((t["source"], t["path"])) for t in transfers],
                                                state["round_number"])
            host_state = dict(host_state, got=list(host_state["got"]) + outcome["got"],
                              failed=list(host_state["failed"]) + outcome["failed"])
        hosts[host] = host_state
    following = dict(state, hosts=hosts, round={}, round_number=None, failures=sum(len(h["failed"]) for h in hosts.values()))
    if plan_next:
        shares = _shares(hostvars, hosts)
        following["round"] = fanout_plan.with_details(
            fanout_plan.next_round(hosts, sizes, _whole(seeds, name, "migrate_fanout_seeds", 1), can_send=shares, seeding=False,
                                   relay=bool(state.get("relay"))),
            archives, shares)
        following["round_number"] = state["next_number"]
        following["next_number"] = state["next_number"] + 1
    return following


def migrate_fanout_lacking(state, host):
    """What a host still lacks after the rounds; the controller sends it."""
    _require(isinstance(state, Mapping) and isinstance(state.get("hosts"), Mapping), "migrate_fanout_lacking",
             "the batch's fan-out state (migrate_fanout_plan)")
    return fanout_plan.still_lacking(state["hosts"].get(host) or {})


class FilterModule:
    def filters(self):
        filters = (migrate_fanout_wanted, migrate_fanout_plan, migrate_fanout_advance, migrate_fanout_lacking, migrate_fanout_host)
        return {f.__name__: f for f in filters}
