#!/usr/bin/env python3
"""report.py RESULTS.jsonl META.json STARTUP.json [--json OUT] [--markdown]: scripts/bench's table.

RESULTS has one JSON line per measurement: workflow, scenario, run, seconds,
requests, writes, throttled, connections, and cpu_ms/rss_kib/anon_kib/status where
measured; STARTUP is sim.py startup's answer. Prints medians per workflow and
scenario with the ratios to the simulator's floor and kubectl's ratio to
xcsreg (--markdown: as a markdown table); --json writes the same as JSON.
"""
import argparse
import json
import statistics
import sys

WORKFLOWS = [
    ("floor", "floor: raw client, 1 connection"),
    ("xcsreg", "xcsreg run setup.lua"),
    ("xcsreg-role", "xcsreg setup.lua, Role only"),
    ("rollout", "xcsreg rollout.lua (bare map)"),
    ("kubectl", "kubectl apply + get/patch"),
    ("kubectl-naive", "kubectl apply + naive patch"),
]
SCENARIOS = ["full", "unchanged", "rotated"]
COLUMNS = [  # key, text heading, markdown heading, format
    ("scenario", "scenario", "scenario", "%s"),
    ("label", "workflow", "workflow", "%s"),
    ("seconds", "wall s", "wall (s)", "%.3f"),
    ("cpu_ms", "CPU ms", "CPU (ms)", "%.1f"),
    ("requests", "requests", "requests", "%d"),
    ("writes", "writes", "writes", "%d"),
    ("throttled", "429s", "429s", "%d"),
    ("connections", "conns", "connections", "%d"),
    ("rss_mib", "RSS MiB", "peak RSS (MiB)", "%.1f"),
    ("anon_mib", "priv MiB", "private (MiB)", "%.1f"),
    ("x_floor", "x floor", "x floor", "%.2f"),
    ("kubectl_over_xcsreg", "kubectl/x", "kubectl / xcsreg", "%.0fx"),
]


def median(rows, key):
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def summarize(rows):
    table = []
    for scenario in SCENARIOS:
        by = {}
        for wf, label in WORKFLOWS:
            mine = [r for r in rows if r["workflow"] == wf and r["scenario"] == scenario]
            if not mine:
                continue
            rss = max((r["rss_kib"] for r in mine if r.get("rss_kib")), default=None)
            # the sampled private RSS is of the process run: for kubectl, a shell
            anon = None if wf.startswith("kubectl") else max(
                (r["anon_kib"] for r in mine if r.get("anon_kib")), default=None)
            entry = {"scenario": scenario, "workflow": wf, "label": label, "runs": len(mine),
                     "seconds": median(mine, "seconds"), "cpu_ms": median(mine, "cpu_ms"), "requests": median(mine, "requests"),
                     "writes": median(mine, "writes"), "throttled": max(r.get("throttled", 0) for r in mine),
                     "connections": median(mine, "connections"), "rss_kib": rss, "anon_kib": anon,
                     "rss_mib": rss / 1024 if rss else None, "anon_mib": anon / 1024 if anon else None,
                     "failed_runs": sum(1 for r in mine if r.get("status", 0) != 0)}
            by[wf] = entry
            table.append(entry)
        floor, xcsreg = by.get("floor"), by.get("xcsreg")
        for entry in by.values():
            entry["x_floor"] = entry["seconds"] / floor["seconds"] if floor and floor["seconds"] else None
            if entry["workflow"].startswith("kubectl") and xcsreg and xcsreg["seconds"]:
                entry["kubectl_over_xcsreg"] = entry["seconds"] / xcsreg["seconds"]
    return table


def cell(e, key, fmt):
    v = e.get(key)
    return fmt % v if v is not None else "-"


def print_text(meta, startup, table):
    print("N=%d namespaces x M=%d registries, median of %d run(s); %s" % (
        meta["n"], meta["m"], meta["runs"], meta["machine"]))
    print("simulator: %s; throttle: %s; xcsreg concurrency %s" % (meta["simulator"], meta["throttle"],
                                                                 meta["concurrency"]))
    print("start-up, empty script: %.1f ms (/bin/true %.1f ms; median of %d), peak RSS %.1f MiB" % (
        startup["ms"], startup["true_ms"], startup["runs"], startup["rss_kib"] / 1024))
    for c in startup.get("commands", []):
        print("  %s: %.1f ms, peak RSS %.1f MiB" % (c["name"], c["ms"], c["rss_kib"] / 1024))
    print("CPU: user + system time of the command and its children (the floor runs in the bench's own"
          " process: not measured); RSS: peak of the largest process (for kubectl, one kubectl), shared"
          " libraries included; priv: xcsreg's private (anonymous) peak; x floor: wall / the floor's;"
          " kubectl/x: wall / xcsreg's")
    widths = [9, 32, 9, 7, 8, 7, 5, 6, 8, 8, 8, 10]
    head = " ".join(("%-*s" if i < 2 else "%*s") % (w, c[1]) for i, (w, c) in enumerate(zip(widths, COLUMNS)))
    print(head)
    print("-" * len(head))
    for e in table:
        cells = [cell(e, key, fmt) for key, _, _, fmt in COLUMNS]
        line = " ".join(("%-*s" if i < 2 else "%*s") % (w, c) for i, (w, c) in enumerate(zip(widths, cells)))
        print(line + ("  (%d run(s) failed)" % e["failed_runs"] if e["failed_runs"] else ""))


def print_markdown(meta, startup, table):
    print("N = %d namespaces × M = %d registries, median of %d run(s), simulator throttle %s, "
          "xcsreg concurrency %s; %s." % (meta["n"], meta["m"], meta["runs"], meta["throttle"],
                                         meta["concurrency"], meta["machine"]))
    print()
    print("Start-up (`xcsreg run` of an empty script, median of %d): %.1f ms (`/bin/true`: %.1f ms), "
          "peak RSS %.1f MiB." % (startup["runs"], startup["ms"], startup["true_ms"], startup["rss_kib"] / 1024))
    if startup.get("commands"):
        print()
        print("Without a cluster (no libcurl loaded): " + "; ".join(
            "`%s` %.1f ms, %.1f MiB" % (c["name"], c["ms"], c["rss_kib"] / 1024) for c in startup["commands"]) + ".")
    print()
    print("| " + " | ".join(c[2] for c in COLUMNS) + " |")
    print("|" + "|".join(" --- " if i < 2 else " ---: " for i in range(len(COLUMNS))) + "|")
    for e in table:
        print("| " + " | ".join(cell(e, key, fmt) for key, _, _, fmt in COLUMNS) + " |")


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("results")
    ap.add_argument("meta")
    ap.add_argument("startup")
    ap.add_argument("--json")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    rows = [json.loads(line) for line in open(a.results) if line.strip()]
    meta = json.load(open(a.meta))
    startup = json.load(open(a.startup))
    table = summarize(rows)
    (print_markdown if a.markdown else print_text)(meta, startup, table)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "startup": startup, "results": table, "measurements": rows}, f, indent=1)
            f.write("\n")
    return 1 if any(e["failed_runs"] for e in table) else 0


if __name__ == "__main__":
    sys.exit(main())
