"""Benchmark of the FTP drop: a native CSV of N rows (default 1,000,000) uploaded over FTP
on loopback into a hub subprocess (SQLite spool, dispatcher off), timed until its result
file is published, against the raw SQLAlchemy batched-insert rate for the same rows on
the same machine, in each of several runs (the ratio is the median of per-run ratios);
and the hub's peak RSS (VmHWM). With --small N instead: N small uploads (three rows) in
one session, each timed from STOR to its 226 (sent once the upload is recorded in the
spool), as a nightly job's many small files see it.

    python bench/ftp_batch.py [--rows 1000000] [--group 5000] [--runs 3]
    python bench/ftp_batch.py --small 200 [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ftplib
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from hub.app import settle_gc
from hub.intake import Intake, IntakeRules
from hub.model import Source, Submission
from hub.spoolcall import SpoolThreads
from spool import open_spool
from spool.tables import messages

PASSWORD = "bench password 1"


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("to,text,client_ref\n")
        for i in range(rows):
            out.write(f"08{2000000 + i % 9000000:08d},Payslip ready {i},r{i}\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hub_env(data: Path, port: int, group: int, *, dispatch: bool = False) -> dict[str, str]:
    return {**os.environ, "SMSHUB_HUB__DATA_DIR": str(data), "SMSHUB_FTP__ENABLED": "true",
            "SMSHUB_FTP__PORT": str(port), "SMSHUB_HTTP__ENABLED": "false",
            "SMSHUB_DISPATCHER__ENABLED": str(dispatch).lower(),
            "SMSHUB_FTP__ROWS_PER_GROUP": str(group),
            "SMSHUB_CONFIG": str(data / "none.toml")}


def smshub(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run([sys.executable, "-m", "hub", *args], env=env, input=stdin, text=True,
                   check=True, capture_output=True)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def served_drop(work: Path, group: int, credits: int, *,
                dispatch: bool = False) -> Iterator[tuple[Path, subprocess.Popen[bytes],
                                                          ftplib.FTP]]:
    """`smshub serve` with the FTP drop on, an account `acme` with `credits` at 1 a
    segment, and an FTP session logged in to it: (the hub's data directory, its process,
    the session). Stopped (SIGTERM) at the end."""
    data, port = work / "hub", free_port()
    data.mkdir()
    (data / "none.toml").write_text("")
    env = hub_env(data, port, group, dispatch=dispatch)
    smshub(env, "account", "create", "acme", "--credits", str(credits),
           "--price-per-segment", "1")
    smshub(env, "account", "password", "acme", stdin=PASSWORD + "\n")
    hub = subprocess.Popen([sys.executable, "-m", "hub", "serve"], env=env,
                           stderr=subprocess.DEVNULL)
    try:
        yield data, hub, connect(port)
    finally:
        stop(hub)


def ftp_run(csv_path: Path, rows: int, group: int, work: Path) -> tuple[float, float]:
    with served_drop(work, group, rows) as (data, hub, ftp):
        started = time.perf_counter()
        with csv_path.open("rb") as handle:
            ftp.storbinary("STOR big.csv", handle, blocksize=1 << 20)
        ftp.quit()
        result = data / "ftp" / "acme" / "results" / "big.result.csv"
        while not result.exists():
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        return rows / elapsed, peak_rss_mb(hub.pid)


def small_uploads(count: int, work: Path) -> list[float]:
    """Seconds from STOR to 226 for `count` three-row uploads, one session, with the
    dispatcher on (the simulator delivering them meanwhile), as the hub is run."""
    body = b"to,text\n0821234567,one\n0821234568,two\n0821234569,three\n"
    times = []
    with served_drop(work, 5000, 10 * count, dispatch=True) as (_, _, ftp):
        for i in range(count):
            started = time.perf_counter()
            ftp.storbinary(f"STOR small{i}.csv", io.BytesIO(body))
            times.append(time.perf_counter() - started)
        ftp.quit()
    return times


def stop(hub: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the hub's graceful stop), then SIGKILL if it has not exited in 60 s."""
    hub.terminate()
    try:
        hub.wait(60)
    except subprocess.TimeoutExpired:
        hub.kill()
        hub.wait(30)


def connect(port: int) -> ftplib.FTP:
    for _ in range(200):
        try:
            ftp = ftplib.FTP()
            ftp.connect("127.0.0.1", port, timeout=30)
            ftp.login("acme", PASSWORD)
            return ftp
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the hub's FTP server did not come up")


def raw_insert_rate(rows: int, group: int, work: Path) -> float:
    """Rows per second for plain executemany inserts of the same rows into `messages`."""
    spool = open_spool(f"sqlite:///{work / 'raw.db'}")
    spool.upgrade()
    spool.create_account("acme", 0, 1, [])  # type: ignore[arg-type]
    now = datetime.now(UTC)
    started = time.perf_counter()
    for start in range(0, rows, group):
        batch = [_row(i, now) for i in range(start, min(rows, start + group))]
        with spool.db.write() as conn:
            conn.execute(sa.insert(messages), batch)
    elapsed = time.perf_counter() - started
    spool.close()
    return rows / elapsed


def intake_rate(rows: int, group: int, work: Path) -> float:
    """Rows per second through `Intake.submit` alone (Submissions built beforehand, same
    groups, same kind of spool): the ceiling for any ingress adapter, FTP or not."""
    spool = open_spool(f"sqlite:///{work / 'intake.db'}")
    spool.upgrade()
    account = spool.create_account("acme", Decimal(rows), Decimal(1), [])
    runner = SpoolThreads(spool)
    intake = Intake(runner, IntakeRules(), group_commit_max=group)

    async def run() -> float:
        started, elapsed = time.perf_counter(), 0.0
        for start in range(0, rows, group):
            subs = [Submission(to=f"08{2000000 + i % 9000000:08d}", text=f"Payslip ready {i}",
                               client_ref=f"r{i}", batch_line=i + 2)
                    for i in range(start, min(rows, start + group))]
            began = time.perf_counter()
            await intake.submit(account, Source.FTP, subs, batch_id="bench")
            elapsed += time.perf_counter() - began
        del started
        return elapsed

    try:
        return rows / asyncio.run(run())
    finally:
        runner.shutdown()
        spool.close()


def _row(i: int, now: datetime) -> dict[str, object]:
    # As the hub stores a batch file's row: with its batch and its line in the file.
    return {"id": f"{i:026d}", "account_id": 1, "source": "ftp", "client_ref": f"r{i}",
            "batch_id": "bench", "batch_line": i + 2,
            "recipient": f"+278{2000000 + i % 9000000:08d}", "text": f"Payslip ready {i}",
            "encoding": "gsm7", "segments": 1, "cost": 1, "message_class": "transactional",
            "priority": 0, "due_at": now, "status": "queued", "attempts": 0,
            "accepted_at": now, "updated_at": now}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--group", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small", type=int, default=0, metavar="N",
                        help="N small uploads, each timed to its 226 (instead of one large)")
    args = parser.parse_args()
    if args.small:
        small(args.small, args.runs)
        return
    settle_gc()  # intake alone runs in this process: tuned as `smshub serve` is
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "big.csv"
        write_csv(csv_path, args.rows)
        for n in range(1, args.runs + 1):
            work = Path(tmp) / f"run{n}"
            work.mkdir()
            raw = raw_insert_rate(args.rows, args.group, work)
            ceiling = intake_rate(args.rows, args.group, work)
            rate, rss = ftp_run(csv_path, args.rows, args.group, work)
            runs.append((rate, raw, ceiling, rss))
            print(f"run {n}: FTP drop {rate:,.0f} rows/s, raw insert {raw:,.0f} rows/s "
                  f"({rate / raw:.0%}); intake alone {ceiling:,.0f} rows/s; hub peak RSS "
                  f"{rss:.0f} MB", flush=True)
    rate, raw, ceiling = (statistics.median(r[i] for r in runs) for i in range(3))
    share = statistics.median(r[0] / r[1] for r in runs)
    print(f"rows {args.rows}, median of {len(runs)} runs: FTP drop {rate:,.0f} rows/s, raw "
          f"insert {raw:,.0f} rows/s; FTP drop / raw insert {share:.0%} (median of per-run "
          f"ratios); intake alone {ceiling:,.0f} rows/s ({ceiling / raw:.0%} of raw); hub "
          f"peak RSS {max(r[3] for r in runs):.0f} MB (highest)")


def small(count: int, runs: int) -> None:
    medians = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(1, runs + 1):
            work = Path(tmp) / f"run{n}"
            work.mkdir()
            times = sorted(small_uploads(count, work))
            medians.append(statistics.median(times))
            print(f"run {n}: {count} small uploads, STOR to 226 median "
                  f"{1000 * medians[-1]:.1f} ms, 90th percentile "
                  f"{1000 * times[int(0.9 * len(times))]:.1f} ms", flush=True)
    print(f"median of {runs} runs' medians: {1000 * statistics.median(medians):.1f} ms")


if __name__ == "__main__":
    main()
