#!/usr/bin/env python3
"""Legacy API discovery only, as kube-apiserver v1.32 answers it, for the
kinds of scripts/k8s/: enough for `kubectl create --dry-run=client` to map
each manifest to its resource, and nothing else (every other path is 404).
tests/apisim serves only Secrets, ServiceAccounts, Namespaces and Pods.

Usage: discovery.py READY_FILE   (writes the port there once listening on 127.0.0.1)
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def resource(name, kind, namespaced, short=None):
    r = {"name": name, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind, "verbs": VERBS}
    if short:
        r["shortNames"] = short
    return r


def resource_list(group_version, resources):
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


GROUPS = {
    "apps": [("v1", [resource("deployments", "Deployment", True, ["deploy"])])],
    "batch": [("v1", [resource("cronjobs", "CronJob", True, ["cj"]), resource("jobs", "Job", True)])],
    "rbac.authorization.k8s.io": [("v1", [
        resource("clusterrolebindings", "ClusterRoleBinding", False),
        resource("clusterroles", "ClusterRole", False),
        resource("rolebindings", "RoleBinding", True),
        resource("roles", "Role", True)])],
}
CORE = [
    resource("configmaps", "ConfigMap", True, ["cm"]), resource("namespaces", "Namespace", False, ["ns"]),
    resource("pods", "Pod", True, ["po"]), resource("secrets", "Secret", True),
    resource("serviceaccounts", "ServiceAccount", True, ["sa"]),
]


def routes(address):
    r = {
        "/version": {"major": "1", "minor": "32", "gitVersion": "v1.32.0", "platform": "linux/amd64"},
        "/api": {"kind": "APIVersions", "versions": ["v1"],
                 "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]},
        "/api/v1": resource_list("v1", CORE),
        "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": g + "/" + v, "version": v} for v, _ in vs],
             "preferredVersion": {"groupVersion": g + "/" + vs[0][0], "version": vs[0][0]}}
            for g, vs in GROUPS.items()]},
    }
    for g, vs in GROUPS.items():
        for v, res in vs:
            r["/apis/%s/%s" % (g, v)] = resource_list(g + "/" + v, res)
    return r


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.server.routes.get(self.path.split("?")[0].rstrip("/") or "/")
        code = 200 if body is not None else 404
        if body is None:
            body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "the server could not find the requested resource", "reason": "NotFound",
                    "details": {}, "code": 404}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    server.routes = routes("127.0.0.1:%d" % port)
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
