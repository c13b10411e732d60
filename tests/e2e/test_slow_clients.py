"""Slow clients are timed out (app/api/http_protocol.py), over raw sockets against a real API process.

A request must arrive whole, headers and body, within CART_REQUEST_READ_TIMEOUT_S (1 s here) of its first byte or
of the connection: a silent connection, headers dripped a byte at a time and a body that never completes each get a
408 and a closed connection, and a half-sent command writes nothing. A client that is slow but in time, and a
keep-alive connection that waits between requests, are served as before.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import free_port
from tests.e2e.system import Process, member_headers, start_api, wait_ready_at

pytestmark = pytest.mark.slow
TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def api(system: dict[str, Process]) -> Iterator[tuple[str, int]]:
    port = free_port()
    process = start_api(CART_API_PORT=str(port), CART_REQUEST_READ_TIMEOUT_S=str(TIMEOUT_S))
    try:
        wait_ready_at(f"http://127.0.0.1:{port}", [process])
        yield "127.0.0.1", port
    finally:
        process.stop()


def read_until_closed(sock: socket.socket, limit_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long after the call that was."""
    sock.settimeout(limit_s)
    started, received = time.monotonic(), b""
    while chunk := sock.recv(65536):
        received += chunk
    return received, time.monotonic() - started


def assert_timed_out(received: bytes) -> None:
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), received
    assert json.loads(body)["error"] == "RequestTimeout"


def test_a_connection_that_sends_nothing_is_closed_with_408(api: tuple[str, int]) -> None:
    with socket.create_connection(api) as sock:
        received, waited = read_until_closed(sock, 10)
    assert_timed_out(received)
    assert waited < TIMEOUT_S + 2


def test_headers_dripped_a_byte_at_a_time_are_cut_off_with_408(api: tuple[str, int]) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: cart\r\nX-Padding: " + b"a" * 100 + b"\r\n\r\n"
    with socket.create_connection(api) as sock:
        started, closed = time.monotonic(), False
        try:
            for byte in request:  # 0.05 s a byte: the whole request would take 6 s
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        received, _ = read_until_closed(sock, 10) if not closed else (sock.recv(65536), 0.0)
    assert time.monotonic() - started < 5
    assert_timed_out(received)


def test_a_command_whose_body_never_completes_gets_408_and_writes_nothing(api: tuple[str, int]) -> None:
    member = str(uuid.uuid4())
    headers = {**member_headers(member), "Content-Type": "application/json"}
    body = json.dumps(
        {"productId": str(uuid.uuid4()), "vendorId": str(uuid.uuid4()), "name": "pear", "price": "1", "quantity": 1}
    ).encode()
    # The whole command, valid JSON, but announced 5 bytes longer: what arrived would parse, and must not be run.
    head = f"POST /cart/{member} HTTP/1.1\r\nHost: cart\r\nContent-Length: {len(body) + 5}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    with socket.create_connection(api) as sock:
        sock.sendall(head.encode() + body)  # and then nothing
        received, waited = read_until_closed(sock, 10)
    assert_timed_out(received)
    assert waited < TIMEOUT_S + 2
    with httpx.Client(base_url=f"http://{api[0]}:{api[1]}", headers=member_headers(member), timeout=30) as client:
        assert client.get(f"/cart/{member}/events").json()["events"] == []
        assert client.get("/health").status_code == 200  # and the process serves on


def test_a_slow_client_that_finishes_in_time_and_a_waiting_keep_alive_connection_are_served(
    api: tuple[str, int],
) -> None:
    with socket.create_connection(api) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: cart\r\n")
        time.sleep(TIMEOUT_S / 2)
        sock.sendall(b"Connection: close\r\n\r\n")
        received, _ = read_until_closed(sock, 10)
    assert received.startswith(b"HTTP/1.1 200"), received
    # The deadline covers reading a request, not the quiet between requests (uvicorn's keep-alive timeout, 5 s):
    # the second request goes over the same connection, after twice the deadline.
    with socket.create_connection(api) as sock:
        sock.settimeout(10)
        answers = []
        for _ in range(2):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: cart\r\n\r\n")
            answers.append(one_response(sock))
            time.sleep(TIMEOUT_S * 2)
    assert all(a.startswith(b"HTTP/1.1 200") for a in answers), answers


def one_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length, read off a connection that stays open."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection: {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection: {received!r}"
        body += chunk
    return head + b"\r\n\r\n" + body
