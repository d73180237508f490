# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fan-out: who passes which archive to whom, in each round.

The controller sends each archive to at most `seeds` hosts (round 0). From then on every host that
holds a verified copy passes it to one host that lacks it, so the holders double each round and N
hosts are served in about log2(N) rounds. Within a round a host sends at most one archive and
receives at most one: its link is never shared, so a round lasts about one transfer.

With `relay` (the role's default) a host also passes an archive on while it is still receiving it:
its share streams the growing file to the next host, so a round forms chains that start at the
holders and run through every host that lacks the archive. One relay round then serves N hosts
in about the time of one transfer, whatever N is, instead of log2(N) rounds. A chain is only as
sound as its links: when one fails, the hosts after it fail too (every receiver checks the
manifest's sha256, so nothing unverified is kept) and the next round serves them from the many
holders there are by then.

The plan is made again before every round from what the hosts really hold, so a transfer that
failed only delays that receiver: it is given another holder, never the one that failed it
again, and what is still missing after the last round comes from the controller.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

CONTROLLER = "controller"
# Rounds beyond the planned ones, for receivers whose transfer failed; after them the controller
# sends whatever is still missing.
SPARE_ROUNDS = 2


def _held(host: Mapping[str, Any]) -> set:
    return {record["path"] for record in host.get("got") or []}


def _refused_senders(host: Mapping[str, Any]) -> set:
    return {record["source"] for record in host.get("failed") or [] if record["source"] != CONTROLLER}


def _controller_copies(hosts: Mapping[str, Mapping[str, Any]]) -> dict:
    copies: dict = {}
    for host in hosts.values():
        for record in host.get("got") or []:
            if record["source"] == CONTROLLER:
                copies[record["path"]] = copies.get(record["path"], 0) + 1
    return copies


def next_round(hosts: Mapping[str, Mapping[str, Any]], sizes: Mapping[str, int], seeds: int,
               can_send: Iterable[str] | None = None, seeding: bool = True, relay: bool = False) -> dict:
    """The transfers of the next round, by receiver: {host: [{path, source}]}.

    hosts: each host taking part, with `needs` (the archive paths it lacks), `got` (what it received
    this run: path, source) and `failed` (transfers that failed: path, source). sizes: bytes per
    path; the largest archives are placed first, since they take longest. can_send: the hosts
    whose share runs (all when None); the others only receive. seeding: whether the controller may
    send (round 0); later rounds are peer to peer, and the controller sends what is left at the end.
    relay: a receiver of this round that can send passes the archive on as it arrives (chains).
    Hosts are taken in the order of `hosts` (the play's). A relay's chains follow it: each
    receiver's sender comes before it, so Ansible starts the sender's fetch first also when it runs
    fewer forks than there are hosts.
    """
    senders = set(hosts) if can_send is None else set(can_send)
    held = {name: _held(host) for name, host in hosts.items()}
    refused = {name: _refused_senders(host) for name, host in hosts.items()}
    copies = _controller_copies(hosts)
    sending: set = set()
    receiving: set = set()
    transfers: dict = {}
    paths = sorted({p for host in hosts.values() for p in host.get("needs") or []}, key=lambda p: (-sizes.get(p, 0), p))
    names = list(hosts)  # the play's order
    position = {name: index for index, name in enumerate(names)}
    for path in paths:
        lacking = [n for n in names if path in (hosts[n].get("needs") or []) and path not in held[n]]
        holders = [n for n in names if path in held[n] and n in senders]
        if not any(path in held[n] for n in hosts):
            if not seeding:
                continue
            # Seeds: at most `seeds` copies of each archive, spread over the hosts (those given the
            # fewest seeds so far first, then those that can pass the archive on). The controller's
            # link is the one they share, so a host may take several.
            quota = max(0, seeds - copies.get(path, 0))
            candidates = sorted(lacking, key=lambda n: (len(transfers.get(n, [])), n not in senders, position[n]))
            for receiver in candidates[:quota]:
                receiving.add(receiver)
                transfers.setdefault(receiver, []).append({"path": path, "source": CONTROLLER})
            continue
        if relay:  # those that cannot pass the archive on end the chains
            lacking = [n for n in lacking if n in senders] + [n for n in lacking if n not in senders]
        for receiver in lacking:
            if receiver in receiving:
                continue
            # The holders in order, then (relay) this round's receivers in the order they were
            # served: each new link hangs on the shortest chain, so chains grow evenly. A sender
            # still receiving comes before its receiver in the play's order.
            sender = next((h for h in holders if h not in sending and h not in refused[receiver]
                           and (path in held[h] or position[h] < position[receiver])), None)
            if sender is None:
                continue
            sending.add(sender)
            receiving.add(receiver)
            transfers.setdefault(receiver, []).append({"path": path, "source": sender})
            if relay and receiver in senders:
                holders.append(receiver)
    return transfers


def schedule(needs: Mapping[str, Iterable[str]], sizes: Mapping[str, int], seeds: int, relay: bool = False) -> dict:
    """The rounds if every transfer succeeds: {rounds, receipts: {host: [{path, source, round}]},
    controller_copies}. Check mode reports it; the role runs this many rounds and SPARE_ROUNDS more."""
    hosts = {name: {"needs": sorted(set(paths)), "got": [], "failed": []} for name, paths in needs.items()}
    number = 0
    while True:
        transfers = next_round(hosts, sizes, seeds, seeding=number == 0, relay=relay)
        if not transfers:
            break
        for receiver, items in transfers.items():
            hosts[receiver]["got"].extend(dict(item, round=number) for item in items)
        number += 1
    return {"rounds": number,
            "receipts": {name: host["got"] for name, host in hosts.items() if host["got"]},
            "controller_copies": sum(_controller_copies(hosts).values())}


def with_details(transfers: Mapping[str, list], archives: Iterable[Mapping[str, Any]], shares: Mapping[str, Mapping]) -> dict:
    """The round's transfers with what the receiver needs to make them: the manifest's size and
    checksums, and the sending peer's share (address and port). In check mode an archive the source
    has not written yet has no entry: its size and checksums are None."""
    entries = {a["path"]: a for a in archives}
    described = {}
    for receiver, items in transfers.items():
        described[receiver] = []
        for item in items:
            entry = entries.get(item["path"]) or {"sidecar": {}}
            detail = dict(item, sha256=entry.get("sha256"), size=entry.get("size"), sidecar_sha256=entry["sidecar"].get("sha256"))
            if item["source"] != CONTROLLER:
                detail.update(address=shares[item["source"]]["address"], port=shares[item["source"]]["port"])
            described[receiver].append(detail)
    return described


def worth_it(needs: Mapping[str, Iterable[str]], sizes: Mapping[str, int], seeds: int, min_bytes: int) -> bool:
    """Whether to fan out: more hosts lack something than the controller seeds, and what the
    controller would send to every host itself weighs at least min_bytes. Below that the rounds'
    own cost (a few seconds of tasks) exceeds what they save."""
    receivers = [paths for paths in needs.values() if paths]
    star = sum(sizes.get(p, 0) for paths in receivers for p in set(paths))
    return len(receivers) > seeds and star >= min_bytes


def still_lacking(host: Mapping[str, Any]) -> list:
    """The paths a host still lacks after the rounds: the controller sends them."""
    held = _held(host)
    return sorted(p for p in host.get("needs") or [] if p not in held)


def ideal_rounds(receivers: int, seeds: int, relay: bool = False) -> int:
    """Rounds a single archive needs for `receivers` hosts: one to seed, then doubling, or (relay)
    one round of chains."""
    if receivers <= 0:
        return 0
    seeds = max(1, min(seeds, receivers))
    if relay:
        return 1 + (receivers > seeds)
    return 1 + max(0, math.ceil(math.log2(receivers / seeds)))


def round_records(transfers: Iterable[Mapping[str, Any]], results: Iterable[Mapping[str, Any]], number: int) -> dict:
    """What a host's transfers of one round amount to: {got: [...], failed: [...]}, each record with
    path, source, round, and bytes and seconds (got) or reason (failed). results: the registered
    results of the transfers, in the same order (a skipped or missing one counts as failed)."""
    transfers, results = list(transfers), list(results)
    got, failed = [], []
    for transfer, result in zip(transfers, results + [None] * len(transfers)):
        record = {"path": transfer["path"], "source": transfer["source"], "round": number}
        if result and not result.get("failed") and not result.get("skipped"):
            got.append(dict(record, bytes=int(result.get("bytes") or 0), seconds=float(result.get("seconds") or 0)))
        else:
            reason = (result or {}).get("msg") or "the transfer did not run"
            failed.append(dict(record, reason=str(reason)))
    return {"got": got, "failed": failed}


def sources_report(host: Mapping[str, Any], pushed: Mapping[str, int], sizes: Mapping[str, int]) -> list:
    """Where each archive a host received came from: [{path, source, round, bytes, replacing}].

    pushed: bytes by path of what the controller sent after the rounds (replacing failed or missing
    peers); `replacing` names the peers whose transfer of that path failed. sizes stand in for the
    bytes of planned transfers (check mode)."""
    records = [{"path": r["path"], "source": r["source"], "round": r["round"], "bytes": r.get("bytes", sizes.get(r["path"], 0)),
                "replacing": []} for r in host.get("got") or []]
    failed = host.get("failed") or []
    for path, count in pushed.items():
        records.append({"path": path, "source": CONTROLLER, "round": None, "bytes": count,
                        "replacing": sorted({f["source"] for f in failed if f["path"] == path})})
    return records
