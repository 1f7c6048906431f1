"""Benchmark of the XML API's hot path against the spool's batched-insert rate.

    python bench/xml_doc.py [--runs 3]

Measures, as medians: lxml parse + XMLSchema validation + field extraction of a
1,000-message document; refusing the same document made invalid (the error path); SQLite batched
inserts of 10,000 rows through the spool; and a 10,000-message document end to end
(POST /xml to `smshub serve` in its own process: parse, validate, normalise, commit,
answer), each run beside a SQLAlchemy Core batched insert of the same 10,000 rows, and
reported as the median of the per-run ratios; and single-message documents from
50 concurrent clients (bench/loadgen.py in its own process) against `smshub serve` in
its own process, on SQLite, as requests/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.xml.native import XSD, read_request
from adapters.xml.safety import SchemaValidator, XmlProblem
from spool import open_spool
from spool.tables import messages

NS = "urn:smshub:xml:1"


def document(count: int) -> bytes:
    messages = "".join(f"<message><to>08212{i:05d}</to><text>Your code is {i}</text>"
                       f"<from>ACME</from><priority>1</priority></message>"
                       for i in range(count))
    return f'<submitRequest xmlns="{NS}">{messages}</submitRequest>'.encode()


def rate(count: int, runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return count / statistics.median(times)


def insert_rate() -> float:
    """Rows/s of one SQLAlchemy Core batched insert of 10,000 rows like the document's
    into a fresh spool (the spool's own engine: WAL, synchronous=FULL), one transaction."""
    spine = _spine()
    with tempfile.TemporaryDirectory() as tmp:
        spool = open_spool(f"sqlite:///{tmp}/spool.db")
        try:
            spool.upgrade()
            account = spool.create_account("raw", Decimal("1000000"), Decimal("0.1"), [])
            rows = [spine.core_row(m) for m in spine.make_messages(account.id, 10_000, 0)]
            started = time.perf_counter()
            with spool.db.engine.begin() as conn:
                conn.execute(insert(messages), rows)
            return 10_000 / (time.perf_counter() - started)
        finally:
            spool.close()


def end_to_end(runs: int) -> list[tuple[float, float]]:
    """(document messages/s, insert rows/s) per run: a 10,000-message document posted to
    `smshub serve` in its own process, each run beside a fresh insert measure."""
    spine = _spine()
    body = document(10_000)
    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = spine.hub_env(work, f"sqlite:///{work / 'spool.db'}", DISPATCHER__ENABLED="false")
        spine.hub_cli(env, work, "account", "create", "bench", "--credits", "1000000000",
                      "--sender-id", "ACME")
        key = spine.hub_cli(env, work, "account", "api-key", "bench")
        with spine.Server(env, work) as server, httpx.Client(
                base_url=server.url, timeout=120,
                headers={"Authorization": f"Bearer {key}"}) as client:
            def post() -> None:
                r = client.post("/xml", content=body)
                assert r.status_code == 200 and b'accepted="10000"' in r.content, r.text[:300]

            rate(10_000, 1, post)  # warm-up: first use of every code path
            for _ in range(runs):
                pairs.append((rate(10_000, 1, post), insert_rate()))
    return pairs


def _spine() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import spine  # noqa: PLC0415 - the spine benchmark's server, client and row helpers

    return spine


SINGLE_DOC = ('<submitRequest xmlns="urn:smshub:xml:1"><message><to>+2782{i:07d}</to>'
              '<text>Your code is {i}</text></message></submitRequest>')


def single_document_rate(runs: int, requests: int = 10_000) -> float:
    """Median requests/s of single-message documents, 50 clients, dispatcher off."""
    spine = _spine()
    rates = []
    for run in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            env = spine.hub_env(work, f"sqlite:///{work / 'spool.db'}",
                                DISPATCHER__ENABLED="false")
            spine.hub_cli(env, work, "account", "create", "bench", "--credits", "1000000000")
            key = spine.hub_cli(env, work, "account", "api-key", "bench")
            with spine.Server(env, work) as server:
                for n, start in ((1_000, 0), (requests, 1_000_000 * (run + 1))):
                    report = _loadgen(server.url, key, n, start)
            ok = report["statuses"].get("200", 0)
            assert ok == requests, report["statuses"]
            rates.append(float(report["ok_per_s"]))
    return statistics.median(rates)


def _loadgen(url: str, key: str, requests: int, start: int) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve().parent / "loadgen.py"),
           "--url", f"{url}/xml", "-n", str(requests), "-c", "50", "--start", str(start),
           "-H", f"Authorization: Bearer {key}", "-H", "Content-Type: application/xml",
           "--body", SINGLE_DOC]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def refuse(body: bytes, validator: SchemaValidator) -> None:
    try:
        read_request(body, validator, 10_000, "Africa/Johannesburg")
    except XmlProblem:
        return
    raise AssertionError("the invalid document was accepted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    doc = document(1_000)
    validator = SchemaValidator(XSD)
    fast = rate(1_000, runs, lambda: read_request(doc, validator, 10_000, "Africa/Johannesburg"))
    bad = doc.replace(b"</text>", b"</text><bogus/>")
    precise = rate(1_000, runs, lambda: refuse(bad, validator))
    pairs = end_to_end(runs)
    e2e = statistics.median(doc for doc, _ in pairs)
    inserts = statistics.median(raw for _, raw in pairs)
    share = statistics.median(doc / raw for doc, raw in pairs)
    singles = single_document_rate(runs)
    print(f"lxml parse+validate+extract, 1,000-message doc: {fast:10,.0f} messages/s")
    print(f"refusing it made invalid (error path only):     {precise:10,.0f} messages/s")
    print(f"SQLAlchemy batched insert, same 10,000 rows:   {inserts:10,.0f} rows/s")
    print(f"10,000-message document end to end (POST /xml): {e2e:10,.0f} messages/s")
    print(f"  document / insert, median of per-run ratios:  {share * 100:10.0f} %  "
          f"(runs: {', '.join(f'{d / r:.2f}' for d, r in pairs)})")
    print(f"single-message documents, 50 clients (SQLite):  {singles:10,.0f} requests/s")


if __name__ == "__main__":
    main()
