"""Benchmark reports: raw JSON, a Markdown table with the targets, and a chart."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

MIB = 1 << 20


def module_ratios(entries, entry):
    """The module's own time over the reference's, round by round ([] without module times)."""
    reference = next((e for e in entries if e["case"] == entry["case"] and e["reference"]), None)
    if not entry.get("module_seconds") or reference is None:
        return []
    return [m / r for m, r in zip(entry["module_seconds"], reference["seconds"])]


def module_ratio(entries, entry):
    """Median over pairs of the module's own time to the reference's time (None without module times)."""
    ratios = module_ratios(entries, entry)
    return statistics.median(ratios) if ratios else None


def spread(ratios, limit):
    """How the rounds of a ratio target went: a median this close to its limit is told from the
    noise only beside the rounds' range."""
    within = sum(1 for ratio in ratios if ratio <= limit)
    return "%d rounds, %.2fx to %.2fx; %d within %.2fx" % (len(ratios), min(ratios), max(ratios), within, limit)


def _entry(entries, case, tool):
    return next((e for e in entries if e["case"] == case and e["tool"] == tool), None)


def _targets(entries, archive_sizes, storage, floor=None):
    """[(target, figure, met, note)] for one engine's entries."""
    rows = []

    def ratio(case, tool):
        entry = _entry(entries, case, tool)
        return entry["ratio_median"] if entry else None

    def own(case, tool):
        entry = _entry(entries, case, tool)
        return module_ratios(entries, entry) if entry else []

    def add_module_time(text, ratios, limit):
        if ratios:
            # Three decimals: a median of 1.052x is missed, and "1.05x" beside MISSED would not say why.
            add(text, statistics.median(ratios), limit, "%.3fx", note=spread(ratios, limit))

    def add(text, value, limit, fmt="%.2fx", lower=True, note=""):
        if value is None:
            return
        rows.append((text, fmt % value, value <= limit if lower else value >= limit, note))

    # A run that left the CLI out (--tool) has no figure against it.
    # Both against the uncompressed `docker save -o`: compression must not slow the save (issue 17).
    for label, tool, limit in (("none", "image_archive none", 1.05), ("zstd", "image_archive zstd", 1.10)) if _entry(
            entries, "cold save", "docker save -o") else ():
        add_module_time("cold save, %s <= %.2fx docker save -o (module time)" % (label, limit), own("cold save", tool), limit)
        add("cold save, %s <= %.2fx docker save -o (whole playbook)" % (label, limit), ratio("cold save", tool), limit)
    if archive_sizes.get("ours.tar") and archive_sizes.get("ours.tar.zst"):
        note = ("the containerd store's `docker save` streams layers gzip-compressed, as it stores them, so the .tar is not "
                "uncompressed and zstd cannot shrink it" if storage == "containerd" else "")
        add("zstd archive <= 0.40x uncompressed .tar", archive_sizes["ours.tar.zst"] / archive_sizes["ours.tar"], 0.40, note=note)
    for case in ("warm save", "warm load"):
        ours = _entry(entries, case, "image_archive")
        if ours and ours["module_median"] is not None:
            add("%s: module time <= 0.25 s" % case, ours["module_median"], 0.25, "%.3f s")
    load_ours = _entry(entries, "warm load", "image_archive")
    load_theirs = _entry(entries, "warm load", "community.docker docker_image_load")
    save_ours = _entry(entries, "warm save", "image_archive")
    for label, ours in (("warm save", save_ours), ("warm load", load_ours)):
        if ours and load_theirs:
            add("%s: playbook >= 5x faster than docker_image_load" % label, load_theirs["median"] / ours["median"], 5.0, "%.1fx", lower=False,
                note=("an empty playbook alone takes %.2f s here; 5x would need docker_image_load to take %.1f s"
                      % (floor, 5 * ours["median"])) if floor else "")
    cold_zstd = _entry(entries, "cold load", "image_archive from .tar.zst")
    cold_cli = _entry(entries, "cold load", "docker load -i")
    if cold_zstd and cold_cli:
        add_module_time("cold load from zstd <= 1.05x docker load -i (module time)", module_ratios(entries, cold_zstd), 1.05)
        add("cold load from zstd <= 1.05x docker load -i (whole playbook)", cold_zstd["ratio_median"], 1.05)
    for case, tool in (("cold save", "image_archive zstd"), ("cold load", "image_archive from .tar.zst")):
        plain, watched = _entry(entries, case, tool), _entry(entries, case, tool + ", progress_file")
        if plain and watched and plain["median"]:
            # Both ran in the same rounds, one after the other: the median of the per-round ratios.
            pairs = [w / p for w, p in zip(watched["seconds"], plain["seconds"])]
            add("%s with progress_file <= 1.03x without (whole playbook)" % case, statistics.median(pairs), 1.03,
                note="median of %d rounds, %.2fx to %.2fx" % (len(pairs), min(pairs), max(pairs)))
    peaks = [e["peak_rss"] for e in entries if e["tool"].startswith(("image_archive", "container_archive")) and e["peak_rss"]]
    if peaks:
        add("peak RSS of the module <= 100 MB", max(peaks) / 1e6, 100, "%.0f MB")
    return rows


def markdown(results):
    size = results["size_bytes"] / MIB
    lines = ["# Benchmark results", "",
             "Image of %.0f MiB from real files, %d recorded rounds after %d warm-up round(s), tools interleaved round by round%s. "
             "Started %s." % (size, results["rounds"], results["warmup"],
                              # Recorded by the run: results of runs before the rotation must not claim it.
                              ", each round starting with the next tool" if results.get("rotated") else "", results["started"]), "",
             "Machine: %(cpu)s, %(cores)s cores, %(memory_gib)s GiB, disk `%(disk)s`, kernel %(kernel)s." % results["machine"], "",
             "Wall times are whole processes: the CLI command, or the whole `ansible-playbook` run for a module. "
             "`module s` is the module's own `stats.seconds`; `module ratio` compares it with the reference in the same round. "
             "`engine's first byte s` is the part of a save's module time spent waiting for the engine's first byte "
             "(`stats.engine_wait_seconds`). "
             "`CPU s` is the CPU time of the CLI process or of the module's process (not of `ansible-playbook`, nor of the engine). "
             "`sync` runs before every timed step, and a cold load's archive is dropped from the page cache first, "
             "so that every tool reads its archive from the disk. "
             "An `ansible-playbook` run that does nothing takes %s s on this machine." % results["machine"].get("playbook_floor_seconds", "?"), ""]
    for engine, facts in results["engines"].items():
        entries = [e for e in results["cases"] if e["engine"] == engine]
        lines += ["## %s engine: Docker %s, %s image store" % (engine, facts["version"], facts["storage"]), "",
                  "| case | tool | each round s | median s | ratio to reference (median of pairs) | module s | module ratio | "
                  "engine's first byte s | CPU s | peak RSS MB |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for e in entries:
            own = module_ratio(entries, e)
            cpu = (e.get("metrics_median") or {}).get("cpu_seconds")
            wait = (e.get("metrics_median") or {}).get("engine_wait_seconds")
            lines.append("| %s | %s%s | %s | %.2f | %.2fx | %s | %s | %s | %s | %s |" % (
                e["case"], e["tool"], " (reference)" if e["reference"] else "", " ".join("%.2f" % t for t in e["seconds"]), e["median"],
                e["ratio_median"], "%.3f" % e["module_median"] if e["module_median"] is not None else "",
                "{:.2f}x".format(own) if own is not None else "", "%.2f" % wait if wait is not None else "",
                "%.2f" % cpu if cpu is not None else "",
                "%.0f" % (e["peak_rss"] / 1e6) if e["peak_rss"] else ""))
        sizes = facts.get("archive_sizes") or {}
        if sizes:
            lines += ["", "Archive sizes: " + ", ".join("%s %.0f MiB" % (k, v / MIB) for k, v in sorted(sizes.items()))]
        targets = _targets(entries, sizes, facts.get("storage"), results["machine"].get("playbook_floor_seconds"))
        if targets:
            lines += ["", "| target | measured | | note |", "|---|---:|---|---|"]
            lines += ["| %s | %s | %s | %s |" % (text, figure, "met" if met else "**MISSED**", note) for text, figure, met, note in targets]
        lines.append("")
    if not results["engines"]:
        lines += ["The save, load and container cases were not run (`--cases delta`).", ""]
    if results.get("delta"):
        lines += delta_markdown(results["delta"])
    return "\n".join(lines)


# Delta migration (bench/delta.py) -------------------------------------------------------------

DELTA_TOOLS = {  # tool -> (role in the comparison, chart colour)
    "full": "#868e96", "other": "#1971c2", "delta": "#2b8a3e", "context": "#8ce99a"}


def _delta_kind(entry):
    if entry["reference"]:
        return "full"
    if "(context)" in entry["tool"]:
        return "context"
    if entry["tool"].startswith(("image_archive delta", "migrate role")):
        return "delta"
    return "other"


def _size(value):
    if value is None:
        return ""
    return "{:,} B".format(int(value)) if value < MIB else "%.1f MiB" % (value / MIB)


def _speedups(entry):
    """Full time / this tool's time, per round (the reference ran in the same round)."""
    return [1 / r for r in entry["ratios"] if r]


def _median(values):
    values = sorted(values)
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def _cell(text):
    return text.replace("|", "\\|")


def _faster(entry):
    speedup = _median(_speedups(entry))
    return "" if entry["reference"] or speedup is None else "%.1fx" % speedup


def _metric(entry, key):
    return (entry.get("metrics_median") or {}).get(key) if entry else None


def delta_targets(delta):
    """[(level, receiver, full entry, delta entry, speedup, speed met, bytes moved, budget, bytes met)]."""
    budget = delta["versions"]["changed_layer_bytes"] + delta["target"]["slack_bytes"]
    limit = delta["target"]["speedup"]
    rows = []

    def add(level, receiver, full, thin, moved):
        if full is None or thin is None:
            return
        speedup = _median(_speedups(thin))
        rows.append((level, receiver, full, thin, speedup, speedup >= limit, moved, budget, moved is not None and moved <= budget))

    for engine in dict.fromkeys(e["engine"] for e in delta["module"]):
        entries = [e for e in delta["module"] if e["engine"] == engine]
        full = next((e for e in entries if e["reference"]), None)
        thin = next((e for e in entries if _delta_kind(e) == "delta"), None)
        add("modules", "%s engine (%s store)" % (engine, delta["receivers"][engine]["storage"]), full, thin, _metric(thin, "archive_bytes"))
    full = next((e for e in delta["role"] if e["reference"]), None)
    thin = next((e for e in delta["role"] if _delta_kind(e) == "delta"), None)
    for host in ("tgt-classic", "tgt-modern"):
        add("migrate role", host, full, thin, _metric(thin, "bytes_sent %s" % host))
    return rows


def _delta_notes(delta):
    """Where the time goes, from the figures (the reasons a target is missed are read from these)."""
    notes = []
    floors = delta["floors"]
    for engine in dict.fromkeys(e["engine"] for e in delta["module"]):
        entries = [e for e in delta["module"] if e["engine"] == engine]
        full = next((e for e in entries if _delta_kind(e) == "full"), None)
        thin = next((e for e in entries if _delta_kind(e) == "delta"), None)
        cut = next((e for e in entries if _delta_kind(e) == "context"), None)
        if not (full and thin):
            continue
        text = ("**%s, modules:** full %.2f s: one playbook (an empty one takes %.2f s) whose save takes %.2f s of module time and "
                "whose load %.2f s, sending %s to the engine. Delta %.2f s: the receiver's inventory (%.2f s), the thin save (%.2f s, "
                "reading %s of `docker save` from the source engine to keep the top layer) and the thin load (%.2f s, %s to the engine)." % (
                    engine, full["median"], floors.get("playbook_seconds", 0), _metric(full, "save_module_s") or 0,
                    _metric(full, "load_module_s") or 0, _size(_metric(full, "bytes_to_engine")), thin["median"],
                    _metric(thin, "inventory_module_s") or 0, _metric(thin, "save_module_s") or 0, _size(_metric(thin, "bytes_from_engine")),
                    _metric(thin, "load_module_s") or 0, _size(_metric(thin, "bytes_to_engine"))))
        if cut:
            text += (" Cut out of a full archive made beforehand (`from_archive`, reading %s of archive, %.2f s), the delta takes "
                     "%.2f s, %.1fx faster than the full migration." % (
                         _size(_metric(cut, "archive_bytes_read")), _metric(cut, "save_module_s") or 0, cut["median"], _median(_speedups(cut))))
        notes.append(text)
    role = {_delta_kind(e): e for e in delta["role"]}
    if role.get("delta"):
        text = "**migrate role:** delta %.2f s" % role["delta"]["median"]
        if role.get("full"):
            text += ", full %.2f s" % role["full"]["median"]
        text += (" (one playbook for both targets per run, in which the source first saves the whole image: its staging directory "
                 "is emptied between runs). A playbook that only pings the three fleet hosts takes %.2f s" % floors.get("fleet_playbook_seconds", 0))
        if floors.get("role_up_to_date_seconds"):
            text += "; the role with nothing to send (targets up to date, source archive current) takes %.2f s" % floors["role_up_to_date_seconds"]
        if role.get("full"):
            text += "; %.0fx faster than the full run means %.2f s" % (delta["target"]["speedup"], role["full"]["median"] / delta["target"]["speedup"])
        text += "."
        if role.get("context"):
            text += " With the source's archive of v2 kept from the run before (no save), the delta takes %.2f s." % role["context"]["median"]
        notes.append(text)
    return notes


def delta_markdown(delta):
    versions = delta["versions"]
    source = delta["source"]
    lines = ["## Delta migration", "",
             "v1 and v2: the %.0f MiB data image plus one top layer of %s random bytes each, built `FROM` the same base "
             "(%s) on the source engine (Docker %s, %s store). Each receiver holds v1, loaded from a full archive of the source, "
             "and not v2 when a migration starts. v2 has %d layers; %d changed from v1, %s as `docker save` writes them. "
             "%d recorded rounds after %d warm-up round(s), tools interleaved round by round. Started %s." % (
                 delta["size_bytes"] / MIB, "{:,}".format(versions["top_bytes"]), versions["base"], source["version"], source["storage"],
                 versions["layers"], versions["changed_layers"], _size(versions["changed_layer_bytes"]), delta["rounds"], delta["warmup"],
                 delta["started"]), "",
             "Targets (issue): bytes moved per target <= changed layers + 1 MiB; the delta migration >= %.0fx faster than the full "
             "one in the same run (median over rounds of full / delta)." % delta["target"]["speedup"], "",
             "| level | receiver | full s | delta s | faster | >= %.0fx | bytes moved | changed layers + 1 MiB | bytes |" % delta["target"]["speedup"],
             "|---|---|---:|---:|---:|---|---:|---:|---|"]
    for level, receiver, full, thin, speedup, fast, moved, budget, small in delta_targets(delta):
        lines.append("| %s | %s | %.2f | %.2f | %.1fx | %s | %s | %s | %s |" % (
            level, receiver, full["median"], thin["median"], speedup, "met" if fast else "**MISSED**", _size(moved), _size(budget),
            "met" if small else "**MISSED**"))
    lines += ["", "Bytes moved: the thin archive (modules); `migrate_report.bytes_sent` of the target, archive and sidecar (role). "
              "The role's times are one playbook delivering to both targets.", ""]
    notes = _delta_notes(delta)
    if notes:
        lines += ["Where the time goes:", ""] + ["- " + note for note in notes] + [""]
    if delta["module"]:
        lines += ["### Modules: source engine -> receiver engine, one playbook (or one pipeline) per migration", "",
                  "| receiver | tool | min s | median s | max s | faster than full | module s | archive | to the engine |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for e in delta["module"]:
            lines.append("| %s | %s%s | %.2f | %.2f | %.2f | %s | %s | %s | %s |" % (
                e["engine"], _cell(e["tool"]), " (reference)" if e["reference"] else "", e["min"], e["median"], e["max"], _faster(e),
                "%.2f" % e["module_median"] if e["module_median"] is not None else "", _size(_metric(e, "archive_bytes")),
                _size(_metric(e, "bytes_to_engine"))))
        lines.append("")
    if delta["role"]:
        hosts = ("tgt-classic", "tgt-modern")
        lines += ["### migrate role on the fleet: src -> tgt-classic and tgt-modern, ANSIBLE_PIPELINING=True", "",
                  "| variant | min s | median s | max s | faster than full | %s | thin archives | fallbacks |" % " | ".join(
                      "bytes sent to %s (full: bytes_full)" % h for h in hosts),
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for e in delta["role"]:
            lines.append("| %s%s | %.2f | %.2f | %.2f | %s | %s | %d | %d |" % (
                _cell(e["tool"]), " (reference)" if e["reference"] else "", e["min"], e["median"], e["max"], _faster(e),
                " | ".join("%s (%s)" % (_size(_metric(e, "bytes_sent %s" % h)), _size(_metric(e, "bytes_full %s" % h))) for h in hosts),
                sum(_metric(e, "thin %s" % h) or 0 for h in hosts), sum(_metric(e, "fallback %s" % h) or 0 for h in hosts)))
        floors = delta["floors"]
        up_to_date = floors.get("role_up_to_date_seconds")
        lines += ["", "For context: an empty playbook on localhost takes %s s; one that pings the fleet hosts %s s; the role with "
                  "nothing to send %s." % (floors.get("playbook_seconds", "?"), floors.get("fleet_playbook_seconds", "?"),
                                           "%s s" % up_to_date if up_to_date else "was not measured (smoke run)"), ""]
    return lines


def delta_chart(axis, delta):
    groups = [("%s engine\n(modules)" % engine, [e for e in delta["module"] if e["engine"] == engine])
              for engine in dict.fromkeys(e["engine"] for e in delta["module"])]
    if delta["role"]:
        groups.append(("fleet, both targets\n(migrate role)", delta["role"]))

    def name(e):
        return (e["tool"].replace("community.docker docker_image_export + docker_image_load", "c.d. export + load")
                .replace("delta cut from a kept full archive", "cut from a kept archive").replace("image_archive ", "")
                .replace("migrate role, ", ""))

    _bar_groups(axis, groups, lambda e: DELTA_TOOLS[_delta_kind(e)], name)
    axis.set_title("delta migration: v1 -> v2 of a %.0f MiB image, %s changed" % (
        delta["size_bytes"] / MIB, _size(delta["versions"]["changed_layer_bytes"])))
    axis.margins(y=0.6)
    from matplotlib.patches import Patch

    handles = [Patch(color=DELTA_TOOLS[kind]) for kind in ("full", "other", "delta", "context")]
    axis.legend(handles, ["airgap.docker full (reference)", "Docker CLI, community.docker (full)", "airgap.docker delta",
                          "delta, for context"], loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4, fontsize=8)


def _bar_groups(axis, groups, color_of, name_of):
    """One bar per entry (median, with min-max whiskers), grouped and labelled under each group."""
    position, ticks, labels = 0, [], []
    for label, entries in groups:
        start = position
        for e in entries:
            axis.bar(position, e["median"], color=color_of(e), yerr=[[e["median"] - e["min"]], [e["max"] - e["median"]]], capsize=2)
            axis.text(position, e["max"], " " + name_of(e), rotation=90, va="bottom", ha="center", fontsize=7)
            position += 1
        ticks.append((start + position - 1) / 2)
        labels.append(label)
        position += 1
    axis.set_xticks(ticks)
    axis.set_xticklabels(labels)
    axis.set_ylabel("seconds (median, min-max)")


def _suite_color(entry):
    ours = entry["tool"].startswith(("image_archive", "container_archive"))
    return "#2b8a3e" if ours else ("#868e96" if entry["reference"] else "#1971c2")


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    engines = list(results["engines"])
    delta = results.get("delta")
    rows = len(engines) + (1 if delta else 0)
    figure, axes = plt.subplots(rows, 1, figsize=(13, 4.8 * rows), squeeze=False)
    if delta:
        delta_chart(axes[-1, 0], delta)
    for axis, engine in zip(axes[:, 0], engines):
        entries = [e for e in results["cases"] if e["engine"] == engine]
        groups = [(case, [e for e in entries if e["case"] == case]) for case in dict.fromkeys(e["case"] for e in entries)]
        _bar_groups(axis, groups, _suite_color, lambda e: e["tool"].replace("community.docker ", "c.d. "))
        facts = results["engines"][engine]
        axis.set_title("%s: Docker %s, %s image store, %.0f MiB image" % (engine, facts["version"], facts["storage"], results["size_bytes"] / MIB))
        axis.margins(y=0.45)
    if engines:
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ("#868e96", "#1971c2", "#2b8a3e")]
        figure.legend(handles, ["Docker CLI (reference)", "community.docker", "airgap.docker"], loc="upper center", ncol=3)
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_files(results, directory, stem, to_markdown, to_chart):
    """directory/stem.json (the raw results), stem.md and, where matplotlib is installed, stem.png."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / (stem + ".json")).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (directory / (stem + ".md")).write_text(to_markdown(results).rstrip("\n") + "\n")
    try:
        to_chart(results, directory / (stem + ".png"))
    except ImportError:
        print("matplotlib is not installed here; no chart")


def write_reports(results, directory):
    write_files(results, directory, "latest", markdown, chart)
