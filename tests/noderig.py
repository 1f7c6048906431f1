"""A rig for several hub nodes on one PostgreSQL (issue #16): `smshub serve` nodes each
with its own name and data directory, a test SMSC that resends unacknowledged receipts
as real SMSCs do, and a loader posting bulk requests across the nodes' listeners."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.test_cli_and_crash import SMSHUB, Server, env_for, run
from tests.smsc.scripted import ScriptedSmsc

CARRIER_TOML = """\
[routing]
default_carrier = "smsc"

[carriers.smsc]
type = "smpp"
host = "127.0.0.1"
port = {port}
system_id = "{system_id}"
password = "secret"
window = 100
reconnect_min = 0.1
reconnect_max = 1.0
"""


class RetryingSmsc(ScriptedSmsc):
    """The scripted SMSC, plus what a real SMSC does with a receipt the ESME refused
    (ESME_RX_T_APPN while its database is away) or left unanswered (its process
    killed): send it again after `retry_interval` seconds to any bound receiver, not
    only when a receiver binds anew."""

    retry_interval = 0.5

    async def start(self) -> RetryingSmsc:
        await super().start()
        self._retrier = asyncio.get_running_loop().create_task(self._retry())
        return self

    async def stop(self) -> None:
        self._retrier.cancel()
        await super().stop()

    async def _retry(self) -> None:
        while True:
            await asyncio.sleep(self.retry_interval)
            if self._backlog and self.sessions():
                owed, self._backlog = self._backlog, []
                for held in owed:
                    self._queue(held)


class Node(Server):
    """`smshub serve --role ROLE` as node `name`, in its own process group, so that a
    SIGKILL takes the whole node at once (any process it started with it)."""

    def __init__(self, env: dict[str, str], name: str, role: str = "all",
                 *, wait: bool = True) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [*SMSHUB, "serve", "--role", role],
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        if wait:
            self.started()

    def started(self) -> Node:
        """Waits until it serves HTTP (`wait=False` leaves this to the caller, so that
        nodes start side by side: each takes seconds on a busy machine)."""
        self.port = self._wait_for_port()
        return self

    def listening(self, what: str) -> int:
        """The port its `what` listener ("FTP drop", "SMTP") says it bound."""
        return int(self.wait_for_log(rf"{what} listening on [\d.]+:(\d+)")[1])

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def freeze(self, frozen: bool = True) -> None:
        """Stop (SIGSTOP) or resume (SIGCONT) the whole node: what it holds in the spool
        then stays as read until it is resumed or killed."""
        os.killpg(self.proc.pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def close(self) -> None:
        """Stop the node if it still runs (SIGTERM, then SIGKILL), close its pipe."""
        if self.proc.poll() is None:
            try:
                self.stop()
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def node_env(root: Path, name: str, spool_url: str, smsc_port: int, **extra: str) -> dict[str, str]:
    """The environment of node `name`: its own data directory and hub.toml (an SMPP
    carrier binding as `name`, so the SMSC tells the nodes' sessions apart)."""
    home = root / name
    home.mkdir(parents=True, exist_ok=True)
    toml = home / "hub.toml"
    toml.write_text(CARRIER_TOML.format(port=smsc_port, system_id=name))
    return env_for(
        home / "var",
        SMSHUB_CONFIG=str(toml),
        SMSHUB_HUB__NODE=name,
        SMSHUB_SPOOL__URL=spool_url,
        **extra,
    )


def share_secret(first: dict[str, str], others: Sequence[dict[str, str]]) -> None:
    """Every node needs the same secret.key (API keys are hashed with it)."""
    key = Path(first["SMSHUB_HUB__DATA_DIR"]) / "secret.key"
    for env in others:
        data = Path(env["SMSHUB_HUB__DATA_DIR"])
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.copy2(key, data / "secret.key")


def open_account(env: dict[str, str], credits: int) -> str:
    """Migrate the spool, create account acme; its API key."""
    for args in (("db", "upgrade"), ("account", "create", "acme", "--credits", str(credits))):
        done = run(env, *args)
        assert done.returncode == 0, done.stderr
    return run(env, "account", "api-key", "acme").stdout.strip()


def number(i: int) -> str:
    return f"+2782{i:07d}"


def text(i: int) -> str:
    return f"c{i}"


class Loader:
    """Posts messages 0..total-1 as bulk requests of `batch` (each message with its own
    client_ref) from one thread per node, each to its node's listener. A request answered
    503 or left unanswered is sent again with the same references, to the next node
    still running if its own has gone: only a 202 counts, and a 202 gives every id."""

    def __init__(self, nodes: Sequence[Node], key: str, total: int, batch: int = 1000) -> None:
        self.nodes = list(nodes)
        self.key = key
        self.ids: dict[int, str] = {}
        self.statuses: Counter[int | str] = Counter()
        self._todo = [range(i, min(i + batch, total)) for i in range(0, total, batch)]
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), name=f"load-{n.name}") for n in self.nodes
        ]

    def start(self) -> Loader:
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "loading did not finish"

    def _next(self) -> range | None:
        with self._lock:
            return self._todo.pop() if self._todo else None

    def _count(self, status: int | str) -> None:
        with self._lock:
            self.statuses[status] += 1

    def _run(self, node: Node) -> None:
        client: httpx.Client | None = None
        try:
            while (part := self._next()) is not None:
                body = {
                    "messages": [
                        {"to": number(i), "text": text(i), "client_ref": f"r{i}"} for i in part
                    ]
                }
                while True:
                    if node.proc.poll() is not None or client is None:
                        if client is not None:
                            client.close()
                        node = self._live(node)
                        client = httpx.Client(
                            base_url=node.url,
                            timeout=60,
                            headers={"Authorization": f"Bearer {self.key}"},
                        )
                    if self._post(client, part, body):
                        break
        finally:
            if client is not None:
                client.close()

    def _post(self, client: httpx.Client, part: range, body: dict[str, Any]) -> bool:
        try:
            answer = client.post("/v1/messages", json=body)
        except httpx.TransportError as exc:  # a killed node: sent again elsewhere
            self._count(type(exc).__name__)
            time.sleep(0.05)
            return False
        self._count(answer.status_code)
        if answer.status_code != 202:
            time.sleep(0.05)
            return False
        results = answer.json()["results"]
        assert all(r["accepted"] for r in results), answer.text
        with self._lock:
            self.ids.update(zip(part, (r["id"] for r in results), strict=True))
        return True

    def _live(self, node: Node) -> Node:
        if node.proc.poll() is None:
            return node
        return next(n for n in self.nodes if n.proc.poll() is None)
