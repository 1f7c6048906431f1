"""Summarise py-spy's raw (collapsed) stacks by layer: where the server's samples go.

    python bench/stacks.py PROFILE.txt [...]      # from `py-spy record --format raw`
                                                  # or `bench/spine.py --profile DIR`

Each sample is charged to the first layer (most specific first, from the leaf frame up)
whose pattern matches one of its frames; idle samples (a pool thread waiting for work, the
event loop waiting in select) are counted apart, so percentages are of busy samples.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# (layer, substrings of a frame). Checked per frame from the leaf upwards; within one
# frame, the first layer listed wins.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("idle: pool thread waiting", ("concurrent/futures/thread.py:81",)),
    ("idle: event loop select", ("asyncio/runners.py:118)", "selectors.py")),
    ("db: commit (fsync)", ("do_commit",)),
    ("db: driver execute", ("do_executemany", "do_execute")),
    ("db: SQLAlchemy / row conversion", ("sqlalchemy/", "spool/")),
    ("phone numbers", ("phonenumbers/", "hub/numbers.py")),
    ("ULID", ("ulid/",)),
    ("JSON decode", ("json/decoder.py", "json/__init__.py:3")),
    ("JSON encode", ("json/encoder.py",)),
    ("auth (HMAC, cache)", ("hub/accounts.py", "hmac.py")),
    ("text / segments", ("hub/text.py",)),
    ("group commit + thread hop", ("hub/groupcommit.py", "hub/spoolcall.py",
                                   "concurrent/futures/", "threading.py")),
    ("intake (validate, price)", ("hub/intake.py", "hub/model.py", "hub/clock.py")),
    ("dispatcher / carrier", ("hub/dispatcher.py", "carrier_simulator.py",
                              "hub/policies.py", "hub/routing.py")),
    ("REST adapter", ("adapters/http/rest.py", "adapters/http/app.py", "hub/views.py")),
    ("Starlette", ("starlette/",)),
    ("uvicorn + httptools", ("uvicorn/", "httptools")),
    ("asyncio", ("asyncio/",)),
)


def layer_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for layer, patterns in LAYERS:
            if any(p in frame for p in patterns):
                return layer
    return "other"


def summarise(path: Path) -> tuple[Counter[str], Counter[str], int]:
    """(samples per layer, busy samples per leaf function, total samples)."""
    layers: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        layer = layer_of(frames)
        layers[layer] += n
        total += n
        if not layer.startswith("idle"):
            leaves[frames[-1]] += n
    return layers, leaves, total


def report(path: Path, top: int = 12) -> str:
    layers, leaves, total = summarise(path)
    busy = sum(n for layer, n in layers.items() if not layer.startswith("idle")) or 1
    lines = [f"== {path.name}: {total} samples, {busy} busy"]
    lines += [f"{100 * n / busy:6.1f}%  {layer}" for layer, n in layers.most_common()
              if not layer.startswith("idle")]
    lines += [f"        ({layer}: {n} samples)" for layer, n in layers.items()
              if layer.startswith("idle")]
    lines.append("   top leaf frames (busy):")
    lines += [f"{100 * n / busy:6.1f}%  {frame}" for frame, n in leaves.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0 if argv else 2
    for name in argv:
        print(report(Path(name)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
