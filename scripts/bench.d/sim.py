#!/usr/bin/env python3
"""sim.py: scripts/bench's helper for the API simulator (run under with-sim).

    sim.py setup N [MAX]        reset; namespaces ns-1..ns-N (each with SA default); the token
                                user bench-role with rights in those namespaces only; empty
                                log; MAX: the throttle (429 beyond MAX requests in flight)
    sim.py floor SCENARIO N M TIMING
                                the minimal requests of SCENARIO (full, unchanged, rotated) sent
                                one after another over one kept-alive TLS connection, the
                                handshake not counted; writes {"seconds"} to TIMING. The state
                                must be what the scenario expects (full after setup, unchanged
                                after full, rotated after that).
    sim.py startup OUT RUNS [--status N] [--stdin FILE] -- CMD...
                                start-up: median wall time of RUNS runs of CMD and of /bin/true,
                                CMD's peak RSS; writes {"runs", "ms", "true_ms", "rss_kib"} to OUT.
                                CMD must exit N (default 0); its stdin is FILE (default
                                /dev/null), its output is discarded
    sim.py run TIMING -- CMD... runs CMD; writes {"seconds", "cpu_ms", "rss_kib", "anon_kib", "status"}
                                to TIMING: wall time from fork to exit, user + system CPU time
                                (CMD's children included), peak RSS of CMD (by GNU
                                time), peak private RSS (RssAnon, sampled every 2 ms)
    sim.py record OUT WORKFLOW SCENARIO RUN TIMING
                                appends TIMING with the log's requests, writes, 429s and
                                connections to OUT as a JSON line; empties the log

Control and API addresses come from with-sim's environment.
"""
import base64
import http.client
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from urllib.parse import quote, urlsplit

MANAGED_BY = "app.kubernetes.io/managed-by"


def control(method, path, body=None, conn=None):
    u = urlsplit(os.environ["XCSREG_SIM_CONTROL"])
    c = conn or http.client.HTTPConnection(u.hostname, u.port)
    data = json.dumps(body).encode() if body is not None else None
    c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
    r = c.getresponse()
    text = r.read()
    if r.status >= 300:
        sys.exit("sim.py: %s %s: HTTP %d: %s" % (method, path, r.status, text[:200]))
    return json.loads(text)


# A token user whose rights are namespaced only (a Role in each namespace):
# it may not list across the cluster, so it reads namespace by namespace.
ROLE_USER, ROLE_TOKEN = "bench-role", "fake-bench-role-token"


def setup(n, throttle):
    u = urlsplit(os.environ["XCSREG_SIM_CONTROL"])
    conn = http.client.HTTPConnection(u.hostname, u.port)
    control("POST", "/reset", conn=conn)
    for i in range(1, n + 1):
        control("POST", "/namespaces", {"name": "ns-%d" % i}, conn=conn)
    control("POST", "/users", {"name": ROLE_USER, "token": ROLE_TOKEN, "groups": []}, conn=conn)
    control("POST", "/grant", {"user": ROLE_USER, "verbs": ["get", "list", "create", "update", "patch"],
                               "resources": ["secrets", "serviceaccounts"],
                               "namespaces": ["ns-%d" % i for i in range(1, n + 1)]}, conn=conn)
    control("DELETE", "/log", conn=conn)
    if throttle:
        control("POST", "/throttle", {"max_inflight": throttle, "retry_after": 1}, conn=conn)


def count():
    log = control("GET", "/log")
    control("DELETE", "/log")
    writes = sum(1 for e in log if e["method"] in ("POST", "PUT", "PATCH", "DELETE"))
    return {"requests": len(log), "writes": writes,
            "throttled": sum(1 for e in log if e["status"] == 429),
            "connections": len({e["conn"] for e in log})}


def password(scenario, j):
    """What setup.lua's site file and the kubectl workflow are given."""
    return "fake-rotated-%d" % j if scenario == "rotated" and j == 1 else "fake-password-%d" % j


def secret(ns, j, scenario):
    server, user, pw = "registry-%d.example.invalid" % j, "bench", password(scenario, j)
    auth = base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()
    cfg = {"auths": {server: {"username": user, "password": pw, "auth": auth}}}
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "reg-%d" % j, "namespace": ns, "labels": {MANAGED_BY: "xcsreg"}},
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(cfg).encode()).decode()}}


class API:
    """One kept-alive TLS connection with the admin token, as a raw client would hold."""

    def __init__(self):
        u = urlsplit(os.environ["XCSREG_SIM_API"])
        ctx = ssl.create_default_context(cafile=os.path.join(os.environ["XCSREG_SIM_CERTS"], "ca.crt"))
        self.conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx)

    def call(self, method, path, body=None, content_type="application/json"):
        headers = {"Authorization": "Bearer admin-token", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        text = r.read()
        if r.status >= 300:
            sys.exit("sim.py floor: %s %s: HTTP %d: %s" % (method, path, r.status, text[:300]))
        return json.loads(text)


def floor(scenario, n, m):
    api = API()
    api.conn.connect()  # the TLS handshake is not a request: a raw client pays it once
    start = time.monotonic()
    secrets = api.call("GET", "/api/v1/secrets?labelSelector=" + quote(MANAGED_BY + "=xcsreg"))
    sas = api.call("GET", "/api/v1/serviceaccounts?fieldSelector=" + quote("metadata.name=default"))
    stored = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in secrets["items"]}
    for i in range(1, n + 1):
        ns = "ns-%d" % i
        for j in range(1, m + 1):
            want = secret(ns, j, scenario)
            have = stored.get((ns, want["metadata"]["name"]))
            if have is None:
                api.call("POST", "/api/v1/namespaces/%s/secrets?fieldManager=xcsreg" % ns, want)
            elif have["data"] != want["data"]:
                want["metadata"]["resourceVersion"] = have["metadata"]["resourceVersion"]
                api.call("PUT", "/api/v1/namespaces/%s/secrets/%s?fieldManager=xcsreg"
                         % (ns, want["metadata"]["name"]), want)
    wanted = {"ns-%d" % i for i in range(1, n + 1)}
    for sa in (sa for sa in sas["items"] if sa["metadata"]["namespace"] in wanted):
        have = [r["name"] for r in sa.get("imagePullSecrets", [])]
        want = have + ["reg-%d" % j for j in range(1, m + 1) if "reg-%d" % j not in have]
        if want != have:
            api.call("PATCH", "/api/v1/namespaces/%s/serviceaccounts/default?fieldManager=xcsreg"
                     % sa["metadata"]["namespace"],
                     {"metadata": {"resourceVersion": sa["metadata"]["resourceVersion"]},
                      "imagePullSecrets": [{"name": s} for s in want]},
                     "application/merge-patch+json")
    return {"seconds": time.monotonic() - start}


def run(argv):
    """Runs argv under GNU time: wall time, CPU time, peak RSS and peak private RSS."""
    # GNU time reports the peak RSS of CMD alone: getrusage here would count
    # this Python process too, which the child was until it exec'd. The CPU
    # time is wait4's (time's and CMD's, in microseconds: GNU time's %U/%S
    # count in 10 ms, too coarse for a 20 ms run). On a shared machine it
    # moves far less than the wall time, which waits on the simulator too.
    with tempfile.NamedTemporaryFile("r") as rss:
        start = time.monotonic()
        timer = subprocess.Popen(["/usr/bin/time", "-q", "-f", "%M", "-o", rss.name] + argv)
        anon_peak = 0
        while True:
            pid, status, usage = os.wait4(timer.pid, os.WNOHANG)
            if pid:
                break
            anon_peak = max(anon_peak, private_rss(timer.pid))
            time.sleep(0.002)
        seconds = time.monotonic() - start
        timer.returncode = os.waitstatus_to_exitcode(status)
        return {"seconds": seconds, "cpu_ms": (usage.ru_utime + usage.ru_stime) * 1000,
                "rss_kib": int(rss.read().split()[-1]), "anon_kib": anon_peak or None,
                "status": timer.returncode}


def private_rss(parent):
    """RssAnon (KiB) of parent's child, 0 if there is none (yet or any more)."""
    try:
        with open("/proc/%d/task/%d/children" % (parent, parent)) as f:
            children = f.read().split()
        with open("/proc/%s/status" % children[0]) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except (OSError, IndexError):
        pass
    return 0


def startup(argv, runs, want=0, stdin="/dev/null"):
    """Median wall time (ms) of runs runs of argv and of /bin/true, spawned
    the same way (so the difference is argv's own start-up), and argv's peak
    RSS (KiB, by GNU time). argv must exit want."""
    def median_ms(cmd, code):
        times = []
        for _ in range(runs):
            actions = [(os.POSIX_SPAWN_OPEN, 0, stdin, os.O_RDONLY, 0),
                       (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                       (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)]
            start = time.monotonic()
            pid = os.posix_spawn(cmd[0], cmd, os.environ, file_actions=actions)
            _, status = os.waitpid(pid, 0)
            times.append((time.monotonic() - start) * 1000)
            if os.waitstatus_to_exitcode(status) != code:
                sys.exit("sim.py startup: %s exited %d, not %d" % (
                    " ".join(cmd), os.waitstatus_to_exitcode(status), code))
        return statistics.median(times)
    median_ms(argv, want)  # warm the page cache
    with tempfile.NamedTemporaryFile("r") as rss, open(stdin, "rb") as inp:
        subprocess.run(["/usr/bin/time", "-q", "-f", "%M", "-o", rss.name] + argv, stdin=inp,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rss_kib = int(rss.read().split()[-1])
    return {"runs": runs, "ms": median_ms(argv, want), "true_ms": median_ms(["/bin/true"], 0),
            "rss_kib": rss_kib}


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)


def record(out, workflow, scenario, run_no, timing):
    with open(timing) as f:
        entry = json.load(f)
    entry.update(count(), workflow=workflow, scenario=scenario, run=int(run_no))
    with open(out, "a") as f:
        f.write(json.dumps(entry) + "\n")


def main(args):
    cmd = args[0] if args else ""
    if cmd == "setup" and len(args) in (2, 3):
        setup(int(args[1]), int(args[2]) if len(args) == 3 else None)
    elif cmd == "floor" and len(args) == 5 and args[1] in ("full", "unchanged", "rotated"):
        write_json(args[4], floor(args[1], int(args[2]), int(args[3])))
    elif cmd == "startup" and len(args) >= 5 and "--" in args[3:]:
        end = args.index("--", 3)
        opts = dict(zip(args[3:end:2], args[4:end:2]))
        if len(args[3:end]) % 2 or set(opts) - {"--status", "--stdin"} or end + 1 == len(args):
            sys.exit(__doc__)
        write_json(args[1], startup(args[end + 1:], int(args[2]), int(opts.get("--status", 0)),
                                    opts.get("--stdin", "/dev/null")))
    elif cmd == "run" and len(args) >= 4 and args[2] == "--":
        result = run(args[3:])
        write_json(args[1], result)
        return result["status"]
    elif cmd == "record" and len(args) == 6:
        record(*args[1:])
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
