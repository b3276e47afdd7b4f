#!/usr/bin/env python3
"""apisim-nodelay.py: tests/apisim/apisim.py, with TCP_NODELAY on its connections.

apisim writes a response's headers and its body with two send() calls.
With Nagle's algorithm on, the body waits until the client acknowledges the
headers, and clients delay that acknowledgement (40 ms on Linux): every
response then takes about 45 ms whatever the work, which a benchmark would
measure instead of the clients. Same arguments as apisim.py.
"""
import os
import socket
import sys

sys.dont_write_bytecode = True
APISIM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "apisim")
sys.path.insert(0, APISIM_DIR)

import apisim  # noqa: E402

_setup = apisim.Handler.setup


def setup(self):
    self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _setup(self)


apisim.Handler.setup = setup

if __name__ == "__main__":
    sys.exit(apisim.main())
