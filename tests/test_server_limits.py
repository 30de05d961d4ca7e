"""A real server's connection limits, with raw sockets: a request head that dribbles or never comes, a head over
the size limit, a body that stops arriving, and more connections than a worker takes. Each limit answers with
its status and closes the connection, and the server keeps answering everyone else."""

import http.client
import json
import re
import socket
import time

import pytest

from convscope.testing.server import ServerProcess

LIMITS = {"CONVSCOPE_HEADER_TIMEOUT": "1", "CONVSCOPE_BODY_TIMEOUT": "1", "CONVSCOPE_KEEP_ALIVE_TIMEOUT": "2",
          "CONVSCOPE_MAX_HEADER_BYTES": "4096", "CONVSCOPE_MAX_CONNECTIONS": "20", "CONVSCOPE_WORKERS": "1"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory, synthetic_mnist_dir):
    with ServerProcess(tmp_path_factory.mktemp("limits"),
                       env={**LIMITS, "CONVSCOPE_MNIST_DIR": str(synthetic_mnist_dir)}) as running:
        yield running


def connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def timed(fn):
    started = time.monotonic()
    result = fn()
    return result, time.monotonic() - started


def test_a_head_that_dribbles_is_answered_408_and_closed(server):
    with connect(server) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
        answer, waited = timed(lambda: read_all(sock))
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert answer.endswith(b"the request's head did not arrive within 1 s")
    assert 0.9 <= waited < 3


def test_a_connection_that_says_nothing_is_closed(server):
    with connect(server) as sock:
        answer, waited = timed(lambda: read_all(sock))
    assert answer == b"" and 0.9 <= waited < 3


def test_a_head_over_the_size_limit_is_answered_431(server):
    with connect(server) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert answer.endswith(b"the request's head is over the limit of 4,096 bytes")


def test_a_head_is_measured_once_whether_it_comes_whole_or_in_pieces(server):
    """3,000 bytes of head (under the 4,096 limit) in two reads is served; 6,000 bytes in pieces is a 431."""
    head = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 2900 + b"\r\n\r\n"
    with connect(server) as sock:
        sock.sendall(head[:2000])
        time.sleep(0.2)
        sock.sendall(head[2000:])
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
    with connect(server) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ")
        try:
            for _ in range(12):  # 6,000 bytes of one header that never ends
                sock.sendall(b"a" * 500)
                time.sleep(0.05)
        except OSError:  # refused before the last piece
            pass
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


@pytest.mark.parametrize("trickle", [False, True])
def test_a_body_that_stops_or_trickles_is_answered_408(server, trickle):
    """One deadline for the whole body (1 s, plus a second per 64 KiB declared): a byte every 0.3 s would pass
    a deadline per read for ever."""
    with connect(server) as sock:
        sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"pixels\": [")
        started = time.monotonic()
        while trickle and time.monotonic() - started < 2.5:
            try:
                sock.sendall(b"1")
            except OSError:  # the server answered and closed
                break
            time.sleep(0.3)
        answer = read_all(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"connection: close" in head.lower()
    error = json.loads(body)["error"]
    assert (error["status"], error["code"]) == (408, "request_timeout")
    assert re.fullmatch(r"the request's body did not arrive within 1\.00\d* s", error["message"])
    assert 0.9 <= time.monotonic() - started < 3


def test_a_slow_but_steady_head_and_a_kept_alive_connection_are_served(server):
    with connect(server) as sock:
        for piece in (b"GET /api/health HTTP/1.1\r\n", b"Host: 127.0.0.1\r\n", b"\r\n"):
            sock.sendall(piece)
            time.sleep(0.3)  # the whole head within the 1 s deadline
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for _ in range(3):  # one connection, three requests, each starting after the last deadline would have passed
        connection.request("GET", "/api/health")
        response = connection.getresponse()
        assert response.status == 200 and response.read()
        time.sleep(1.2)
    connection.close()


def test_connections_over_the_cap_are_refused_and_the_server_recovers(server):
    held = [connect(server) for _ in range(20)]  # the cap, taken by clients that send nothing
    try:
        time.sleep(0.2)
        with connect(server) as extra:
            answer = read_all(extra)
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert answer.endswith(b"the server has too many open connections; try again shortly")
        time.sleep(1.5)  # their heads' deadline passes: the server has dropped them
        assert all(sock.recv(1) == b"" for sock in held)
        assert server.request("GET", "/api/health")[0] == 200
    finally:
        for sock in held:
            sock.close()
