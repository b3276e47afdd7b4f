#!/usr/bin/env python3
"""gcpsim.py: the GCE/GKE metadata server's token endpoint, on loopback.

  GET /computeMetadata/v1/instance/service-accounts/default/token
      needs "Metadata-Flavor: Google" (else 403, as the real server does);
      answers {"access_token": "fake-gcp-token-N", "expires_in": EXPIRES_IN,
      "token_type": "Bearer"} with "Metadata-Flavor: Google".
Control paths: GET /_log (the requests, no secrets), POST /_reset,
POST /_fail {"status": 500, "count": 1} (the next COUNT token requests fail).

Usage: gcpsim.py --port-file FILE   (listens on a free port, writes it to FILE)
"""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
EXPIRES_IN = 3599


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    log, failure, serial = [], None, 0

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, text, ctype="application/json"):
        data = text.encode()
        self.send_response(status)
        self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        cls, path = Handler, urlsplit(self.path).path
        with cls.lock:
            if path == "/_log" and self.command == "GET":
                return self.reply(200, json.dumps(cls.log))
            if path == "/_reset" and self.command == "POST":
                cls.log, cls.failure = [], None
                return self.reply(200, "{}")
            if path == "/_fail" and self.command == "POST":
                cls.failure = {"count": 1, **json.loads(body)}
                return self.reply(200, "{}")
            flavor = self.headers.get("Metadata-Flavor")
            cls.log.append({"method": self.command, "path": path, "metadata_flavor": flavor})
            if path != TOKEN_PATH or self.command != "GET":
                return self.reply(404, "Not Found\n", "text/plain")
            if flavor != "Google":
                return self.reply(403, "Missing required header: Metadata-Flavor\n", "text/plain")
            if cls.failure:
                status = cls.failure.get("status", 500)
                cls.failure["count"] -= 1
                if cls.failure["count"] <= 0:
                    cls.failure = None
                return self.reply(status, "simulated failure\n", "text/plain")
            cls.serial += 1
            return self.reply(200, json.dumps({"access_token": f"fake-gcp-token-{cls.serial}",
                                               "expires_in": EXPIRES_IN, "token_type": "Bearer"}))

    do_GET = do_POST = do_PUT = handle_any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file, "w") as f:
        f.write(f"{server.server_address[1]}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
