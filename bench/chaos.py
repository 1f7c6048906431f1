"""The kill -9 chaos run (issue #17): `smshub serve` under load on REST, XML, FTP and SMTP,
killed with SIGKILL at seeded random moments, restarted on the same data directory, then
settled and checked: every acknowledged message stored once and final, no duplicate
submission outside the crash window, each batch row listed once, no outbox item lost.

    .venv/bin/python bench/chaos.py --cycles 200 --seed 1
    .venv/bin/python bench/chaos.py --cycles 20 --seed 7 --keep   # keep the data directory

The supervisor itself is tests/chaos/supervisor.py (tests/e2e/test_chaos.py runs a short
one in CI). Exit status 0 when every invariant held, 1 otherwise; replay with the seed."""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.chaos.supervisor import Supervisor


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C: the running hub is killed too


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None, help="default: a random one, logged")
    parser.add_argument("--settle-timeout", type=float, default=300.0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    # A relay or SMSC connection cut by the kill makes asyncio warn on stderr: expected.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    signal.signal(signal.SIGTERM, _interrupted)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    base = Path(tempfile.mkdtemp(prefix="smshub-chaos-"))
    stamp = time.strftime("%H:%M:%S")
    report = Supervisor(base, seed, say=lambda line: print(
        f"{time.strftime('%H:%M:%S')} {line}", flush=True)).run(args.cycles,
                                                                args.settle_timeout)
    if args.json is not None:
        # Not dataclasses.asdict: it rebuilds a Counter from (key, count) pairs.
        body = vars(report) | {"verdict": vars(report.verdict), "ok": report.ok,
                               "started": stamp}
        args.json.write_text(json.dumps(body, indent=1, default=str), encoding="utf-8")
    if args.keep or not report.ok:
        print(f"data kept in {base}")
    else:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
