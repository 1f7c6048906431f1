"""Benchmark of the spine: intake over HTTP (single messages and batches of 1,000) and
dispatch through the simulator, on SQLite and on PostgreSQL, as medians of several runs.

    python bench/spine.py [--backend sqlite|postgresql|both] [--runs 3] [--quick]

Every run uses a fresh temporary data directory (and, on PostgreSQL, fresh schemas that
are dropped afterwards). The hub runs as `python -m hub serve` in a subprocess; the load
comes from bench/loadgen.py in another subprocess, so client and server never share an
interpreter. PostgreSQL: $SMSHUB_BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/test),
skipped with a message when unreachable. Results also go to bench/results/<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy
from sqlalchemy import func, insert, select
from ulid import ULID

from hub.model import Encoding, MessageClass, NewMessage, Source
from spool import open_spool
from spool.engine import normalise_url
from spool.tables import messages

BENCH = Path(__file__).resolve().parent
LOADGEN = BENCH / "loadgen.py"
RESULTS = BENCH / "results"
PG_ENV = "SMSHUB_BENCH_PG_URL"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
NUMBER = "+2782{i:07d}"  # distinct, valid South African mobile numbers (i < 10**7)
ITEM = '{"to": "' + NUMBER + '", "text": "Benchmark message {i}"}'
BATCH = 1000
CLIENTS_SINGLE = 50
CLIENTS_BATCH = 4
BODY_LIMIT = 8 * 1024 * 1024
CREDITS = "1000000000"
PRICE = "0.01"
_LISTENING = re.compile(r"HTTP listening on http://127\.0\.0\.1:(\d+)")


@dataclass(frozen=True)
class Sizes:
    warmup: int
    single: int
    batch_requests: int
    dispatch: int


FULL = Sizes(warmup=1000, single=20_000, batch_requests=100, dispatch=100_000)
QUICK = Sizes(warmup=500, single=5000, batch_requests=20, dispatch=20_000)


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    target: float | None = None  # at least this (higher is better)


METRICS = (
    Metric("single_per_s", "single POST, 50 clients", "msg/s", 5000),
    Metric("single_p50_ms", "  latency p50", "ms"),
    Metric("single_p99_ms", "  latency p99", "ms"),
    Metric("single_server_cpu", "  server CPU (1.0 = one core)", "cores"),
    Metric("single_client_cpu", "  loadgen CPU", "cores"),
    Metric("batch_per_s", "batches of 1,000, 4 clients", "msg/s", 40_000),
    Metric("batch_server_cpu", "  server CPU", "cores"),
    Metric("raw_insert_per_s", "  raw Core insert, same rows", "rows/s"),
    Metric("batch_vs_raw", "  batch / raw insert", "ratio"),
    Metric("dispatch_per_s", "dispatch to simulator", "msg/s", 5000),
    Metric("delivered_per_s", "  all delivery reports applied", "msg/s"),
    Metric("delivered_s", "  time until all delivered", "s"),
)


# --- spools ------------------------------------------------------------------------


def _engine(url: str) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(normalise_url(url), poolclass=sqlalchemy.pool.NullPool)


def pg_reachable(url: str) -> str | None:
    """None when PostgreSQL at `url` answers, else the reason it does not."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    except sqlalchemy.exc.SQLAlchemyError as exc:
        return str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    finally:
        engine.dispose()
    return None


@contextlib.contextmanager
def fresh_spool_url(backend: str, workdir: Path, name: str) -> Iterator[str]:
    """A URL of an empty spool: a new SQLite file, or a new PostgreSQL schema (dropped)."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / name / 'spool.db'}"
        return
    server = os.environ.get(PG_ENV, PG_DEFAULT)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    engine = _engine(server)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in server else "?"
    try:
        yield f"{server}{sep}options={quote(f'-csearch_path={schema}', safe='')}"
    finally:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def count_by_status(url: str) -> dict[str, int]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            query = select(messages.c.status, func.count()).group_by(messages.c.status)
            return {status: n for status, n in conn.execute(query)}
    finally:
        engine.dispose()


def make_messages(account_id: int, count: int, start: int) -> list[NewMessage]:
    """Queued one-segment messages like intake would build (not timed)."""
    now = datetime.now(UTC)
    expires = now + timedelta(days=2)
    return [
        NewMessage(
            id=str(ULID()), account_id=account_id, source=Source.REST,
            recipient=NUMBER.format(i=start + n), text=f"Benchmark message {start + n}",
            encoding=Encoding.GSM7, segments=1, cost=Decimal(PRICE), accepted_at=now,
            due_at=now, message_class=MessageClass.TRANSACTIONAL, expires_at=expires,
        )
        for n in range(count)
    ]


def core_row(nm: NewMessage) -> dict[str, Any]:
    """`nm` as the plain Core parameters of a `messages` row (types do the conversion)."""
    return {
        "id": nm.id, "account_id": nm.account_id, "source": nm.source.value,
        "client_ref": nm.client_ref, "batch_id": nm.batch_id, "sender": nm.sender,
        "recipient": nm.recipient, "text": nm.text, "encoding": nm.encoding.value,
        "segments": nm.segments, "cost": nm.cost, "message_class": nm.message_class.value,
        "priority": nm.priority, "send_at": nm.send_at, "expires_at": nm.expires_at,
        "due_at": nm.due_at, "status": "queued", "attempts": 0,
        "accepted_at": nm.accepted_at, "updated_at": nm.accepted_at,
    }


# --- the hub as a subprocess -------------------------------------------------------


def hub_env(workdir: Path, url: str, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSHUB_")}
    env.update({
        "SMSHUB_HUB__DATA_DIR": str(workdir / "var"), "SMSHUB_SPOOL__URL": url,
        "SMSHUB_HUB__NODE": "bench", "SMSHUB_HUB__LOG_LEVEL": "info",
        "SMSHUB_HTTP__PORT": "0", "SMSHUB_HTTP__MAX_BODY_BYTES": str(BODY_LIMIT),
    })
    env.update({f"SMSHUB_{k.upper()}": v for k, v in overrides.items()})
    return env


def hub_cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "hub", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"smshub {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip()


class Server:
    """`python -m hub serve` with its standard error drained (and kept) by a thread."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "hub", "serve"], env=env, cwd=cwd,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.port: int | None = None
        self.listening_at = 0.0  # time.monotonic() when the listening line was read
        self.log: deque[str] = deque(maxlen=40)
        self._ready = threading.Event()
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip())
            found = _LISTENING.search(line)
            if found and self.port is None:
                self.listening_at = time.monotonic()
                self.port = int(found.group(1))
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float = 60) -> Server:
        if not self._ready.wait(timeout) or self.port is None:
            self.stop()
            raise RuntimeError("smshub serve did not start:\n" + "\n".join(self.log))
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._drain.join(5)

    def __enter__(self) -> Server:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process `pid` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def loadgen(url: str, key: str, *, requests: int, clients: int, start: int,
            batch: int = 0, server_pid: int = 0) -> dict[str, Any]:
    """Run bench/loadgen.py in its own process; its JSON report, plus the CPU seconds
    the load generator and (given its pid) the server used meanwhile."""
    cmd = [sys.executable, str(LOADGEN), "--url", f"{url}/v1/messages", "-n", str(requests),
           "-c", str(clients), "-H", f"Authorization: Bearer {key}", "--body", ITEM,
           "--start", str(start)]
    if batch:
        cmd += ["--batch", str(batch), "--sum-field", "accepted"]
    client_before = children_cpu()
    server_before = cpu_seconds(server_pid) if server_pid else 0.0
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed: {done.stderr.strip()[-500:]}")
    report: dict[str, Any] = json.loads(done.stdout)
    report["client_cpu_s"] = round(children_cpu() - client_before, 2)
    if server_pid:
        report["server_cpu_s"] = round(cpu_seconds(server_pid) - server_before, 2)
    return report


def _accepted(report: dict[str, Any]) -> int:
    if report.get("summed"):
        return int(report["summed"]["accepted"])
    return int(report["statuses"].get("202", 0))


# --- the three measures ------------------------------------------------------------


class Profiler:
    """Optionally records the server with py-spy while one measure runs."""

    def __init__(self, directory: Path | None, gil_only: bool = False) -> None:
        self.directory = directory
        self.gil_only = gil_only

    @contextlib.contextmanager
    def record(self, pid: int, name: str) -> Iterator[None]:
        if self.directory is None:
            yield
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        out = self.directory / f"{name}.txt"
        cmd = ["py-spy", "record", "--pid", str(pid), "--rate", "200", "--nonblocking",
               "--threads", "--format", "raw", "--output", str(out)]
        if self.gil_only:
            cmd.append("--gil")
        spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            yield
        finally:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)


def measure_intake(backend: str, workdir: Path, sizes: Sizes, profiler: Profiler,
                   ) -> dict[str, Any]:
    """Single POSTs, then batches of 1,000, into one server with the dispatcher off."""
    with fresh_spool_url(backend, workdir, "intake") as url:
        env = hub_env(workdir, url, DISPATCHER__ENABLED="false")
        hub_cli(env, workdir, "account", "create", "bench", "--credits", CREDITS,
                "--price-per-segment", PRICE)
        key = hub_cli(env, workdir, "account", "api-key", "bench")
        with Server(env, workdir) as server:
            warm = loadgen(server.url, key, requests=sizes.warmup, clients=CLIENTS_SINGLE,
                           start=0)
            with profiler.record(server.proc.pid, f"{backend}-single"):
                single = loadgen(server.url, key, requests=sizes.single,
                                 clients=CLIENTS_SINGLE, start=100_000,
                                 server_pid=server.proc.pid)
            after_single = sum(count_by_status(url).values())
            warm_b = loadgen(server.url, key, requests=CLIENTS_BATCH, clients=CLIENTS_BATCH,
                             start=1_000_000, batch=BATCH)
            with profiler.record(server.proc.pid, f"{backend}-batch"):
                batch = loadgen(server.url, key, requests=sizes.batch_requests,
                                clients=CLIENTS_BATCH, start=2_000_000, batch=BATCH,
                                server_pid=server.proc.pid)
            after_batch = sum(count_by_status(url).values())
    single_ok = _accepted(warm) + _accepted(single)
    batch_ok = _accepted(warm_b) + _accepted(batch)
    return {
        "single": single, "batch": batch,
        "stored_after_single": after_single, "accepted_202_single": single_ok,
        "stored_after_batch": after_batch, "accepted_batch": single_ok + batch_ok,
        "verified": after_single == single_ok and after_batch == single_ok + batch_ok,
    }


def measure_raw_insert(backend: str, workdir: Path, count: int) -> dict[str, Any]:
    """SQLAlchemy Core inserts of intake-equivalent rows, 1,000 per transaction."""
    with fresh_spool_url(backend, workdir, "raw") as url:
        spool = open_spool(url)
        try:
            spool.upgrade()
            account = spool.create_account("raw", Decimal(CREDITS), Decimal(PRICE), [])
            rows = [core_row(m) for m in make_messages(account.id, count, 0)]
            engine = spool.db.engine  # the spool's own engine: same pragmas, same BEGIN
            started = time.perf_counter()
            for start in range(0, count, BATCH):
                with engine.begin() as conn:
                    conn.execute(insert(messages), rows[start:start + BATCH])
            elapsed = time.perf_counter() - started
        finally:
            spool.close()
    return {"rows": count, "elapsed_s": round(elapsed, 4), "rows_per_s": count / elapsed}


def prefill(url: str, count: int) -> float:
    """Queue `count` messages through the spool's own accept(); returns seconds taken."""
    started = time.perf_counter()
    spool = open_spool(url)
    try:
        spool.upgrade()
        account = spool.create_account("bench", Decimal(CREDITS), Decimal(PRICE), [])
        for start in range(0, count, 5000):
            spool.accept(make_messages(account.id, min(5000, count - start), start))
    finally:
        spool.close()
    return time.perf_counter() - started


def measure_dispatch(backend: str, workdir: Path, count: int, profiler: Profiler,
                     ) -> dict[str, Any]:
    """Start a hub on a pre-filled spool; time until all are submitted, then delivered."""
    with fresh_spool_url(backend, workdir, "dispatch") as url:
        fill_s = prefill(url, count)
        env = hub_env(workdir, url, SIMULATOR__REPORT_DELAY="0.5", HTTP__ENABLED="true")
        with Server(env, workdir) as server, \
                profiler.record(server.proc.pid, f"{backend}-dispatch"):
            timeline = _watch(url, count, server.listening_at, timeout=max(120, count / 500))
        final = count_by_status(url)
    sub_s, del_s = timeline.get("submitted_s"), timeline.get("delivered_s")
    return {
        "messages": count, "prefill_s": round(fill_s, 2), "final_statuses": final,
        "submitted_s": sub_s, "delivered_s": del_s, "samples": timeline["samples"],
        "dispatch_per_s": count / sub_s if sub_s else None,
        "delivered_per_s": count / del_s if del_s else None,
    }


def _watch(url: str, count: int, t0: float, timeout: float) -> dict[str, Any]:
    """Poll the status counts until every message is delivered (or the timeout)."""
    found: dict[str, Any] = {"samples": []}
    engine = _engine(url)
    query = select(messages.c.status, func.count()).group_by(messages.c.status)
    try:
        while time.monotonic() - t0 < timeout:
            with engine.connect() as conn:
                counts = {status: n for status, n in conn.execute(query)}
            now = round(time.monotonic() - t0, 3)
            found["samples"].append([now, counts])
            done = counts.get("submitted", 0) + counts.get("delivered", 0)
            if "submitted_s" not in found and done >= count:
                found["submitted_s"] = now
            if counts.get("delivered", 0) >= count:
                found["delivered_s"] = now
                break
            time.sleep(0.1)
    finally:
        engine.dispose()
    return found


# --- runs, summary and output ------------------------------------------------------


def one_run(backend: str, sizes: Sizes, profiler: Profiler) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="smshub-bench-") as tmp:
        workdir = Path(tmp)
        intake = measure_intake(backend, workdir, sizes, profiler)
        raw = measure_raw_insert(backend, workdir, sizes.batch_requests * BATCH)
        dispatch = measure_dispatch(backend, workdir, sizes.dispatch, profiler)
    return {"intake": intake, "raw_insert": raw, "dispatch": dispatch,
            "figures": figures(intake, raw, dispatch)}


def figures(intake: dict[str, Any], raw: dict[str, Any], dispatch: dict[str, Any],
            ) -> dict[str, float | None]:
    single, batch = intake["single"], intake["batch"]
    batch_per_s = batch["summed"]["per_s"]
    return {
        "single_per_s": single["statuses"].get("202", 0) / single["elapsed_s"],
        "single_p50_ms": single["latency_ms"]["p50"],
        "single_p99_ms": single["latency_ms"]["p99"],
        "single_server_cpu": single["server_cpu_s"] / single["elapsed_s"],
        "single_client_cpu": single["client_cpu_s"] / single["elapsed_s"],
        "batch_per_s": batch_per_s,
        "batch_server_cpu": batch["server_cpu_s"] / batch["elapsed_s"],
        "raw_insert_per_s": raw["rows_per_s"],
        "batch_vs_raw": batch_per_s / raw["rows_per_s"],
        "dispatch_per_s": dispatch["dispatch_per_s"],
        "delivered_per_s": dispatch["delivered_per_s"],
        "delivered_s": dispatch["delivered_s"],
    }


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def print_run(backend: str, n: int, run: dict[str, Any]) -> None:
    f = run["figures"]
    intake = run["intake"]
    print(f"[{backend} run {n}] single {_fmt(f['single_per_s'])} msg/s "
          f"(p50 {_fmt(f['single_p50_ms'])} ms, p99 {_fmt(f['single_p99_ms'])} ms) | "
          f"batch {_fmt(f['batch_per_s'])} msg/s (raw insert {_fmt(f['raw_insert_per_s'])}"
          f" rows/s, x{_fmt(f['batch_vs_raw'])}) | dispatch {_fmt(f['dispatch_per_s'])} "
          f"msg/s, all delivered in {_fmt(f['delivered_s'])} s | "
          f"every 202 stored: {'yes' if intake['verified'] else 'NO'}", flush=True)


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for metric in METRICS:
        values = [r["figures"][metric.key] for r in runs if r["figures"][metric.key] is not None]
        out[metric.key] = {
            "median": statistics.median(values) if values else None,
            "min": min(values) if values else None,
            "max": max(values) if values else None,
        }
    return out


def print_summary(summary: dict[str, dict[str, Any]], runs: dict[str, int]) -> None:
    print(f"\n{'backend':<11}{'measure':<32}{'median':>10}{'min':>10}{'max':>10}"
          f"  {'unit':<7}{'target':>8}  pass")
    for backend, table in summary.items():
        print(f"-- {backend}: median of {runs[backend]} run(s)")
        if not runs[backend]:
            continue
        for metric in METRICS:
            row = table[metric.key]
            target = verdict = ""
            if metric.target is not None:
                target = f">={metric.target:,.0f}"
                ok = row["median"] is not None and row["median"] >= metric.target
                verdict = "PASS" if ok else "FAIL"
            print(f"{backend:<11}{metric.label:<32}{_fmt(row['median']):>10}"
                  f"{_fmt(row['min']):>10}{_fmt(row['max']):>10}  {metric.unit:<7}"
                  f"{target:>8}  {verdict}")


def write_results(payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--runs", type=int, default=3, help="runs per backend (default 3)")
    p.add_argument("--quick", action="store_true",
                   help="smaller loads: 5,000 singles, 20 batches, 20,000 to dispatch")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="record the server with py-spy (raw stacks) during each measure into "
                        "DIR/<backend>-<measure>.txt; summarise with bench/stacks.py")
    p.add_argument("--profile-gil", action="store_true",
                   help="with --profile: sample only the thread holding the GIL (CPU view)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sizes = QUICK if args.quick else FULL
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    profiler = Profiler(args.profile, args.profile_gil)
    results: dict[str, list[dict[str, Any]]] = {}
    skipped: dict[str, str] = {}
    for backend in backends:
        if backend == "postgresql":
            reason = pg_reachable(os.environ.get(PG_ENV, PG_DEFAULT))
            if reason is not None:
                skipped[backend] = reason
                print(f"skipping PostgreSQL ({PG_ENV}): unreachable: {reason}")
                continue
        results[backend] = run_backend(backend, args.runs, sizes, profiler)
    summary = {backend: summarise(runs) for backend, runs in results.items()}
    print_summary(summary, {b: len(r) for b, r in results.items()})
    path = write_results({
        "when": datetime.now(UTC).isoformat(), "sizes": asdict(sizes), "cpus": os.cpu_count(),
        "python": sys.version.split()[0], "skipped": skipped,
        "targets": {m.key: m.target for m in METRICS if m.target is not None},
        "summary": summary, "runs": results,
    })
    print(f"\nresults: {path}")
    return 0


def run_backend(backend: str, runs: int, sizes: Sizes, profiler: Profiler,
                ) -> list[dict[str, Any]]:
    done = []
    for n in range(1, runs + 1):
        started = time.monotonic()
        try:
            run = one_run(backend, sizes, profiler)
        except (RuntimeError, sqlalchemy.exc.SQLAlchemyError) as exc:
            print(f"[{backend} run {n}] FAILED: {exc}", flush=True)
            continue
        run["wall_s"] = round(time.monotonic() - started, 1)
        print_run(backend, n, run)
        done.append(run)
    return done


if __name__ == "__main__":
    sys.exit(main())
