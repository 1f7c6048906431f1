"""A lean HTTP/1.1 keep-alive load generator for loopback benchmarks.

Exactly N requests over C connections that are all opened before the clock starts. Bodies
come from a template in which `{i}` or `{i:07d}` is replaced by the request's index (or,
with --batch K, K items per request wrapped as {"messages": [...]}, each with its own
index). Responses with Content-Length or chunked bodies are read; status codes, latency
percentiles and throughput are reported as one JSON object.

Plain asyncio protocols (and uvloop when importable) keep the client's own CPU cost low,
which matters when client and server share a 2-core machine. Only hosts that resolve to
127.0.0.0/8 are accepted.

    python bench/loadgen.py --url http://127.0.0.1:8080/v1/messages -n 20000 -c 50 \
        -H 'Authorization: Bearer KEY' --body '{"to": "+2782{i:07d}", "text": "hi"}'
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import re
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

_PLACEHOLDER = re.compile(r"\{i(?::([^{}]*))?\}")
_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
_PERCENTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999))


class LoadError(Exception):
    """The load could not be run as asked (bad URL, refused host, connection failure)."""


@dataclass
class LoadSpec:
    url: str
    requests: int
    concurrency: int = 50
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None  # template; `{i}` / `{i:FORMAT}` placeholders
    batch: int = 0  # 0: body as is; K: {"messages": [K items from the template]}
    start: int = 0  # index of the first request (or first item)
    sum_field: str | None = None  # sum this top-level JSON field of 2xx response bodies
    timeout: float = 60.0


# --- request building --------------------------------------------------------------


def render(template: str, i: int) -> str:
    """`template` with each `{i}` / `{i:FMT}` replaced by `i` (other braces untouched)."""
    return _PLACEHOLDER.sub(lambda m: format(i, m.group(1) or ""), template)


def build_bodies(spec: LoadSpec) -> list[bytes]:
    if spec.body is None:
        return [b""] * spec.requests
    if not spec.batch:
        return [render(spec.body, spec.start + n).encode() for n in range(spec.requests)]
    bodies = []
    for n in range(spec.requests):
        first = spec.start + n * spec.batch
        items = ",".join(render(spec.body, first + k) for k in range(spec.batch))
        bodies.append(f'{{"messages":[{items}]}}'.encode())
    return bodies


def build_requests(spec: LoadSpec, host: str, port: int, target: str) -> list[bytes]:
    """One request per index; `{i}` placeholders in the URL's path or query are rendered
    per request too (e.g. a GET per message: /cgi-bin/sendsms?to=49160{i:07d}&...)."""
    head = [f"Host: {host}:{port}"]
    head += [f"{k}: {v}" for k, v in spec.headers.items()]
    if spec.body is not None and not any(k.lower() == "content-type" for k in spec.headers):
        head.append("Content-Type: application/json")
    rest = "\r\n".join(head)
    per_target = _PLACEHOLDER.search(target) is not None
    return [
        f"{spec.method} {render(target, spec.start + n) if per_target else target} HTTP/1.1"
        f"\r\n{rest}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        for n, body in enumerate(build_bodies(spec))
    ]


def check_loopback(host: str, port: int) -> None:
    """Refuse any host that does not resolve only to 127.0.0.0/8."""
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise LoadError(f"cannot resolve {host!r} as IPv4: {exc}") from None
    addresses = {info[4][0] for info in infos}
    outside = [a for a in addresses if ipaddress.ip_address(a) not in _LOOPBACK]
    if not addresses or outside:
        raise LoadError(f"refusing {host!r}: only 127.0.0.0/8 is allowed (got {outside})")


def parse_url(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise LoadError(f"only http://host:port/path URLs are supported, not {url!r}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, parts.port or 80, target


# --- response parsing --------------------------------------------------------------


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    close: bool


def parse_response(buf: bytearray) -> tuple[Response, int] | None:
    """One complete response at the start of `buf` and its length, or None if partial."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buf[:end]).split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked, close = 0, False, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    start = end + 4
    if chunked:
        found = _dechunk(buf, start)
        if found is None:
            return None
        body, used = found
        return Response(status, body, close), used
    if len(buf) < start + length:
        return None
    return Response(status, bytes(buf[start:start + length]), close), start + length


def _dechunk(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    parts: list[bytes] = []
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
        pos = eol + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n\r\n", pos - 2)
            return (b"".join(parts), trailer_end + 4) if trailer_end >= 0 else None
        if len(buf) < pos + size + 2:
            return None
        parts.append(bytes(buf[pos:pos + size]))
        pos += size + 2


class _Connection(asyncio.Protocol):
    """One keep-alive connection; `request()` sends and awaits one whole response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[Response] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None or self.waiter.done():
            return
        found = parse_response(self.buf)
        if found is not None:
            response, used = found
            del self.buf[:used]
            self.waiter.set_result(response)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    async def request(self, data: bytes, timeout: float) -> Response:
        """Send `data` and await the response; TimeoutError after `timeout` seconds."""
        if self.transport is None:
            raise ConnectionError("not connected")
        loop = asyncio.get_running_loop()
        waiter = self.waiter = loop.create_future()
        timer = loop.call_later(timeout, _expire, waiter)
        self.transport.write(data)
        try:
            return await waiter
        finally:
            timer.cancel()


def _expire(waiter: asyncio.Future[Response]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("no response in time"))


# --- running -----------------------------------------------------------------------


@dataclass
class _Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    summed: int = 0
    next_index: int = 0


async def _connect(host: str, port: int) -> _Connection:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(_Connection, host, port)
    return protocol


async def _worker(conn: _Connection, requests: Sequence[bytes], tally: _Tally,
                  spec: LoadSpec, host: str, port: int) -> None:
    clock = time.perf_counter
    while tally.next_index < len(requests):
        data = requests[tally.next_index]
        tally.next_index += 1
        if conn.lost:
            conn = await _connect(host, port)
        started = clock()
        try:
            response = await conn.request(data, spec.timeout)
        except (ConnectionError, TimeoutError) as exc:
            tally.errors[type(exc).__name__] += 1
            if conn.transport is not None:
                conn.transport.close()
            conn.lost = True
            continue
        tally.latencies.append(clock() - started)
        tally.statuses[response.status] += 1
        if spec.sum_field and 200 <= response.status < 300:
            tally.summed += int(json.loads(response.body).get(spec.sum_field, 0))
        if response.close:
            conn.transport.close()  # type: ignore[union-attr]
            conn.lost = True
    if conn.transport is not None:
        conn.transport.close()


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def _report(spec: LoadSpec, tally: _Tally, elapsed: float) -> dict[str, Any]:
    lat = sorted(tally.latencies)
    ms = {name: round(percentile(lat, q) * 1000, 3) for name, q in _PERCENTILES}
    ms["max"] = round(lat[-1] * 1000, 3) if lat else float("nan")
    ms["mean"] = round(sum(lat) / len(lat) * 1000, 3) if lat else float("nan")
    ok = sum(n for status, n in tally.statuses.items() if 200 <= status < 300)
    report: dict[str, Any] = {
        "url": spec.url, "requests": spec.requests, "concurrency": spec.concurrency,
        "batch": spec.batch, "elapsed_s": round(elapsed, 4),
        "completed": len(tally.latencies), "ok": ok,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "errors": dict(tally.errors),
        "requests_per_s": round(len(lat) / elapsed, 1) if elapsed else None,
        "ok_per_s": round(ok / elapsed, 1) if elapsed else None,
        "latency_ms": ms,
    }
    if spec.sum_field:
        report["summed"] = {spec.sum_field: tally.summed,
                            "per_s": round(tally.summed / elapsed, 1) if elapsed else None}
    return report


async def run_async(spec: LoadSpec) -> dict[str, Any]:
    """Run the load described by `spec`; returns the report dict."""
    host, port, target = parse_url(spec.url)
    check_loopback(host, port)
    if spec.requests < 1 or spec.concurrency < 1:
        raise LoadError("requests and concurrency must be at least 1")
    requests = build_requests(spec, host, port, target)
    width = min(spec.concurrency, spec.requests)
    try:
        conns = await asyncio.gather(*(_connect(host, port) for _ in range(width)))
    except OSError as exc:
        raise LoadError(f"cannot connect to {host}:{port}: {exc}") from None
    tally = _Tally()
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(_worker(c, requests, tally, spec, host, port) for c in conns))
    report = _report(spec, tally, time.perf_counter() - started)
    # Its own CPU while the clock ran: fixed work per request, so a yardstick of the
    # machine's speed at the time (bench/README.md: normalised A/B runs).
    report["cpu_s"] = round(time.process_time() - cpu, 4)
    return report


def _loop_factory(use_uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if not use_uvloop:
        return None
    try:
        import uvloop  # noqa: PLC0415 - optional
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(spec: LoadSpec, *, use_uvloop: bool = True) -> dict[str, Any]:
    """Blocking wrapper around run_async (on uvloop when importable)."""
    factory = _loop_factory(use_uvloop)
    with asyncio.Runner(loop_factory=factory) as runner:
        report = runner.run(run_async(spec))
    report["loop"] = "uvloop" if factory is not None else "asyncio"
    return report


# --- command line ------------------------------------------------------------------


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"header {text!r} is not 'Name: value'")
    return name.strip(), value.strip()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="HTTP/1.1 keep-alive load generator for 127.0.0.0/8 only; prints JSON.")
    p.add_argument("--url", required=True, help="http://127.0.0.1:PORT/path")
    p.add_argument("-n", "--requests", type=int, required=True, help="total requests")
    p.add_argument("-c", "--concurrency", type=int, default=50,
                   help="connections, opened before the clock starts (default 50)")
    p.add_argument("-m", "--method", default=None, help="default: POST with a body, else GET")
    p.add_argument("-H", "--header", action="append", type=_header, default=[],
                   help="'Name: value', repeatable")
    p.add_argument("--body", help="body template; {i} or {i:07d} is the request index")
    p.add_argument("--batch", type=int, default=0,
                   help='K>0: each body is {"messages": [K rendered templates]}')
    p.add_argument("--start", type=int, default=0, help="first index (default 0)")
    p.add_argument("--sum-field", help="sum this JSON field of 2xx bodies (e.g. accepted)")
    p.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    p.add_argument("--no-uvloop", action="store_true", help="use the stdlib event loop")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    spec = LoadSpec(
        url=args.url, requests=args.requests, concurrency=args.concurrency,
        method=args.method or ("POST" if args.body is not None else "GET"),
        headers=dict(args.header), body=args.body, batch=args.batch, start=args.start,
        sum_field=args.sum_field, timeout=args.timeout,
    )
    try:
        report = run(spec, use_uvloop=not args.no_uvloop)
    except LoadError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
