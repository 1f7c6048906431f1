"""The `smshub` command as a user runs it, in subprocesses: serve, send, status, config
check, schema refusal, and kill -9 (right after a 202, while dispatching, mid FTP batch)
that loses nothing and sends nothing twice."""

from __future__ import annotations

import contextlib
import csv
import ftplib
import io
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.polling import eventually

pytestmark = pytest.mark.slow

SMSHUB = [sys.executable, "-m", "hub"]


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSHUB_")}
    env.update({
        "SMSHUB_HUB__DATA_DIR": str(data_dir),
        "SMSHUB_HUB__NODE": "e2e",
        "SMSHUB_HTTP__PORT": "0",
        "SMSHUB_SIMULATOR__REPORT_DELAY": "0.05",
        "SMSHUB_DISPATCHER__POLL_INTERVAL": "0.05",
        **extra,
    })
    return env


def run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SMSHUB, *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=60, check=False)


class Server:
    """`smshub serve` in a subprocess; knows its HTTP port from the start-up log."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([*SMSHUB, "serve"], env=env, stderr=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, text=True)
        self.port = self._wait_for_port()

    def _wait_for_port(self) -> int:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 30
        seen = []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            seen.append(line)
            found = re.search(r"HTTP listening on http://127\.0\.0\.1:(\d+)", line)
            if found:
                # Keep draining so a chatty server never blocks on a full pipe.
                self.log = seen
                threading.Thread(target=self._drain, daemon=True).start()
                return int(found.group(1))
            if not line and self.proc.poll() is not None:
                break
        self.proc.kill()
        raise AssertionError("serve did not start:\n" + "".join(seen))

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        # Closed under this thread once the server is killed: its dispatch process (a
        # split serve, hub.supervisor) may hold the pipe a moment longer than it does.
        with contextlib.suppress(ValueError):
            for line in self.proc.stderr:
                self.log.append(line)

    def wait_for_log(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.log):
                if found := re.search(pattern, line):
                    return found
            time.sleep(0.02)
        raise AssertionError(f"no log line matched {pattern!r}:\n" + "".join(self.log))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(30)


def message(url: str, key: str, message_id: str) -> dict[str, object]:
    body: dict[str, object] = httpx.get(f"{url}/v1/messages/{message_id}",
                                        headers={"Authorization": f"Bearer {key}"}).json()
    return body


def wait_delivered(url: str, key: str, message_id: str, timeout: float = 20) -> dict[str, object]:
    return eventually(lambda: (body := message(url, key, message_id))["status"] == "delivered"
                      and body, timeout, 0.05, f"{message_id} delivered")


def test_cli_send_is_delivered_by_a_running_serve_and_status_shows_history(
    tmp_path: Path, servers: list[Server]
) -> None:
    env = env_for(tmp_path / "var")
    created = run(env, "account", "create", "acme", "--credits", "5", "--sender-id", "ACME")
    assert created.returncode == 0, created.stderr
    servers.append(Server(env))
    sent = run(env, "send", "--account", "acme", "--to", "082 123 4567", "--text", "Hello",
               "--from", "ACME")
    assert sent.returncode == 0, sent.stderr
    message_id = sent.stdout.strip()
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", message_id)
    status = eventually(lambda: (s := run(env, "status", message_id)).stdout.count(
        "delivered (delivered)") and s, 20, 0.1, "`smshub status` showing delivered")
    assert status.returncode == 0
    events = re.findall(r"^\s+\S+\s+(\w+)", status.stdout, re.MULTILINE)
    assert events == ["accepted", "sending", "submitted", "delivered"]
    shown = run(env, "account", "show", "acme", "--json")
    assert '"balance": "4' in shown.stdout  # one segment at the default price of 1
    assert servers[0].stop() == 0  # SIGTERM: a clean, graceful exit


def test_kill_9_right_after_202_loses_nothing(tmp_path: Path, servers: list[Server]) -> None:
    data = tmp_path / "var"
    env = env_for(data)
    assert run(env, "account", "create", "acme", "--credits", "100").returncode == 0
    key = run(env, "account", "api-key", "acme").stdout.strip()
    # First life: accepts but does not dispatch, so only the spool can carry the message.
    first = Server(env_for(data, SMSHUB_DISPATCHER__ENABLED="false"))
    servers.append(first)
    ids = []
    for i in range(20):
        r = httpx.post(f"{first.url}/v1/messages", json={"to": "0821234567", "text": f"m{i}"},
                       headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 202
        ids.append(r.json()["id"])
    first.proc.kill()  # SIGKILL straight after the last 202
    first.proc.wait(10)
    second = Server(env)
    servers.append(second)
    for message_id in ids:
        assert wait_delivered(second.url, key, message_id)["status"] == "delivered"


def test_kill_9_while_dispatching_recovers_its_own_leases_on_restart(
    tmp_path: Path, servers: list[Server]
) -> None:
    data = tmp_path / "var"
    env = env_for(data, SMSHUB_DISPATCHER__LEASE_SECONDS="3600")
    assert run(env, "account", "create", "acme", "--credits", "1000").returncode == 0
    key = run(env, "account", "api-key", "acme").stdout.strip()
    first = Server(env)
    servers.append(first)
    headers = {"Authorization": f"Bearer {key}"}
    batch = {"messages": [{"to": "0821234567", "text": f"m{i}"} for i in range(500)]}
    ids = [res["id"] for res in
           httpx.post(f"{first.url}/v1/messages", json=batch, headers=headers).json()["results"]]
    first.proc.kill()
    first.proc.wait(10)
    second = Server(env)
    servers.append(second)
    # Leases of an hour would strand any claimed message; the restart must free them.
    eventually(lambda: {message(second.url, key, mid)["status"] for mid in ids[::50]}
               <= {"delivered", "submitted"}, 30, 0.2, "every sampled message sent")


def _batch_messages(db_path: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(db_path, timeout=10) as db:
        return db.execute("SELECT id, batch_line FROM messages WHERE batch_id IS NOT NULL"
                          ).fetchall()


def test_kill_9_mid_ftp_batch_resumes_on_restart_and_sends_every_row_once(
    tmp_path: Path, servers: list[Server]
) -> None:
    data, rows = tmp_path / "var", 20_000
    env = env_for(data, SMSHUB_FTP__ENABLED="true", SMSHUB_FTP__PORT="0",
                  SMSHUB_FTP__ROWS_PER_GROUP="500", SMSHUB_DISPATCHER__ENABLED="false")
    assert run(env, "account", "create", "acme", "--credits", "100000").returncode == 0
    assert run(env, "account", "password", "acme", stdin="batch-pass-1\n").returncode == 0
    first = Server(env)
    servers.append(first)
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", int(first.wait_for_log(r"FTP drop listening on [\d.]+:(\d+)")[1]))
    ftp.login("acme", "batch-pass-1")
    body = "to,text\n" + "".join(f"08{2000000 + i:08d},row {i}\n" for i in range(rows))
    ftp.storbinary("STOR big.csv", io.BytesIO(body.encode()))
    ftp.quit()
    eventually(lambda: _batch_messages(data / "spool.db"), 30, 0.005,
               "the first rows committed")
    first.proc.kill()  # SIGKILL while the file's rows are being committed
    first.proc.wait(10)
    before = len(_batch_messages(data / "spool.db"))
    assert 0 < before < rows, "the kill did not land mid-file"
    second = Server(env)
    servers.append(second)
    second.wait_for_log(r"batch \S+ \(big\.csv\) resumed after line \d+")
    result = data / "ftp" / "acme" / "results" / "big.result.csv"
    eventually(result.exists, 60, 0.05, "the result file")
    with result.open(encoding="utf-8-sig", newline="") as handle:
        listed = list(csv.reader(handle))[1:-1]
    assert [int(r[0]) for r in listed] == list(range(2, rows + 2))
    assert {r[3] for r in listed} == {"accepted"}
    stored = _batch_messages(data / "spool.db")
    assert sorted(line for _, line in stored) == list(range(2, rows + 2))  # none twice
    assert {r[4] for r in listed} == {mid for mid, _ in stored}
    assert second.stop() == 0


def test_config_check_refuses_a_bad_file_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[dispatcher]\nbatch_sise = 10\n")
    result = run(env_for(tmp_path), "--config", str(bad), "config", "check")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(bad) in lines[0] and "batch_sise" in lines[0] and "batch_size" in lines[0]
    good = run(env_for(tmp_path), "config", "check")
    assert good.returncode == 0 and "OK" in good.stdout


def test_serve_refuses_an_out_of_date_schema_and_says_what_to_run(tmp_path: Path) -> None:
    data = tmp_path / "var"
    env = env_for(data)
    assert run(env, "db", "upgrade").returncode == 0
    with sqlite3.connect(data / "spool.db") as db:
        db.execute("DELETE FROM alembic_version")  # as if written before the first migration
    result = subprocess.run([*SMSHUB, "serve"], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 1
    assert "smshub db upgrade" in result.stderr


def test_account_commands_and_password_from_stdin(tmp_path: Path) -> None:
    env = env_for(tmp_path / "var")
    assert run(env, "account", "create", "acme", "--credits", "10", "--price-per-segment",
               "0.2", "--sender-id", "ACME", "--sender-id", "Acme2").returncode == 0
    assert run(env, "account", "create", "acme").returncode == 1  # exists
    assert run(env, "account", "credit", "acme", "2.5").returncode == 0
    assert run(env, "account", "password", "acme", stdin="correct horse\n").returncode == 0
    shown = run(env, "account", "show", "acme").stdout
    assert "balance 12.5" in shown and "ACME, Acme2" in shown and "password: set" in shown
    listed = run(env, "account", "list", "--json").stdout
    assert '"name": "acme"' in listed and "correct horse" not in listed
    key = run(env, "account", "api-key", "acme").stdout.strip()
    assert key.startswith("shk_")
    assert key not in (tmp_path / "var" / "spool.db").read_bytes().decode("latin-1")
    refused = run(env, "send", "--account", "acme", "--to", "12345", "--text", "x")
    assert refused.returncode == 1 and "invalid_number" in refused.stdout
    for sub in (["--help"], ["account", "--help"], ["send", "--help"], ["db", "--help"]):
        assert run(env, *sub).returncode == 0


def test_simulate_inbound_records_a_reply_linked_to_the_message_it_answers(
    tmp_path: Path,
) -> None:
    env = env_for(tmp_path / "var")
    assert run(env, "account", "create", "acme", "--credits", "10").returncode == 0
    sent = run(env, "send", "--account", "acme", "--to", "0821234567", "--text", "Coming?")
    message_id = sent.stdout.strip()
    reply = run(env, "simulate", "inbound", "--from", "+27 82 123 4567", "--to", "31337",
                "--text", "yes", "--json")
    assert reply.returncode == 0, reply.stderr
    assert f'"in_reply_to": "{message_id}"' in reply.stdout and '"kind": "reply"' in reply.stdout
    stop = run(env, "simulate", "inbound", "--from", "0821234567", "--to", "31337",
               "--text", "STOP")
    assert "opt_out" in stop.stdout
