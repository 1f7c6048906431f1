"""A wall clock a test can step under a running `smshub serve`: libfaketime (the PyPI
`libfaketime` package builds it) preloaded into the hub's process, reading its offset
from a file at every call, so writing "+3600" to the file steps the hub's clock an hour
forward at once. The monotonic clock is left alone, as a real clock step leaves it."""

from __future__ import annotations

import os
from pathlib import Path

try:
    import libfaketime  # type: ignore[import-untyped]
except ImportError:  # the test extra is not installed: the tests skip, saying so
    libfaketime = None


def missing() -> str | None:
    """Why libfaketime cannot be used here, or None."""
    if libfaketime is None:
        return "the libfaketime package is not installed (pip install -e '.[test]')"
    _, env = libfaketime.get_reload_information()
    library = Path(env.get("LD_LIBRARY_PATH", "")) / env.get("LD_PRELOAD", "")
    if not library.is_file():
        return f"libfaketime's library was not built ({library.name} missing)"
    return None


class SteppedClock:
    """The hub's offset from the real time, in seconds; `env()` for its process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.step_to(0)

    def step_to(self, offset: int) -> None:
        # Written whole and renamed: libfaketime must never read a half-written offset.
        part = self.path.with_suffix(".part")
        part.write_text(f"{offset:+d}\n")
        os.replace(part, self.path)

    def env(self) -> dict[str, str]:
        assert libfaketime is not None
        _, env = libfaketime.get_reload_information()
        return {**env, "FAKETIME_TIMESTAMP_FILE": str(self.path), "FAKETIME_NO_CACHE": "1",
                "FAKETIME_DONT_FAKE_MONOTONIC": "1", "DONT_FAKE_MONOTONIC": "1"}
