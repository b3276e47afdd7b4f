#!/usr/bin/env python3
"""report.py RESULTS.jsonl META.json [JSON-OUT]: scripts/bench's table.

RESULTS has one JSON line per measurement: workflow, scenario, run, seconds,
requests, writes, throttled, connections, and rss_kib/status where measured.
Prints medians per workflow and scenario with the ratios to the simulator's
floor and kubectl's ratio to xcsreg; writes the same as JSON to JSON-OUT.
"""
import json
import statistics
import sys

WORKFLOWS = [
    ("floor", "floor: raw client, 1 connection"),
    ("xcsreg", "xcsreg run setup.lua"),
    ("rollout", "xcsreg rollout.lua (bare map)"),
    ("kubectl", "kubectl apply + get/patch"),
    ("kubectl-naive", "kubectl apply + naive patch"),
]
SCENARIOS = ["full", "unchanged", "rotated"]


def median(rows, key):
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def main(results_path, meta_path, out_path=None):
    rows = [json.loads(line) for line in open(results_path) if line.strip()]
    meta = json.load(open(meta_path))
    table = []
    for scenario in SCENARIOS:
        by = {}
        for wf, label in WORKFLOWS:
            mine = [r for r in rows if r["workflow"] == wf and r["scenario"] == scenario]
            if not mine:
                continue
            entry = {"scenario": scenario, "workflow": wf, "label": label, "runs": len(mine),
                     "seconds": median(mine, "seconds"), "requests": median(mine, "requests"),
                     "writes": median(mine, "writes"), "throttled": max(r.get("throttled", 0) for r in mine),
                     "connections": median(mine, "connections"), "rss_kib": max((r["rss_kib"] for r in mine
                                                                                if r.get("rss_kib")), default=None),
                     "failed_runs": sum(1 for r in mine if r.get("status", 0) != 0)}
            by[wf] = entry
            table.append(entry)
        floor, xcsreg = by.get("floor"), by.get("xcsreg")
        for entry in by.values():
            entry["x_floor"] = entry["seconds"] / floor["seconds"] if floor and floor["seconds"] else None
            if entry["workflow"].startswith("kubectl") and xcsreg and xcsreg["seconds"]:
                entry["kubectl_over_xcsreg"] = entry["seconds"] / xcsreg["seconds"]

    print("N=%d namespaces x M=%d registries, median of %d run(s); %s" % (
        meta["n"], meta["m"], meta["runs"], meta["machine"]))
    print("simulator: %s; throttle: %s; xcsreg concurrency %s" % (meta["simulator"], meta["throttle"],
                                                                 meta["concurrency"]))
    print("RSS: peak of the largest process (for kubectl, one kubectl); x floor: wall / the floor's;"
          " kubectl/x: wall / xcsreg's")
    head = "%-9s %-32s %9s %8s %7s %5s %6s %8s %8s %10s" % (
        "scenario", "workflow", "wall s", "requests", "writes", "429s", "conns", "RSS MiB", "x floor",
        "kubectl/x")
    print(head)
    print("-" * len(head))
    for e in table:
        def num(v, fmt):
            return fmt % v if v is not None else "-"
        print("%-9s %-32s %9s %8s %7s %5s %6s %8s %8s %10s%s" % (
            e["scenario"], e["label"], num(e["seconds"], "%.3f"), num(e["requests"], "%d"),
            num(e["writes"], "%d"), num(e["throttled"], "%d"), num(e["connections"], "%d"),
            num(e["rss_kib"] and e["rss_kib"] / 1024, "%.1f"), num(e.get("x_floor"), "%.2f"),
            num(e.get("kubectl_over_xcsreg"), "%.0fx"),
            "  (%d run(s) failed)" % e["failed_runs"] if e["failed_runs"] else ""))
    if out_path:
        with open(out_path, "w") as f:
            json.dump({"meta": meta, "results": table, "measurements": rows}, f, indent=1)
            f.write("\n")
    return 1 if any(e["failed_runs"] for e in table) else 0


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
