#!/usr/bin/env python3
"""scripts/bench --watch: setup.lua --watch on the API simulator.

Run under tests/apisim/with-sim (XCSREG_SIM_*). Measures, against one
controller (leader election on, client-go's default timings):
  latency  from a namespace's creation (the control call returning) to the
           watch event of its `default` ServiceAccount listing the pull
           secret, for N namespaces made one at a time: p50, p99, max
  idle     the controller's CPU time over S seconds with nothing happening
           (its Lease renewed every 2 s, bookmarks, no other request)
  rss      its resident set after 1k and after 10k watch events (merge
           patches of a watched ServiceAccount that change nothing it wants)

usage: watch.py XCSREG N IDLE_SECONDS EVENTS [--json FILE]
"""
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time

API = os.environ["XCSREG_SIM_API"]
CONTROL = os.environ["XCSREG_SIM_CONTROL"]
CERTS = os.environ["XCSREG_SIM_CERTS"]
SIMDIR = os.environ["XCSREG_SIM_DIR"]
HZ = os.sysconf("SC_CLK_TCK")


def host_port(url):
    hp = url.split("://", 1)[1].rstrip("/")
    h, p = hp.rsplit(":", 1)
    return h, int(p)


def control(method, path, body=None):
    c = http.client.HTTPConnection(*host_port(CONTROL), timeout=30)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status >= 300:
        raise SystemExit("control %s %s: %d %s" % (method, path, r.status, data[:200]))
    return json.loads(data) if data else None


def api_conn(timeout=60):
    ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.crt"))
    return http.client.HTTPSConnection(*host_port(API), context=ctx, timeout=timeout)


HEADERS = {"Authorization": "Bearer admin-token", "Accept": "application/json"}


def api(conn, method, path, body=None, ctype="application/json"):
    h = dict(HEADERS)
    if body is not None:
        h["Content-Type"] = ctype
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        raise SystemExit("%s %s: %d %s" % (method, path, r.status, data[:300]))
    return json.loads(data)


def proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ  # utime + stime


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


class Watcher(threading.Thread):
    """A watch of every `default` ServiceAccount: when each first lists the secret."""

    def __init__(self, rv):
        super().__init__(daemon=True)
        self.rv, self.seen, self.ready = rv, {}, threading.Event()

    def run(self):
        conn = api_conn(timeout=None)
        conn.request("GET", "/api/v1/serviceaccounts?watch=1&fieldSelector=metadata.name%3Ddefault"
                     "&resourceVersion=" + self.rv, headers=HEADERS)
        r = conn.getresponse()
        self.ready.set()
        while True:
            line = r.readline()
            if not line:
                return
            now = time.monotonic()
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            obj = ev.get("object", {})
            names = [ref.get("name") for ref in obj.get("imagePullSecrets") or []]
            ns = obj.get("metadata", {}).get("namespace")
            if "bench" in names and ns not in self.seen:
                self.seen[ns] = now


def main():
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    xcsreg, n, idle_s, events = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    out_json = sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else None
    tmp = tempfile.mkdtemp(prefix="xcsreg-bench-watch.")
    site = os.path.join(tmp, "site.lua")
    with open(site, "w") as f:
        f.write('return { namespace_selector = "bench=watch", registries = { { secret = "bench", '
                'server = "registry.example.org", username = "bench", password_env = "BENCH_TOKEN" } } }\n')
    control("POST", "/namespaces", {"name": "bench-events", "labels": {"bench": "watch"}})
    env = dict(os.environ, KUBECONFIG=os.path.join(SIMDIR, "token.kubeconfig"), HOME=tmp,
               BENCH_TOKEN="fake-bench-token-Watch9", POD_NAME="bench")
    err = open(os.path.join(tmp, "controller.err"), "w")
    ctl = subprocess.Popen([xcsreg, "run", "setup.lua", "-q", "--watch", "--no-verify", "--config", site],
                           env=env, stdout=subprocess.DEVNULL, stderr=err)
    conn = api_conn()
    try:
        # the controller has done the namespace there at the start: it is watching
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            sa = api(conn, "GET", "/api/v1/namespaces/bench-events/serviceaccounts/default")
            if any(r.get("name") == "bench" for r in sa.get("imagePullSecrets") or []):
                break
            time.sleep(0.05)
        else:
            raise SystemExit("the controller did not start (see %s)" % err.name)
        time.sleep(0.5)

        # ---- latency ----
        rv = api(conn, "GET", "/api/v1/serviceaccounts?limit=1")["metadata"]["resourceVersion"]
        w = Watcher(rv)
        w.start()
        w.ready.wait(10)
        created = {}
        for i in range(1, n + 1):
            ns = "bench-%d" % i
            control("POST", "/namespaces", {"name": ns, "labels": {"bench": "watch"}})
            created[ns] = time.monotonic()
            time.sleep(0.05)
        deadline = time.monotonic() + 30
        while len(w.seen) < n + 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        lat = sorted(w.seen[ns] - created[ns] for ns in created if ns in w.seen)
        missing = n - len(lat)

        # ---- idle CPU ----
        time.sleep(1)
        control("DELETE", "/log")
        c0, t0 = proc_stat(ctl.pid), time.monotonic()
        time.sleep(idle_s)
        c1, t1 = proc_stat(ctl.pid), time.monotonic()
        log = control("GET", "/log")
        idle_requests = {}
        for e in log:
            key = "%s %s%s" % (e["method"], e["path"].split("/")[-1] if "leases" in e["path"] else e["path"],
                               "?watch" if (e.get("query") or {}).get("watch") else "")
            idle_requests[key] = idle_requests.get(key, 0) + 1

        # ---- RSS over events ----
        conn.close()
        conn = api_conn()  # the simulator may have closed the idle one
        path = "/api/v1/namespaces/bench-events/serviceaccounts/default"
        rss = {}
        for i in range(1, events + 1):
            api(conn, "PATCH", path, {"metadata": {"annotations": {"bench/n": str(i)}}},
                "application/merge-patch+json")
            if i in (1000, events):
                time.sleep(1)  # the controller has read them
                rss[i] = rss_kib(ctl.pid)
        result = {
            "namespaces": n, "latency_p50_ms": round(pct(lat, 50) * 1000, 1),
            "latency_p99_ms": round(pct(lat, 99) * 1000, 1), "latency_max_ms": round(lat[-1] * 1000, 1) if lat else None,
            "not_patched": missing, "idle_seconds": round(t1 - t0, 1),
            "idle_cpu_percent": round(100.0 * (c1 - c0) / (t1 - t0), 3), "idle_cpu_seconds": round(c1 - c0, 3),
            "idle_requests": idle_requests, "events": events,
            "rss_kib_after_1k": rss.get(1000), "rss_kib_after_all": rss.get(events),
        }
    finally:
        ctl.send_signal(signal.SIGTERM)
        code = ctl.wait(30)
    result["exit_status"] = code
    print("setup.lua --watch on the simulator (leader election on: lease 15 s, renew 10 s, retry 2 s)")
    print("  namespace created -> SA patched, %d namespaces one at a time: p50 %.1f ms, p99 %.1f ms, max %s ms%s"
          % (n, result["latency_p50_ms"], result["latency_p99_ms"], result["latency_max_ms"],
             "" if not missing else " (%d never patched)" % missing))
    print("  idle %.0f s: %.3f%% of a CPU (%.3f s), requests: %s" % (
        result["idle_seconds"], result["idle_cpu_percent"], result["idle_cpu_seconds"],
        ", ".join("%s x%d" % kv for kv in sorted(idle_requests.items())) or "none"))
    print("  RSS after 1000 events: %s KiB; after %d: %s KiB" % (result["rss_kib_after_1k"], events,
                                                              result["rss_kib_after_all"]))
    print("  SIGTERM: exit %d" % code)
    if out_json:
        with open(out_json, "w") as f:
            json.dump(result, f, indent=2)
    return 0 if code == 0 and not missing else 1


if __name__ == "__main__":
    sys.exit(main())
