"""smshub end to end through SMPP (issue #11): HTTP submit -> spool -> SMPP submit_sm ->
fake SMSC -> delivery receipt -> message status `delivered`, all on 127.0.0.1.

The SMSC is the one the Kannel anchor harness uses, its fake_smsc.pl (`--fake-smsc PATH`;
Debian's Net::SMPP; `apt-get install libnet-smpp-perl`), so the figures sit beside Kannel's from
`run.sh N` (same N, 50 keep-alive connections, one transceiver bind with a window of 100,
one receipt per message). Each run, in a fresh temporary directory:

1. starts fake_smsc.pl (`--expect N --stats FILE`) on a free port;
2. writes a hub.toml (SQLite spool under the temp dir, a free HTTP port, one SMPP carrier
   `[carriers.smsc]` as the routing default), creates an account and an API key with the
   `smshub` CLI, starts `smshub serve` and waits for /readyz and the SMSC bind;
3. waits (bounded) for a quiet machine, as run.sh does;
4. sends N single-message `POST /v1/messages` with bench/loadgen.py in its own process
   (50 connections, opened before the clock starts);
5. waits (bounded) until the SMSC has all N submit_sm and the spool has all N `delivered`
   (counted read-only on var/spool.db), then checks one message with GET /v1/messages/{id};
6. stops everything it started, by PID, also on error or Ctrl-C.

Figures, all from the first HTTP request (t0, wall clock):

    accepted/s     2xx answers / load generator time (first request .. last answer)
    submitted/s    N / (N-th submit_sm at the SMSC - t0)        (Kannel: delivered to SMSC/s)
    delivered/s    N / (last receipt applied in the spool - t0) (Kannel: receipts/s back; here
                   the end is the commit that makes the message `delivered`, the hub's
                   equivalent of Kannel's DLR callback)
    CPU us/msg     utime+stime of the hub processes (and of the SMSC) from just
                   before the load until all N are delivered, / N
    peak RSS       VmHWM of the hub process

    .venv/bin/python bench/smpp_e2e.py --n 10000 --runs 3
    .venv/bin/python bench/smpp_e2e.py --n 2000 --runs 1 --keep   # keep the temp dirs
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SMSHUB = ROOT / ".venv" / "bin" / "smshub"
PYTHON = ROOT / ".venv" / "bin" / "python"
# --loop asyncio starts `smshub serve` through hub.cli.main with the standard event loop
# (what `serve` does where uvloop is not installed); the default is the console script.
HUB_ASYNCIO = """\
import sys
import hub.cli
hub.cli._fast_loop = lambda: None
sys.exit(hub.cli.main())
"""
CLK_TCK = os.sysconf("SC_CLK_TCK")
BODY = '{"to": "+49160{i:07d}", "text": "Benchmark message number {i}"}'


# --- small helpers -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:
    """In a child before exec: SIGTERM it if this script dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        import ctypes  # noqa: PLC0415 - Linux only, children only
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid` (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a default `smshub serve` starts its dispatch process)."""
    pids, i = [pid], 0
    while i < len(pids):
        for task in Path(f"/proc/{pids[i]}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                pids += [int(c) for c in task.read_text().split()]
        i += 1
    return pids


def thread_cpu(pid: int, label: str = "") -> dict[str, float]:
    """CPU seconds of each process's main thread (its event loop) and of its other
    threads together (spool threads and the rest), for `pid` and its children."""
    out: dict[str, float] = {}
    for n, proc in enumerate(process_tree(pid)):
        who = label if n == 0 else "child"
        with contextlib.suppress(OSError):
            who = f"{who or 'hub'} {_role(proc)}".strip()
        for task in Path(f"/proc/{proc}/task").iterdir():
            with contextlib.suppress(OSError):
                name = f"{who}: main" if task.name == str(proc) else f"{who}: other threads"
                fields = (task / "stat").read_text().rpartition(")")[2].split()
                out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def _role(pid: int) -> str:
    """The --role a `smshub serve` process was started with ("" if none)."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return argv[argv.index(b"--role") + 1].decode() if b"--role" in argv else ""


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def machine_ticks() -> tuple[int, int]:
    """(all, busy) clock ticks of the machine so far, from /proc/stat."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(v), sum(v) - v[3] - v[4]


def machine_busy_pct(seconds: float) -> float:
    t1, b1 = machine_ticks()
    time.sleep(seconds)
    t2, b2 = machine_ticks()
    return 100.0 * (b2 - b1) / max(1, t2 - t1)


def read_json(path: Path) -> dict[str, Any]:
    """The SMSC's statistics ({} while the file is missing or being replaced)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def wait_for(what: str, check: Any, timeout: float, interval: float = 0.1,
             alive: list[subprocess.Popen[Any]] | None = None) -> Any:
    """Poll `check()` until it returns something truthy; bounded by `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        for proc in alive or ():
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: process {proc.pid} exited with {proc.returncode}")
        if time.monotonic() >= end:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def stop(proc: subprocess.Popen[Any] | None, name: str, grace: float = 30.0) -> None:
    """SIGTERM `proc` (by its PID), SIGKILL after `grace` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        print(f"smpp_e2e: {name} (pid {proc.pid}) did not stop in {grace:.0f} s, SIGKILL",
              file=sys.stderr)
        proc.kill()
        proc.wait(10)


# --- the load generator, in its own process ----------------------------------------


def loadgen_child(argv: list[str]) -> int:
    """bench/loadgen.py's run(), plus the wall-clock time its clock started and its CPU."""
    sys.path.insert(0, str(HERE))
    import loadgen  # noqa: PLC0415 - bench/ is not a package

    url, n, conc, key, timeout = argv[0], int(argv[1]), int(argv[2]), argv[3], float(argv[4])
    started: list[float] = []
    worker = loadgen._worker

    def first_worker(*args: Any) -> Any:  # run_async calls these right after its clock starts
        if not started:
            started.append(time.time())
        return worker(*args)

    loadgen._worker = first_worker  # type: ignore[assignment]
    spec = loadgen.LoadSpec(url=url, requests=n, concurrency=conc, method="POST",
                            headers={"Authorization": f"Bearer {key}",
                                     "Content-Type": "application/json"},
                            body=BODY, timeout=timeout)
    cpu0 = time.process_time()
    report = loadgen.run(spec)
    report["cpu_s"] = round(time.process_time() - cpu0, 3)
    report["t_start"] = started[0] if started else None
    print(json.dumps(report))
    return 0


# --- one run ------------------------------------------------------------------------


HUB_TOML = """\
[hub]
data_dir = "{data}"
node = "bench"
log_level = "{log_level}"

[http]
host = "127.0.0.1"
port = {http_port}

[routing]
default_carrier = "smsc"

[carriers.smsc]
type = "smpp"
host = "127.0.0.1"
port = {smsc_port}
system_id = "smshub"
password = "bench"
bind_mode = "transceiver"
binds = {binds}
window = {window}
"""


class Run:
    def __init__(self, args: argparse.Namespace, index: int) -> None:
        self.args = args
        self.index = index
        self.dir = Path(tempfile.mkdtemp(prefix=f"smpp-e2e-{index}-"))
        self.smsc: subprocess.Popen[Any] | None = None
        self.hub: subprocess.Popen[Any] | None = None
        self.dispatch: subprocess.Popen[Any] | None = None  # --roles split
        self.loadgen: subprocess.Popen[Any] | None = None
        self.spy: subprocess.Popen[Any] | None = None
        self.env: dict[str, str] = {}

    def smshub(self, *cli: str) -> str:
        done = subprocess.run([str(SMSHUB), *cli], env=self.env, cwd=self.dir,
                              capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"smshub {' '.join(cli)}: {done.stderr.strip()[-400:]}")
        return done.stdout.strip()

    def execute(self) -> dict[str, Any]:
        a, n = self.args, self.args.n
        submit_timeout = max(60.0, n / 200)
        bound = int(120 + n / 50 + submit_timeout + a.receipt_timeout)
        stats = self.dir / "smsc_stats.json"
        smsc_port = free_port()
        while (http_port := free_port()) == smsc_port:
            pass

        # 1. the SMSC
        with open(self.dir / "fake_smsc.log", "wb") as log:
            self.smsc = subprocess.Popen(
                ["perl", str(self.args.fake_smsc), "--port", str(smsc_port), "--expect", str(n),
                 "--stats", str(stats), "--max-seconds", str(bound)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent)  # noqa: PLW1509 - no threads here
        wait_for("fake SMSC start", stats.exists, 10, alive=[self.smsc])

        # 2. the hub
        data = self.dir / "var"
        config = self.dir / "hub.toml"
        config.write_text(HUB_TOML.format(data=data, log_level=a.log_level, http_port=http_port,
                                          smsc_port=smsc_port, binds=a.binds, window=a.window))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SMSHUB_")}
        self.env["SMSHUB_CONFIG"] = str(config)
        if a.roles == "one":
            self.env["SMSHUB_HUB__PROCESSES"] = "1"
        self.smshub("account", "create", "bench", "--credits", str(n * 10),
                    "--price-per-segment", "0.01", "--sender-id", "ACME")
        key = self.smshub("account", "api-key", "bench").split()[-1]
        with open(self.dir / "hub.log", "wb") as log:
            command = ([str(SMSHUB), "serve"] if a.loop == "uvloop"
                       else [str(PYTHON), "-c", HUB_ASYNCIO, "serve"])
            if a.roles == "split":
                # One node as two processes (docs/nodes.md): this one the dispatcher,
                # carriers and upkeep, without a listener; the one below the listeners.
                self.dispatch = subprocess.Popen(
                    [*command, "--role", "dispatch"],
                    env={**self.env, "SMSHUB_HTTP__ENABLED": "false"}, cwd=self.dir,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    preexec_fn=die_with_parent)  # noqa: PLW1509 - no threads here
                command = [*command, "--role", "ingress"]
            self.hub = subprocess.Popen(command,
                                        env=self.env, cwd=self.dir,
                                        stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, preexec_fn=die_with_parent)  # noqa: PLW1509 - no threads here
        base = f"http://127.0.0.1:{http_port}"
        wait_for("smshub /readyz", lambda: http_status(base + "/readyz") == 200, 60, 0.2,
                 alive=self.alive())
        wait_for("SMPP bind", lambda: len(read_json(stats).get("binds") or []) >= a.binds
                 and read_json(stats).get("sessions_open", 0) >= a.binds, 30, 0.1,
                 alive=self.alive())
        time.sleep(1.0)  # let start-up work (first maintenance pass, imports) settle

        # 3. a quiet machine (other jobs skew a 2-core benchmark), bounded
        end = time.monotonic() + a.quiet_wait
        while (busy := machine_busy_pct(2)) > a.quiet_max and time.monotonic() < end:
            time.sleep(3)
        if busy > a.quiet_max:
            print(f"smpp_e2e: machine still {busy:.0f}% busy, running anyway", file=sys.stderr)

        # 4. the load
        hub_cpu0, smsc_cpu0 = self.hub_cpu(), cpu_seconds(self.smsc.pid)
        ticks0, self_cpu0 = machine_ticks(), time.process_time()
        threads0 = self.threads()
        if a.profile is not None:
            a.profile.mkdir(parents=True, exist_ok=True)
            self.spy = subprocess.Popen(
                [a.py_spy, "record", "--pid", str(self.hub.pid), "--subprocesses", "--rate", "200",
                 "--nonblocking", "--threads", "--format", "raw",
                 "--output", str(a.profile / f"hub-run{self.index}.txt")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=die_with_parent)  # noqa: PLW1509 - no threads here
            time.sleep(0.5)
        db = sqlite3.connect(f"file:{data / 'spool.db'}?mode=ro", uri=True, timeout=10)
        try:
            self.loadgen = subprocess.Popen(
                [str(PYTHON), str(Path(__file__).resolve()), "_loadgen",
                 base + "/v1/messages", str(n), str(a.concurrency), key, "60"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, preexec_fn=die_with_parent)  # noqa: PLW1509 - no threads here
            try:
                out, err = self.loadgen.communicate(timeout=60 + n / 20)
            except subprocess.TimeoutExpired:
                raise TimeoutError("load generator did not finish") from None
            if self.loadgen.returncode != 0:
                raise RuntimeError(f"load generator failed: {err.strip()[-400:]}")
            lg = json.loads(out)
            if lg["ok"] != n:
                raise RuntimeError(f"only {lg['ok']} of {n} accepted: {lg['statuses']} "
                                   f"{lg['errors']}")

            # 5. the SMSC has all N, then the spool has all N delivered (bounded polls)
            def smsc_done() -> float | None:
                return read_json(stats).get("expect_reached_ts")
            t_smsc = wait_for("all submit_sm at the SMSC", smsc_done, submit_timeout, 0.1,
                              alive=self.alive())

            def delivered() -> bool:
                (count,) = db.execute(
                    "select count(*) from messages where status = 'delivered'").fetchone()
                return bool(count >= n)
            wait_for("all messages delivered", delivered, a.receipt_timeout, 0.1,
                     alive=self.alive())
            hub_cpu = self.hub_cpu() - hub_cpu0
            ticks1, self_cpu = machine_ticks(), time.process_time() - self_cpu0
            threads = {name: round(1e6 * (cpu - threads0.get(name, 0.0)) / n)
                       for name, cpu in self.threads().items()}
            threads = {k: v for k, v in sorted(threads.items(), key=lambda kv: -kv[1]) if v}
            smsc_cpu = cpu_seconds(self.smsc.pid) - smsc_cpu0
            hub_rss = sum(vm_hwm_kib(pid) for pid in self.hub_pids())
            smsc_rss = vm_hwm_kib(self.smsc.pid)
            by_status = dict(db.execute(
                "select status, count(*) from messages group by status").fetchall())
            first_acc, last_sub, last_done, sample_id = db.execute(
                "select min(accepted_at), max(submitted_at), max(completed_at), min(id) "
                "from messages").fetchone()
        finally:
            db.close()
            if self.spy is not None and self.spy.poll() is None:
                self.spy.send_signal(signal.SIGINT)
                try:
                    self.spy.wait(60)
                except subprocess.TimeoutExpired:
                    self.spy.kill()
                    self.spy.wait(10)
        with urllib.request.urlopen(urllib.request.Request(
                f"{base}/v1/messages/{sample_id}", headers={"Authorization": f"Bearer {key}"}),
                timeout=10) as resp:
            sample = json.loads(resp.read())
        sample_state = sample.get("state") or sample.get("status")
        if sample_state != "delivered":
            raise RuntimeError(f"GET /v1/messages/{sample_id}: {sample}")
        time.sleep(0.5)  # the SMSC rewrites its statistics every 0.2 s
        smsc = read_json(stats)

        t0 = lg["t_start"]
        # CPU of processes not ours (other jobs on the box) while we measured, as run.sh
        # reports it: machine busy time minus hub, SMSC, load generator and this script
        machine_cpu = (ticks1[1] - ticks0[1]) / CLK_TCK
        window = (ticks1[0] - ticks0[0]) / CLK_TCK / (os.cpu_count() or 1)
        foreign = machine_cpu - hub_cpu - smsc_cpu - lg["cpu_s"] - self_cpu
        return {
            "n": n, "accepted": lg["ok"], "http_s": lg["elapsed_s"],
            "accepted_per_s": n / lg["elapsed_s"],
            "latency_ms": lg["latency_ms"],
            "submitted_per_s": n / (t_smsc - t0),
            "delivered_per_s": n / (last_done / 1e6 - t0),
            "to_smsc_s": t_smsc - t0, "to_delivered_s": last_done / 1e6 - t0,
            "first_commit_after_t0_ms": (first_acc / 1e6 - t0) * 1000,
            "last_submitted_at_s": last_sub / 1e6 - t0,
            "hub_cpu_us_per_msg": 1e6 * hub_cpu / n, "hub_cores": hub_cpu / (last_done / 1e6 - t0),
            "smsc_cpu_us_per_msg": 1e6 * smsc_cpu / n,
            "loadgen_cpu_us_per_msg": 1e6 * lg["cpu_s"] / n,
            "hub_peak_rss_mib": hub_rss / 1024, "smsc_peak_rss_mib": smsc_rss / 1024,
            "hub_threads_us_per_msg": threads, "statuses": by_status,
            "smsc_submit_sm": smsc.get("submit_sm"),
            "smsc_dlr_sent": smsc.get("dlr_sent"),
            "smsc_deliver_sm_resp": smsc.get("deliver_sm_resp"),
            "smsc_binds": [b.get("kind") for b in smsc.get("binds", [])],
            "background_busy_pct": busy, "dir": str(self.dir),
            "foreign_cpu_pct": 100 * max(0.0, foreign) / max(1e-9, window * (os.cpu_count() or 1)),
        }

    def alive(self) -> list[subprocess.Popen[Any]]:
        return [p for p in (self.hub, self.smsc, self.dispatch) if p is not None]

    def hub_pids(self) -> list[int]:
        """The hub's processes: `smshub serve` and its dispatch child, or both roles'."""
        assert self.hub is not None
        pids = process_tree(self.hub.pid)
        return pids + (process_tree(self.dispatch.pid) if self.dispatch is not None else [])

    def hub_cpu(self) -> float:
        """CPU seconds of the hub, all its processes."""
        return sum(cpu_seconds(pid) for pid in self.hub_pids())

    def threads(self) -> dict[str, float]:
        assert self.hub is not None
        out = thread_cpu(self.hub.pid)
        if self.dispatch is not None:
            out.update(thread_cpu(self.dispatch.pid))
        return out

    def cleanup(self) -> None:
        for child in (self.loadgen, self.spy):
            if child is not None and child.poll() is None:
                child.kill()
                child.wait(10)
        stop(self.hub, "smshub serve")
        stop(self.dispatch, "smshub serve --role dispatch")
        stop(self.smsc, "fake_smsc.pl", grace=10)
        if not self.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


# --- reporting ----------------------------------------------------------------------


COLUMNS = (
    ("accepted/s", "accepted_per_s", "{:,.0f}"),
    ("submitted/s", "submitted_per_s", "{:,.0f}"),
    ("delivered/s", "delivered_per_s", "{:,.0f}"),
    ("hub CPU us/msg", "hub_cpu_us_per_msg", "{:,.0f}"),
    ("SMSC CPU us/msg", "smsc_cpu_us_per_msg", "{:,.0f}"),
    ("loadgen CPU us/msg", "loadgen_cpu_us_per_msg", "{:,.0f}"),
    ("hub peak RSS MiB", "hub_peak_rss_mib", "{:,.0f}"),
)


Columns = tuple[tuple[str, str, str], ...]  # (label, key in a run's result, format)


def show(label: str, r: dict[str, Any], columns: Columns = COLUMNS) -> None:
    """One run on one line: each column's label and value (bench/cluster.py's too)."""
    cells = "  ".join(f"{name} {fmt.format(r[key])}" for name, key, fmt in columns)
    print(f"{label}: {cells}", flush=True)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_loadgen":
        return loadgen_child(sys.argv[2:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fake-smsc", type=Path, required=True, metavar="PATH",
                   help="the Kannel anchor harness's fake_smsc.pl (Debian's Net::SMPP)")
    p.add_argument("--n", type=int, default=10_000, help="messages per run (default 10000)")
    p.add_argument("--runs", type=int, default=1, help="runs; medians are printed (default 1)")
    p.add_argument("--concurrency", type=int, default=50, help="HTTP connections (default 50)")
    p.add_argument("--binds", type=int, default=1, help="SMPP transceiver binds (default 1)")
    p.add_argument("--window", type=int, default=100, help="SMPP window per bind (default 100)")
    p.add_argument("--receipt-timeout", type=float, default=120.0,
                   help="seconds to wait for all N delivered after the SMSC has them")
    p.add_argument("--quiet-max", type=float, default=15.0,
                   help="wait until the machine is at most this %% busy (default 15)")
    p.add_argument("--quiet-wait", type=float, default=120.0,
                   help="... for at most this many seconds (default 120)")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                   help="uvloop: `smshub serve` as installed (default); asyncio: the same "
                   "with the standard event loop")
    p.add_argument("--roles", choices=("all", "one", "split"), default="all",
                   help="all: `smshub serve` as shipped (default; on a machine with more "
                   "than one core it runs dispatch in a child process, [hub] processes); "
                   "one: the same with intake and dispatch in one process "
                   "([hub] processes = 1); split: one node as two processes started "
                   "apart, `--role ingress` and `--role dispatch` (docs/nodes.md)")
    p.add_argument("--log-level", default="info", help="the hub's [hub] log_level")
    p.add_argument("--profile", type=Path, default=None, metavar="DIR",
                   help="record the hub with py-spy (raw stacks, all threads) during each "
                   "load into DIR/hub-runK.txt (costs CPU: not for the figures)")
    p.add_argument("--py-spy", default="py-spy", help="the py-spy executable")
    p.add_argument("--keep", action="store_true", help="keep each run's temp directory")
    p.add_argument("--json", action="store_true", help="also print each run as JSON")
    a = p.parse_args()
    for need in (a.fake_smsc, SMSHUB):
        if not need.exists():
            sys.exit(f"smpp_e2e: {need} missing")
    if subprocess.run(["perl", "-MNet::SMPP", "-e", "1"], capture_output=True,
                      check=False).returncode != 0:
        sys.exit("smpp_e2e: perl Net::SMPP missing (apt-get install -y libnet-smpp-perl)")

    # SIGTERM ends the run like Ctrl-C, so every process is still stopped
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "hub",
                            "spool", "adapters"], capture_output=True, text=True,
                           check=False).stdout.count("\n")
    print(f"smpp_e2e: code {head or '?'}" + (f" + {dirty} uncommitted paths in hub/ spool/ "
          "adapters/" if dirty else ""))
    print(f"smpp_e2e: N={a.n} runs={a.runs} concurrency={a.concurrency} binds={a.binds} "
          f"window={a.window} (transceiver), hub loop {a.loop}, roles {a.roles}, SQLite spool, "
          f"fake SMSC {a.fake_smsc}")
    results = []
    for i in range(1, a.runs + 1):
        run = Run(a, i)
        try:
            r = run.execute()
        except (RuntimeError, TimeoutError, OSError, ValueError, KeyError) as exc:
            print(f"run {i}: FAILED: {exc} (logs in {run.dir})", file=sys.stderr)
            a.keep = True
            return 1
        except KeyboardInterrupt:
            a.keep = True
            print(f"run {i}: interrupted (logs in {run.dir})", file=sys.stderr)
            return 130
        finally:
            run.cleanup()
        results.append(r)
        show(f"run {i}", r)
        print(f"       HTTP {r['http_s']:.2f} s (p50 {r['latency_ms']['p50']} ms, p99 "
              f"{r['latency_ms']['p99']} ms); all at SMSC {r['to_smsc_s']:.2f} s; all delivered "
              f"{r['to_delivered_s']:.2f} s; hub {r['hub_cores']:.2f} cores; statuses "
              f"{r['statuses']}; SMSC submit_sm {r['smsc_submit_sm']}, receipts "
              f"{r['smsc_dlr_sent']} (acked {r['smsc_deliver_sm_resp']}); machine "
              f"{r['background_busy_pct']:.0f}% busy before, other processes "
              f"{r['foreign_cpu_pct']:.0f}% of the machine during the run", flush=True)
        print(f"       hub CPU us/msg by thread: {r['hub_threads_us_per_msg']}", flush=True)
        if a.json:
            print(json.dumps(r))
    if len(results) > 1:
        med = {key: statistics.median(r[key] for r in results) for _, key, _ in COLUMNS}
        show(f"median of {len(results)}", med)
        for _, key, fmt in COLUMNS[:3]:
            lo, hi = min(r[key] for r in results), max(r[key] for r in results)
            print(f"  {key}: {fmt.format(med[key])} ({fmt.format(lo)}-{fmt.format(hi)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
