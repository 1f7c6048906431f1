"""Benchmark of the XML API's hot path against the spool's batched-insert rate.

    python bench/xml_doc.py [--runs 3]

Measures, as medians: lxml parse + XMLSchema validation + field extraction of a
1,000-message document; xmlschema's validation of it (the error path); SQLite batched
inserts of 10,000 rows through the spool; and a 10,000-message document end to end
(POST /xml on a real hub: parse, validate, normalise, commit, answer), reported also as
a share of the insert rate measured in the same run; and single-message documents from
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
import xmlschema
from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.http_xml import XSD, read_request
from adapters.http_xml_safety import SchemaValidator
from hub.config import load, with_overrides
from spool import open_spool
from tests.factories import make_account, new_message
from tests.hubthread import HubThread

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


def insert_rate(runs: int) -> float:
    def once() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            spool = open_spool(f"sqlite:///{tmp}/spool.db")
            spool.upgrade()
            account = make_account(spool, credits="1000000")
            rows = [new_message(account, recipient=f"+278212{i:05d}") for i in range(10_000)]
            started = time.perf_counter()
            spool.accept(rows)
            elapsed = time.perf_counter() - started
            spool.close()
            return 10_000 / elapsed
    return statistics.median(once() for _ in range(runs))


def end_to_end_rate(runs: int) -> float:
    body = document(10_000)
    with tempfile.TemporaryDirectory() as tmp:
        config = with_overrides(load(None, env={}), hub={"data_dir": tmp, "node": "bench"},
                                http={"port": 0}, dispatcher={"enabled": False})
        hub = HubThread(config).start()
        try:
            key = hub.account("bench", credits="1000000", sender_ids=("ACME",))
            with httpx.Client(base_url=hub.url, timeout=120,
                              headers={"Authorization": f"Bearer {key}"}) as client:
                def post() -> None:
                    r = client.post("/xml", content=body)
                    assert r.status_code == 200 and b'accepted="10000"' in r.content, r.text[:300]
                return rate(10_000, runs, post)
        finally:
            hub.stop()


SINGLE_DOC = ('<submitRequest xmlns="urn:smshub:xml:1"><message><to>+2782{i:07d}</to>'
              '<text>Your code is {i}</text></message></submitRequest>')


def single_document_rate(runs: int, requests: int = 10_000) -> float:
    """Median requests/s of single-message documents, 50 clients, dispatcher off."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import spine  # noqa: PLC0415 - the spine benchmark's server and client helpers

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    doc = document(1_000)
    validator = SchemaValidator(XSD)
    fast = rate(1_000, runs, lambda: read_request(doc, validator, 10_000, "Africa/Johannesburg"))
    precise_schema = xmlschema.XMLSchema(str(XSD))
    precise = rate(1_000, runs, lambda: precise_schema.validate(etree.fromstring(doc)))
    inserts = insert_rate(runs)
    e2e = end_to_end_rate(runs)
    singles = single_document_rate(runs)
    print(f"lxml parse+validate+extract, 1,000-message doc: {fast:10,.0f} messages/s")
    print(f"xmlschema validation (error path only):         {precise:10,.0f} messages/s")
    print(f"SQLite batched insert, 10,000 rows (spool):     {inserts:10,.0f} rows/s")
    print(f"10,000-message document end to end (POST /xml): {e2e:10,.0f} messages/s "
          f"= {Decimal(e2e / inserts * 100).quantize(Decimal('1'))}% of the insert rate")
    print(f"single-message documents, 50 clients (SQLite):  {singles:10,.0f} requests/s")


if __name__ == "__main__":
    main()
