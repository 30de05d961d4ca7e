"""A plain HTTP server on a free loopback port, in a thread: what download code is tested against (mirrors of
MNIST, weights files) instead of the internet."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# How often the server's loop looks for shutdown: the standard 0.5 s made every test that used it wait that long.
POLL_INTERVAL_S = 0.02


@contextmanager
def local_http_server(handler) -> Iterator[str]:
    """Serve with ``handler`` (a BaseHTTPRequestHandler class or factory) until the block ends; yields the base
    URL, ``http://127.0.0.1:<port>``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(POLL_INTERVAL_S,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
