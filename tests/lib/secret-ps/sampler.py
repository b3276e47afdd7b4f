#!/usr/bin/env python3
"""sampler.py: what `ps` (and /proc) shows while a command runs, for test_secret_ps.

Usage: sampler.py --registry FILE [--registry FILE...] --ready FILE --stop FILE --out FILE

Reads every process's /proc/PID/cmdline and /proc/PID/environ over and over
(about every millisecond) until --stop exists, having created --ready after
the first sweep. Then writes to --out, as JSON, one record per distinct
process and command line seen: {"pid", "program" (the basename of argv[0]),
"args" (argv with every registered secret replaced by ***), "argv_secrets",
"environ_secrets" (registry names found, in any form secretscan.py knows)}.
No secret is ever written.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import secretscan  # noqa: E402


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:  # gone, or not ours
        return b""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--registry", action="append", default=[])
    for option in ("--ready", "--stop", "--out"):
        ap.add_argument(option, required=True)
    args = ap.parse_args()
    patterns = []  # (pattern, name), longest first so that redaction takes whole secrets
    for path in args.registry:
        for name, value in secretscan.read_registry(path):
            patterns.extend((pattern, name) for _, pattern in secretscan.forms_of(value))
    patterns.sort(key=lambda p: -len(p[0]))

    def found(data):
        return sorted({name for pattern, name in patterns if pattern in data})

    seen, me = {}, str(os.getpid())
    while True:
        stop = os.path.exists(args.stop)
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid == me:
                continue
            cmdline = read(f"/proc/{pid}/cmdline")
            if not cmdline or (pid, cmdline) in seen:
                continue
            environ = read(f"/proc/{pid}/environ")
            redacted = cmdline
            for pattern, _ in patterns:
                redacted = redacted.replace(pattern, b"***")
            argv = [a.decode("utf-8", "replace") for a in redacted.rstrip(b"\0").split(b"\0")]
            seen[(pid, cmdline)] = {"pid": int(pid), "program": os.path.basename(argv[0]), "args": argv,
                                    "argv_secrets": found(cmdline), "environ_secrets": found(environ)}
        if not os.path.exists(args.ready):
            open(args.ready, "w").close()
        if stop:
            break
        time.sleep(0.001)
    with open(args.out + ".tmp", "w") as f:
        json.dump(list(seen.values()), f)
    os.rename(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
