"""Benchmark of webhook delivery: how many signed events a second the outbox pushes to a
local receiver, and at what CPU cost.

    python bench/webhooks.py [--events 20000] [--runs 3]

Each run: a fresh SQLite spool (WAL, synchronous=FULL) with one account and one endpoint,
N `message.delivered` events queued the way the hub queues them (spool.webhooks, in
transactions of 500), then the hub's own OutboxRunner with its WebhookChannel (the
settings of `[webhooks]`: batches of 500, 200 in flight, 100 keep-alive connections)
on uvloop, timed from the first claim until every event is recorded as sent. The receiver
is a small HTTP/1.1 server in its own process (keep-alive, answers 204) that counts what it
got. Prints deliveries/s and the hub side's CPU per delivery (process time over the run:
signing, HTTP, the spool's claims and records), as medians over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.webhooks import service
from hub.clock import utcnow
from hub.config import Config, with_overrides
from hub.events import EventType
from hub.ids import new_id
from hub.outbox import OutboxRunner, OutboxSettings
from hub.policies import RetryPolicy
from hub.spoolcall import SpoolThreads
from hub.webhooks import new_endpoint
from spool import open_spool
from spool import webhooks as spool_webhooks


def receiver(port: multiprocessing.Queue[int], counted: multiprocessing.Queue[int],
             expected: int) -> None:
    """Answers every POST with 204 on keep-alive connections; reports the count once
    `expected` requests have arrived."""

    class Http(asyncio.Protocol):
        seen = 0

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                length = 0
                for line in self.buffer[:end].split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if len(self.buffer) < end + 4 + length:
                    return
                self.buffer = self.buffer[end + 4 + length:]
                self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")  # type: ignore[attr-defined]
                Http.seen += 1
                if Http.seen == expected:
                    counted.put(Http.seen)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", 0)
        port.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    uvloop.run(main())


def queue_events(spool_url: str, url: str, count: int) -> None:
    spool = open_spool(spool_url)
    spool.upgrade()
    spool.create_account("acme", Decimal(1000), Decimal("0.25"), ["ACME"])
    account = spool.get_account("acme")
    endpoint = new_endpoint(account.id, url, ["*"], service.parse_networks(["127.0.0.1/32"]),
                            utcnow())
    spool.create_webhook(endpoint)
    data = {"id": "01JEXAMPLE0000000000000000", "status": "delivered", "state": "delivered",
            "to": "+27821234567", "from": "ACME", "client_ref": None, "batch_id": None,
            "segments": 1, "carrier": "smsc", "error": None, "at": "2026-12-05T09:00:00.000Z"}
    for start in range(0, count, 500):
        with spool.db.write() as conn:
            for _ in range(min(500, count - start)):
                # Each about its own message, as delivery reports are: one probe each for
                # the order of that message's events.
                subject = new_id()
                spool_webhooks.emit(conn, account.id, EventType.MESSAGE_DELIVERED, utcnow(),
                                    {**data, "id": subject}, subject=subject)
    spool.close()


async def deliver(spool_url: str, count: int) -> tuple[float, float]:
    config = with_overrides(Config(), webhooks={"allow_networks": ["127.0.0.1/32"]})
    spool = open_spool(spool_url)
    threads = SpoolThreads(spool)
    runner = OutboxRunner(threads, service.outbox_channels(config, threads),
                          RetryPolicy(), OutboxSettings(), tuning=service.tuning(config))
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    sent = 0
    while sent < count:
        tried = await runner.run_channel("webhook")
        if not tried:
            raise SystemExit("events left undelivered: the receiver refused some")
        sent += tried
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    await runner.stop()
    threads.shutdown()
    spool.close()
    return count / elapsed, cpu / count * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    rates, costs = [], []
    for run in range(1, a.runs + 1):
        ports: multiprocessing.Queue[int] = multiprocessing.Queue()
        counted: multiprocessing.Queue[int] = multiprocessing.Queue()
        proc = multiprocessing.Process(target=receiver, args=(ports, counted, a.events),
                                       daemon=True)
        proc.start()
        try:
            url = f"http://127.0.0.1:{ports.get(timeout=10)}/hook"
            with tempfile.TemporaryDirectory() as tmp:
                spool_url = f"sqlite:///{tmp}/spool.db"
                queue_events(spool_url, url, a.events)
                rate, cost = uvloop.run(deliver(spool_url, a.events))
            assert counted.get(timeout=30) == a.events
        finally:
            proc.kill()
            proc.join()
        rates.append(rate)
        costs.append(cost)
        print(f"run {run}: {rate:,.0f} deliveries/s, {cost:,.0f} µs CPU per delivery")
    print(f"median of {a.runs}: {statistics.median(rates):,.0f} deliveries/s "
          f"({min(rates):,.0f}-{max(rates):,.0f}), {statistics.median(costs):,.0f} µs CPU "
          f"per delivery (hub side: spool, signing, HTTP)")


if __name__ == "__main__":
    main()
