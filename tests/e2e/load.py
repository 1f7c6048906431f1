"""Load for crash tests: POST messages to a running `smshub serve` from 8 threads and
SIGKILL it straight after a given number of answers; returns the acknowledged ids."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed

import httpx

from tests.e2e.test_cli_and_crash import Server


def post_then_kill(server: Server, key: str, count: int, kill_after: int,
                   number: Callable[[int], str]) -> list[str]:
    acked: list[str] = []

    def post(client: httpx.Client, n: int) -> str | None:
        try:
            r = client.post("/v1/messages", json={"to": number(n), "text": f"m{n}"})
        except httpx.HTTPError:
            return None  # the hub died first: never acknowledged
        return r.json()["id"] if r.status_code == 202 else None

    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"},
                      timeout=10) as client, ThreadPoolExecutor(8) as pool:
        for done in as_completed([pool.submit(post, client, n) for n in range(count)]):
            if (message_id := done.result()) is not None:
                acked.append(message_id)
            if len(acked) == kill_after and server.proc.poll() is None:
                server.proc.kill()  # SIGKILL straight after that answer
    server.proc.wait(10)
    return acked
