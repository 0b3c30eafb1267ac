"""`publisher serve` as a real process on 127.0.0.1, probed with raw sockets: head limits (431),
idle and dripping connections closed, the concurrency cap, and whose X-Forwarded-For is believed.

Timeouts are set short through the environment and the tests wait on the socket closing (a
blocking read with a generous timeout), never on a sleep.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import httpx
import pytest
import sqlalchemy as sa

from publisher.delivery.embedded import free_port
from publisher.settings import Settings
from tests.service_support import ROOT

TIMEOUT = 2.0  # PUBLISHER_HTTP_TIMEOUT of the server under test
PATIENCE = 20.0  # how long a test waits for the server to close a socket before it gives up


@contextmanager
def serving(
    make_settings: Callable[..., Settings], *, database_url: str = "", **env: str
) -> Iterator[tuple[int, Settings]]:
    """`publisher serve --web-only` on a free port of 127.0.0.1, until the block ends."""
    settings = make_settings(**({"database_url": database_url} if database_url else {}))
    port = free_port()
    environment = {
        "PATH": "/usr/bin:/bin",
        "PUBLISHER_DATABASE_URL": settings.database_url,
        "PUBLISHER_VAR_DIR": str(settings.var_dir),
        "PUBLISHER_FEEDS_DIR": str(settings.feeds_dir),
        "PUBLISHER_SECRET_KEY": settings.secret_key,
        "PUBLISHER_BASE_URL": settings.base_url,
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "publisher", "serve", "--web-only", "--port", str(port)],
        env=environment, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.communicate(timeout=5)[0].decode(errors="replace")
                pytest.fail(f"publisher serve did not start:\n{out}")
            time.sleep(0.1)
        yield port, settings
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One server with a 2 s request timeout for the limit tests of this module."""
    tmp = tmp_path_factory.mktemp("serve")

    def make() -> Settings:
        return Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=f"sqlite:///{tmp / 'publisher.db'}",
            var_dir=tmp / "var",
            feeds_dir=tmp / "feeds",
            secret_key="test-secret",
            base_url="https://news.example.org",
        )

    with serving(make, PUBLISHER_HTTP_TIMEOUT=str(TIMEOUT)) as (port, _):
        yield port


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(
        ("127.0.0.1", port), timeout=PATIENCE, source_address=(source, 0)
    )


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or PATIENCE runs out)."""
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk


PLAIN = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def exchange(port: int, request: bytes) -> bytes:
    with connect(port) as sock:
        with suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        return read_all(sock)


def status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:80]
    return int(answer[9:12])


def test_a_plain_request_is_answered(server: int) -> None:
    answer = exchange(server, PLAIN)
    assert status(answer) == 200


@pytest.mark.parametrize("size", [20_000, 200_000, 4_000_000])
def test_a_large_header_is_431(server: int, size: int) -> None:
    big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
    assert status(exchange(server, big)) == 431


def test_a_long_request_line_is_431(server: int) -> None:
    assert status(exchange(server, b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n")) == 431


def test_many_header_fields_are_431(server: int) -> None:
    fields = b"".join(b"X-%d: a\r\n" % i for i in range(5000))
    assert status(exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")) == 431


def test_headers_just_under_the_limits_pass(server: int) -> None:
    fields = b"".join(b"X-%d: a\r\n" % i for i in range(90))
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + fields + b"\r\n"
    assert status(exchange(server, request)) == 200
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-A: "
    assert status(exchange(server, request + b"a" * 12_000 + b"\r\n\r\n")) == 200


def _closed_within(sock: socket.socket, limit: float, drip: bytes = b"") -> tuple[bytes, float]:
    """Read (sending ``drip`` every half second) until the server closes; (data, seconds)."""
    started = time.monotonic()
    sock.settimeout(0.5)
    out = b""
    while time.monotonic() - started < limit:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            if drip:
                with suppress(OSError):
                    sock.sendall(drip)
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    else:
        pytest.fail(f"the connection was still open after {limit}s")
    return out, time.monotonic() - started


def test_an_idle_connection_is_closed(server: int) -> None:
    with connect(server) as sock:
        out, _ = _closed_within(sock, PATIENCE)
    assert out == b""


def test_a_dripping_head_is_closed_with_408(server: int) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        out, _ = _closed_within(sock, PATIENCE, drip=b"X-A: b\r\n")
    assert status(out) == 408


def test_a_dripping_body_is_closed(server: int) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-"
            b"urlencoded\r\nContent-Length: 60000\r\n\r\nemail="
        )
        _closed_within(sock, PATIENCE, drip=b"a")


def test_a_kept_alive_connection_is_closed_when_idle(server: int) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        out, _ = _closed_within(sock, PATIENCE)
    assert status(out) == 200


def test_the_connection_limit_answers_503(make_settings: Callable[..., Settings]) -> None:
    with serving(make_settings, PUBLISHER_HTTP_MAX_CONNECTIONS="3") as (port, _):
        held = [connect(port) for _ in range(3)]
        try:
            for sock in held:  # each has started a request: the server knows them all
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            answer = exchange(port, PLAIN)
            assert status(answer) == 503
        finally:
            for sock in held:
                sock.close()
        for _ in range(100):  # the server notices the closed sockets at its own pace
            answer = exchange(port, PLAIN)
            if status(answer) == 200:
                break
        assert status(answer) == 200


# -- X-Forwarded-For: believed from FORWARDED_ALLOW_IPS only -----------------------------------
def _subscribe(port: int, source: str, forwarded: str, email: str) -> int:
    """POST /subscribe from ``source`` (a loopback address) with an X-Forwarded-For."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=PATIENCE) as client:
        r = client.post(
            f"http://127.0.0.1:{port}/subscribe",
            data={"email": email, "regions": "americas"},
            headers={"X-Forwarded-For": forwarded},
        )
    return r.status_code


def _consent_ips(settings: Settings) -> dict[str, str]:
    engine = sa.create_engine(settings.database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT s.email, c.ip FROM consents c JOIN subscribers s ON s.id = c.subscriber_id"
            )
        ).all()
    engine.dispose()
    return {str(email): str(ip) for email, ip in rows}


def test_forwarded_for_is_believed_only_from_the_proxy(
    make_settings: Callable[..., Settings],
) -> None:
    with serving(make_settings, PUBLISHER_FORWARDED_ALLOW_IPS="127.0.0.1") as (port, settings):
        assert _subscribe(port, "127.0.0.1", "198.51.100.7", "proxied@example.org") == 200
        assert _subscribe(port, "127.0.0.2", "6.6.6.6", "forged@example.org") == 200
        ips = _consent_ips(settings)
        assert ips == {"proxied@example.org": "198.51.100.7", "forged@example.org": "127.0.0.2"}
        # a client that rotates the header is still one address to the per-IP limit (10)
        answers = [
            _subscribe(port, "127.0.0.3", f"203.0.113.{i}", f"r{i}@example.org") for i in range(12)
        ]
        assert answers[:10] == [200] * 10 and answers[10:] == [429, 429]


def test_the_setting_names_the_trusted_proxy(make_settings: Callable[..., Settings]) -> None:
    with serving(make_settings, PUBLISHER_FORWARDED_ALLOW_IPS="127.0.0.9") as (port, settings):
        assert _subscribe(port, "127.0.0.9", "198.51.100.9", "via@example.org") == 200
        assert _subscribe(port, "127.0.0.1", "6.6.6.6", "direct@example.org") == 200
        ips = _consent_ips(settings)
    assert ips == {"via@example.org": "198.51.100.9", "direct@example.org": "127.0.0.1"}


@pytest.mark.postgres
def test_web_processes_on_postgres_share_the_per_ip_limit(
    make_settings: Callable[..., Settings], pg_url: str
) -> None:
    with (
        serving(make_settings, database_url=pg_url) as (one, _),
        serving(make_settings, database_url=pg_url) as (two, _),
    ):
        answers = [
            _subscribe((one, two)[i % 2], "127.0.0.4", "", f"s{i}@example.org") for i in range(12)
        ]
    assert answers[:10] == [200] * 10 and answers[10:] == [429, 429]  # 10 per IP, in total
