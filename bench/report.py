"""Benchmark reports: raw JSON, a Markdown table with the targets, and a chart."""

from __future__ import annotations

import json
from pathlib import Path

MIB = 1 << 20


def module_ratio(entries, entry):
    """Median over pairs of the module's own time to the reference's time (None without module times)."""
    reference = next((e for e in entries if e["case"] == entry["case"] and e["reference"]), None)
    if not entry.get("module_seconds") or reference is None:
        return None
    ratios = sorted(m / r for m, r in zip(entry["module_seconds"], reference["seconds"]))
    middle = len(ratios) // 2
    return ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2


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
        return module_ratio(entries, entry) if entry else None

    def add(text, value, limit, fmt="%.2fx", lower=True, note=""):
        if value is None:
            return
        rows.append((text, fmt % value, value <= limit if lower else value >= limit, note))

    for label, tool, limit in (("none", "image_archive none", 1.05), ("zstd", "image_archive zstd", 1.15)):
        add("cold save, %s <= %.2fx docker save -o (module time)" % (label, limit), own("cold save", tool), limit)
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
        add("cold load from zstd <= 1.05x docker load -i (module time)", module_ratio(entries, cold_zstd), 1.05)
        add("cold load from zstd <= 1.05x docker load -i (whole playbook)", cold_zstd["ratio_median"], 1.05)
    peaks = [e["peak_rss"] for e in entries if e["tool"].startswith(("image_archive", "container_archive")) and e["peak_rss"]]
    if peaks:
        add("peak RSS of the module <= 100 MB", max(peaks) / 1e6, 100, "%.0f MB")
    return rows


def markdown(results):
    size = results["size_bytes"] / MIB
    lines = ["# Benchmark results", "",
             "Image of %.0f MiB from real files, %d recorded rounds after %d warm-up round(s), tools interleaved round by round. "
             "Started %s." % (size, results["rounds"], results["warmup"], results["started"]), "",
             "Machine: %(cpu)s, %(cores)s cores, %(memory_gib)s GiB, disk `%(disk)s`, kernel %(kernel)s." % results["machine"], "",
             "Wall times are whole processes: the CLI command, or the whole `ansible-playbook` run for a module. "
             "`module s` is the module's own `stats.seconds`; `module ratio` compares it with the reference in the same round. "
             "An `ansible-playbook` run that does nothing takes %s s on this machine." % results["machine"].get("playbook_floor_seconds", "?"), ""]
    for engine, facts in results["engines"].items():
        entries = [e for e in results["cases"] if e["engine"] == engine]
        lines += ["## %s engine: Docker %s, %s image store" % (engine, facts["version"], facts["storage"]), "",
                  "| case | tool | min s | median s | max s | ratio to reference (median of pairs) | module s | module ratio | peak RSS MB |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for e in entries:
            own = module_ratio(entries, e)
            lines.append("| %s | %s%s | %.2f | %.2f | %.2f | %.2fx | %s | %s | %s |" % (
                e["case"], e["tool"], " (reference)" if e["reference"] else "", e["min"], e["median"], e["max"], e["ratio_median"],
                "%.3f" % e["module_median"] if e["module_median"] is not None else "", "%.2fx" % own if own is not None else "",
                "%.0f" % (e["peak_rss"] / 1e6) if e["peak_rss"] else ""))
        sizes = facts.get("archive_sizes") or {}
        if sizes:
            lines += ["", "Archive sizes: " + ", ".join("%s %.0f MiB" % (k, v / MIB) for k, v in sorted(sizes.items()))]
        targets = _targets(entries, sizes, facts.get("storage"), results["machine"].get("playbook_floor_seconds"))
        if targets:
            lines += ["", "| target | measured | | note |", "|---|---:|---|---|"]
            lines += ["| %s | %s | %s | %s |" % (text, figure, "met" if met else "**MISSED**", note) for text, figure, met, note in targets]
        lines.append("")
    return "\n".join(lines)


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    engines = list(results["engines"])
    figure, axes = plt.subplots(len(engines), 1, figsize=(13, 4.8 * len(engines)), squeeze=False)
    for axis, engine in zip(axes[:, 0], engines):
        entries = [e for e in results["cases"] if e["engine"] == engine]
        cases = list(dict.fromkeys(e["case"] for e in entries))
        position = 0
        ticks, labels = [], []
        for case in cases:
            tools = [e for e in entries if e["case"] == case]
            start = position
            for e in tools:
                ours = e["tool"].startswith(("image_archive", "container_archive"))
                color = "#2b8a3e" if ours else ("#868e96" if e["reference"] else "#1971c2")
                axis.bar(position, e["median"], color=color, yerr=[[e["median"] - e["min"]], [e["max"] - e["median"]]], capsize=2)
                axis.text(position, e["max"], " " + e["tool"].replace("community.docker ", "c.d. "), rotation=90, va="bottom", ha="center", fontsize=7)
                position += 1
            ticks.append((start + position - 1) / 2)
            labels.append(case)
            position += 1
        axis.set_xticks(ticks)
        axis.set_xticklabels(labels)
        axis.set_ylabel("seconds (median, min-max)")
        facts = results["engines"][engine]
        axis.set_title("%s: Docker %s, %s image store, %.0f MiB image" % (engine, facts["version"], facts["storage"], results["size_bytes"] / MIB))
        axis.margins(y=0.45)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ("#868e96", "#1971c2", "#2b8a3e")]
    figure.legend(handles, ["Docker CLI (reference)", "community.docker", "airgap.docker"], loc="upper center", ncol=3)
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_reports(results, directory):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "latest.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (directory / "latest.md").write_text(markdown(results) + "\n")
    try:
        chart(results, directory / "latest.png")
    except ImportError:
        print("matplotlib is not installed here; no chart")
