"""Benchmark of start-up: how long a CLI command (`smshub account list`) takes, and how
long `smshub serve` as shipped (its processes as for this machine's cores) takes to
listen, on a spool already at the newest schema.

    python bench/startup.py [--runs 8]

Each measure is a new Python process, as an operator's command or a restart is; medians
(min-max) of --runs. To compare two trees, run it with each first on PYTHONPATH
(`PYTHONPATH=TREE python bench/startup.py`), alternately.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import spine  # the spine benchmark's server and CLI helpers


def cli_seconds(env: dict[str, str], work: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hub", "account", "list"], env=env, cwd=work,
                   check=True, capture_output=True)
    return time.perf_counter() - started


def serve_seconds(env: dict[str, str], work: Path) -> float:
    started = time.monotonic()
    with spine.Server(env, work) as server:
        return server.listening_at - started


def summary(label: str, values: list[float]) -> str:
    ms = [1000 * v for v in values]
    return f"{label} {statistics.median(ms):.0f} ms ({min(ms):.0f}-{max(ms):.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = spine.hub_env(work, f"sqlite:///{work / 'spool.db'}")
        spine.hub_cli(env, work, "account", "create", "bench", "--credits", "10")  # schema
        cli = [cli_seconds(env, work) for _ in range(args.runs)]
        serve = [serve_seconds(env, work) for _ in range(args.runs)]
    print(summary("smshub account list:", cli))
    print(summary("smshub serve, until it listens:", serve))


if __name__ == "__main__":
    main()
