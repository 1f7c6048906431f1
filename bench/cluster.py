"""Several hub nodes on one PostgreSQL (issue #16): end-to-end throughput through SMPP
with 1, 2 or 3 dispatching nodes and with separate ingress nodes, the CPU each process
spends per message, and PostgreSQL's own CPU, commits and WAL per message.

Each layout is a string of node letters: A a node of role all, I an ingress node, D a
dispatch node (`smshub serve --role ...`, docs/nodes.md), each its own [hub] node name and
data directory. Default layouts: A AA AAA ID IDD IIDD. Per run, for each layout in turn:

1. a fresh database on a private PostgreSQL cluster (initdb'd once into a temporary
   directory, fsync on, as the machine's shared server; root runs it as the postgres
   user) or, with --pg-url, on that server;
2. fake_smsc.pl (`--fake-smsc PATH`, Debian's Net::SMPP) on a free port, expecting N;
3. the nodes, each one transceiver bind (system_id = node name, window 100); `smshub db
   upgrade`, an account and an API key with the CLI, one secret.key copied to all;
4. N messages posted in bulk requests of 1,000 spread over the nodes with a listener
   (A and I), one thread each, while the dispatchers send;
5. until all N are delivered (their receipt applied), then every process stopped.

Figures, from the first request (wall clock): accepted/s (all N acknowledged), submitted/s
(the SMSC's N-th submit_sm), delivered/s (the last receipt committed, max(completed_at));
CPU as utime+stime (with reaped children) of each node's process tree, of the SMSC, of
PostgreSQL (the postmaster and every backend: the private cluster's only; with --pg-url
every `postgres` process of the machine, others' included), per message delivered;
PostgreSQL's transactions committed (pg_stat_database, this database) and WAL bytes
(pg_stat_wal, the whole server) per message; the share of the machine other processes
used meanwhile. Medians (min-max) over --runs.

    .venv/bin/python bench/cluster.py --fake-smsc KANNEL/fake_smsc.pl --n 20000 --runs 3
    .venv/bin/python bench/cluster.py --fake-smsc KANNEL/fake_smsc.pl --layouts A,AAA --runs 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]
from smpp_e2e import (  # noqa: E402 - bench/ is not a package
    die_with_parent,
    free_port,
    machine_ticks,
    read_json,
    show,
    stop,
    wait_for,
)

from tests.faults import cluster  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
ROLES = {"A": "all", "I": "ingress", "D": "dispatch"}
NODE_TOML = """\
[hub]
data_dir = "{data}"
node = "{name}"
log_level = "warning"

[http]
enabled = {http}
host = "127.0.0.1"
port = {http_port}

[spool]
url = "{url}"

[routing]
default_carrier = "smsc"

[carriers.smsc]
type = "smpp"
host = "127.0.0.1"
port = {smsc_port}
system_id = "{name}"
password = "bench"
bind_mode = "transceiver"
window = 100
"""


# --- CPU from /proc -------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def _children() -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):  # gone meanwhile
                found.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
    return found


def tree_cpu(pid: int, children: dict[int, list[int]] | None = None) -> float:
    """CPU seconds of a process and its live descendants, each with its reaped children
    (a PostgreSQL backend that ended is in the postmaster's cutime)."""
    children = _children() if children is None else children
    try:
        f = _stat(pid)
    except OSError:
        return 0.0
    own = sum(int(x) for x in f[11:15]) / CLK_TCK
    return own + sum(tree_cpu(c, children) for c in children.get(pid, ()))


def named_cpu(name: str) -> float:
    """CPU seconds of every process called `name` (with its reaped children)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    total += sum(int(x) for x in _stat(int(entry.name))[11:15]) / CLK_TCK
            except OSError:
                pass
    return total


# --- PostgreSQL -------------------------------------------------------------------------


class BenchCluster(cluster.Cluster):
    """The fault tests' private cluster, started as a real server is (fsync on), with
    any extra settings ("synchronous_commit=off")."""

    def __init__(self, settings: list[str]) -> None:
        super().__init__()
        self.settings = settings

    def start(self) -> None:
        extra = "".join(f" -c {s}" for s in self.settings)
        self._as_postgres(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1{extra}",
            "-w",
            "-t",
            "30",
            "start",
        )

    def postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])


class Postgres:
    """Where the runs' databases live, and how its CPU and counters are read."""

    def __init__(self, url: str | None, settings: list[str]) -> None:
        self.private = BenchCluster(settings) if url is None else None
        if self.private is not None:
            self.private.start()
        self.url = url or self.private.url  # type: ignore[union-attr]
        self.admin = sqlalchemy.create_engine(
            make_url(self.url).set(drivername="postgresql+psycopg"),
            poolclass=sqlalchemy.NullPool,
            isolation_level="AUTOCOMMIT",
        )

    def database(self, name: str) -> str:
        with self.admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
        return str(make_url(self.url).set(database=name).render_as_string(hide_password=False))

    def drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

    def cpu(self) -> float:
        if self.private is not None:
            return tree_cpu(self.private.postmaster())
        return named_cpu("postgres")

    def counters(self, name: str) -> tuple[int, int]:
        """(transactions committed in database `name`, WAL bytes of the server)."""
        with self.admin.connect() as conn:
            commits = conn.execute(
                sqlalchemy.text("SELECT xact_commit FROM pg_stat_database WHERE datname = :d"),
                {"d": name},
            ).scalar_one()
            wal = conn.execute(sqlalchemy.text("SELECT wal_bytes FROM pg_stat_wal")).scalar_one()
        return int(commits), int(wal)

    def sample_waits(self, name: str, stop: threading.Event, into: Counter[str]) -> None:
        """Until `stop`: every 50 ms, what each backend of database `name` is doing: on
        CPU, waiting (its wait event: a lock, the WAL flush...), inside a transaction
        waiting for the hub ("idle in transaction"), or idle."""
        with self.admin.connect() as conn:
            query = sqlalchemy.text(
                "SELECT CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || "
                "wait_event, 'on CPU') ELSE state END, count(*) FROM pg_stat_activity "
                "WHERE datname = :d AND pid <> pg_backend_pid() GROUP BY 1"
            )
            while not stop.wait(0.05):
                for what, count in conn.execute(query, {"d": name}):
                    into[str(what)] += int(count)

    def close(self) -> None:
        self.admin.dispose()
        if self.private is not None:
            self.private.close()


# --- one run of one layout ----------------------------------------------------------------


class Node:
    def __init__(self, name: str, role: str, home: Path, env: dict[str, str]) -> None:
        self.name, self.role, self.home, self.env = name, role, home, env
        self.http_port = free_port() if role != "dispatch" else 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def configure(self, url: str, smsc_port: int) -> None:
        (self.home / "hub.toml").write_text(
            NODE_TOML.format(
                data=self.home / "var",
                name=self.name,
                http=str(self.role != "dispatch").lower(),
                http_port=self.http_port,
                url=url,
                smsc_port=smsc_port,
            )
        )

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "hub", *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"smshub {' '.join(args)}: {done.stderr.strip()[-400:]}")
        return done.stdout.strip()

    def start(self) -> None:
        with open(self.home / "hub.log", "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub", "serve", "--role", self.role],
                env=self.env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads yet
            )


class Run:
    def __init__(self, args: argparse.Namespace, pg: Postgres, layout: str, index: int) -> None:
        self.args, self.pg, self.layout, self.index = args, pg, layout, index
        self.dir = Path(tempfile.mkdtemp(prefix=f"cluster-{layout}-{index}-"))
        self.db = f"bench_{layout.lower()}_{index}"
        self.smsc: subprocess.Popen[bytes] | None = None
        counts: dict[str, int] = {}
        self.nodes: list[Node] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSHUB_")}
        env["PYTHONPATH"] = str(ROOT)  # this tree's hub, whatever the venv points at
        for letter in layout:
            counts[letter] = counts.get(letter, 0) + 1
            name = f"{ROLES[letter][0]}{counts[letter]}"
            home = self.dir / name
            home.mkdir()
            self.nodes.append(
                Node(name, ROLES[letter], home, {**env, "SMSHUB_CONFIG": str(home / "hub.toml")})
            )

    def execute(self) -> dict[str, Any]:
        a, n = self.args, self.args.n
        url = self.pg.database(self.db)
        stats = self.dir / "smsc_stats.json"
        smsc_port = free_port()
        with open(self.dir / "fake_smsc.log", "wb") as log:
            self.smsc = subprocess.Popen(
                [
                    "perl",
                    str(a.fake_smsc),
                    "--port",
                    str(smsc_port),
                    "--expect",
                    str(n),
                    "--stats",
                    str(stats),
                    "--max-seconds",
                    str(int(600 + n / 20)),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads yet
            )
        wait_for("fake SMSC start", stats.exists, 10, alive=[self.smsc])
        for node in self.nodes:
            node.configure(url, smsc_port)
        first = self.nodes[0]
        first.cli("db", "upgrade")
        first.cli(
            "account",
            "create",
            "bench",
            "--credits",
            str(n * 10),
            "--price-per-segment",
            "0.01",
            "--sender-id",
            "ACME",
        )
        key = first.cli("account", "api-key", "bench").split()[-1]
        for node in self.nodes[1:]:
            (node.home / "var").mkdir(mode=0o700)
            shutil.copy2(first.home / "var" / "secret.key", node.home / "var" / "secret.key")
        for node in self.nodes:
            node.start()
        front = [x for x in self.nodes if x.role != "dispatch"]
        senders = sum(x.role != "ingress" for x in self.nodes)
        procs = [x.proc for x in self.nodes if x.proc is not None]
        for node in front:
            wait_for(
                f"{node.name} /readyz",
                lambda node=node: _status(node.url + "/readyz") == 200,
                60,
                0.2,
                alive=procs,
            )
        wait_for(
            "SMPP binds",
            lambda: read_json(stats).get("sessions_open", 0) >= senders,
            60,
            0.1,
            alive=procs,
        )
        time.sleep(1.0)  # start-up work (first upkeep pass) settles

        children = _children()
        cpu0 = {x.name: tree_cpu(x.proc.pid, children) for x in self.nodes if x.proc}
        smsc0, pg0, self0 = tree_cpu(self.smsc.pid, children), self.pg.cpu(), time.process_time()
        commits0, wal0 = self.pg.counters(self.db)
        ticks0 = machine_ticks()
        load0 = os.getloadavg()[0]
        waits: Counter[str] = Counter()
        sampling = threading.Event()
        sampler = threading.Thread(target=self.pg.sample_waits, args=(self.db, sampling, waits))
        sampler.start()
        t0 = time.time()
        accepted = _load(front, key, n, a.batch)
        t_accepted = time.time()
        engine = sqlalchemy.create_engine(
            make_url(url).set(drivername="postgresql+psycopg"), poolclass=sqlalchemy.NullPool
        )
        try:

            def delivered() -> bool:
                with engine.connect() as conn:
                    done = conn.execute(
                        sqlalchemy.text("SELECT count(*) FROM messages WHERE status = 'delivered'")
                    ).scalar_one()
                    return bool(int(done) >= n)

            wait_for("all delivered", delivered, a.timeout, 0.25, alive=[*procs, self.smsc])
            children = _children()
            cpu = {
                x.name: tree_cpu(x.proc.pid, children) - cpu0[x.name] for x in self.nodes if x.proc
            }
            smsc_cpu = tree_cpu(self.smsc.pid, children) - smsc0
            pg_cpu, self_cpu = self.pg.cpu() - pg0, time.process_time() - self0
            ticks1 = machine_ticks()
            with engine.connect() as conn:
                last_done, by_node = conn.execute(
                    sqlalchemy.text("SELECT max(completed_at), count(*) FROM messages")
                ).one()
                statuses = {
                    str(k): int(v)
                    for k, v in conn.execute(
                        sqlalchemy.text("SELECT status, count(*) FROM messages GROUP BY status")
                    )
                }
        finally:
            engine.dispose()
            sampling.set()
            sampler.join()
        time.sleep(1.2)  # backends report their counters at most once a second
        commits1, wal1 = self.pg.counters(self.db)
        t_smsc = read_json(stats).get("expect_reached_ts") or float("nan")
        window = max(1e-9, (ticks1[0] - ticks0[0]) / CLK_TCK)
        ours = sum(cpu.values()) + smsc_cpu + pg_cpu + self_cpu
        busy = (ticks1[1] - ticks0[1]) / CLK_TCK
        t_done = int(last_done) / 1e6
        return {
            "layout": self.layout,
            "accepted": accepted,
            "statuses": statuses,
            "accepted_per_s": n / (t_accepted - t0),
            "submitted_per_s": n / (float(t_smsc) - t0),
            "delivered_per_s": n / (t_done - t0),
            "node_cpu_us": {k: 1e6 * v / n for k, v in cpu.items()},
            "hub_cpu_us": 1e6 * sum(cpu.values()) / n,
            "pg_cpu_us": 1e6 * pg_cpu / n,
            "smsc_cpu_us": 1e6 * smsc_cpu / n,
            "loader_cpu_us": 1e6 * self_cpu / n,
            "hub_cores": sum(cpu.values()) / (t_done - t0),
            "pg_cores": pg_cpu / (t_done - t0),
            "commits_per_msg": (commits1 - commits0) / n,
            "commits_per_s": (commits1 - commits0) / (t_done - t0),
            "wal_bytes_per_msg": (wal1 - wal0) / n,
            "foreign_pct": 100 * max(0.0, busy - ours) / (window * (os.cpu_count() or 1)),
            "load_avg": load0,
            "pg_backends": {
                k: round(100 * v / max(1, sum(waits.values())), 1) for k, v in waits.most_common(6)
            },
            "messages": by_node,
        }

    def cleanup(self) -> None:
        for node in self.nodes:
            stop(node.proc, f"node {node.name}")
        stop(self.smsc, "fake_smsc.pl", grace=10)
        try:
            self.pg.drop(self.db)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            print(f"cluster: could not drop {self.db}: {exc}", file=sys.stderr)
        if not self.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def _load(front: list[Node], key: str, n: int, batch: int) -> int:
    """Post N messages in requests of `batch`, one thread per listener; how many were
    accepted (every request must be answered 202)."""
    todo = [range(i, min(i + batch, n)) for i in range(0, n, batch)]
    lock, done, errors = threading.Lock(), [0], []

    def work(node: Node) -> None:
        with httpx.Client(
            base_url=node.url, timeout=120, headers={"Authorization": f"Bearer {key}"}
        ) as client:
            while True:
                with lock:
                    if not todo:
                        return
                    part = todo.pop()
                body = {
                    "messages": [
                        {"to": f"+49160{i:07d}", "text": f"Benchmark message number {i}"}
                        for i in part
                    ]
                }
                answer = client.post("/v1/messages", json=body)
                if answer.status_code != 202:
                    errors.append(f"{answer.status_code} {answer.text[:200]}")
                    return
                with lock:
                    done[0] += int(answer.json()["accepted"])

    threads = [threading.Thread(target=work, args=(x,)) for x in front]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors or done[0] != n:
        raise RuntimeError(f"{done[0]} of {n} accepted: {errors[:3]}")
    return done[0]


# --- reporting ----------------------------------------------------------------------------


COLUMNS = (
    ("delivered/s", "delivered_per_s", "{:,.0f}"),
    ("submitted/s", "submitted_per_s", "{:,.0f}"),
    ("accepted/s", "accepted_per_s", "{:,.0f}"),
    ("hub CPU us/msg", "hub_cpu_us", "{:,.0f}"),
    ("PG CPU us/msg", "pg_cpu_us", "{:,.0f}"),
    ("SMSC CPU us/msg", "smsc_cpu_us", "{:,.0f}"),
    ("hub cores", "hub_cores", "{:.2f}"),
    ("PG cores", "pg_cores", "{:.2f}"),
    ("commits/msg", "commits_per_msg", "{:.3f}"),
    ("commits/s", "commits_per_s", "{:,.0f}"),
    ("WAL B/msg", "wal_bytes_per_msg", "{:,.0f}"),
    ("others %", "foreign_pct", "{:.0f}"),
)


def summary(layout: str, results: list[dict[str, Any]]) -> None:
    print(f"== {layout}: median of {len(results)} (min-max)")
    for name, key, fmt in COLUMNS:
        values = [r[key] for r in results]
        print(
            f"   {name:16} {fmt.format(statistics.median(values)):>10}  "
            f"({fmt.format(min(values))}-{fmt.format(max(values))})"
        )
    nodes = sorted({k for r in results for k in r["node_cpu_us"]})
    per = {k: statistics.median(r["node_cpu_us"].get(k, 0.0) for r in results) for k in nodes}
    print(
        "   CPU us/msg by node: " + ", ".join(f"{k} {v:,.0f}" for k, v in per.items()), flush=True
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--fake-smsc",
        type=Path,
        required=True,
        metavar="PATH",
        help="the Kannel anchor harness's fake_smsc.pl (Debian's Net::SMPP)",
    )
    p.add_argument(
        "--layouts",
        default="A,AA,AAA,ID,IDD,IIDD",
        help="comma-separated; A all, I ingress, D dispatch (default A,AA,AAA,ID,IDD,IIDD)",
    )
    p.add_argument("--n", type=int, default=20_000, help="messages per run (default 20000)")
    p.add_argument("--runs", type=int, default=3, help="runs of each layout (default 3)")
    p.add_argument("--batch", type=int, default=1000, help="messages per request (1000)")
    p.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds to wait for all N delivered (default 600)",
    )
    p.add_argument(
        "--pg-url",
        default=None,
        help="use this PostgreSQL server (a database per run) instead of a "
        "private cluster; its CPU is then every `postgres` process's",
    )
    p.add_argument(
        "--pg-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the private cluster, e.g. synchronous_commit=off "
        "(commits stop waiting for the WAL flush: the CPU-bound ceiling)",
    )
    p.add_argument("--keep", action="store_true", help="keep each run's directory")
    p.add_argument("--json", action="store_true", help="also print each run as JSON")
    a = p.parse_args()
    layouts = [x.strip().upper() for x in a.layouts.split(",") if x.strip()]
    if any(set(x) - set(ROLES) or ("I" in x and not set(x) & {"A", "D"}) for x in layouts):
        sys.exit("cluster: a layout is letters A, I, D and needs a dispatching node")
    if not a.fake_smsc.exists():
        sys.exit(f"cluster: {a.fake_smsc} missing")
    if (
        subprocess.run(
            ["perl", "-MNet::SMPP", "-e", "1"], capture_output=True, check=False
        ).returncode
        != 0
    ):
        sys.exit("cluster: perl Net::SMPP missing (apt-get install -y libnet-smpp-perl)")
    if a.pg_url is None and (reason := cluster.missing()):
        sys.exit(f"cluster: no private PostgreSQL ({reason}); give --pg-url")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    where = "at --pg-url" if a.pg_url else f"a private cluster {' '.join(a.pg_setting)}"
    print(
        f"cluster: code {head or '?'}; N={a.n} runs={a.runs} layouts {','.join(layouts)}; "
        f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; PostgreSQL {where}",
        flush=True,
    )
    pg = Postgres(a.pg_url, a.pg_setting)
    results: dict[str, list[dict[str, Any]]] = {x: [] for x in layouts}
    try:
        for i in range(1, a.runs + 1):  # layouts interleaved: drift hits each alike
            for layout in layouts:
                run = Run(a, pg, layout, i)
                try:
                    r = run.execute()
                except (
                    RuntimeError,
                    TimeoutError,
                    OSError,
                    sqlalchemy.exc.SQLAlchemyError,
                    httpx.HTTPError,
                ) as exc:
                    a.keep = True
                    print(f"{layout} run {i}: FAILED: {exc} (logs in {run.dir})", file=sys.stderr)
                    return 1
                finally:
                    run.cleanup()
                results[layout].append(r)
                show(f"{layout} run {i}", r, COLUMNS)
                print(
                    "       CPU us/msg by node: "
                    + ", ".join(f"{k} {v:,.0f}" for k, v in r["node_cpu_us"].items())
                    + f"; load average {r['load_avg']:.1f}; statuses {r['statuses']}"
                    + f"\n       PostgreSQL backends, % of samples: {r['pg_backends']}",
                    flush=True,
                )
                if a.json:
                    print(json.dumps(r))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        pg.close()
    for layout in layouts:
        summary(layout, results[layout])
    return 0


if __name__ == "__main__":
    sys.exit(main())
