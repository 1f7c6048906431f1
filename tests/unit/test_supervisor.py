"""How many processes `smshub serve` runs (hub.supervisor.process_count): two for role
all on a machine with more than one core, unless the configuration says otherwise or
there is nothing to split; and a dead child not yet reaped counts as gone."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from hub.config import Config, load
from hub.errors import ConfigError
from hub.nodes import _running
from hub.supervisor import process_count


def _config(tmp_path: Path, text: str = "") -> Config:
    path = tmp_path / "hub.toml"
    path.write_text(f'[hub]\ndata_dir = "{tmp_path / "var"}"\n{text}')
    return load(path, {})


def test_two_processes_by_default_only_with_more_than_one_core(tmp_path: Path) -> None:
    assert process_count(_config(tmp_path), cpus=2) == 2
    assert process_count(_config(tmp_path), cpus=1) == 1


@pytest.mark.parametrize(
    ("text", "cpus", "expected"),
    [
        ("processes = 1\n", 8, 1),
        ("processes = 2\n", 1, 2),
        ('role = "ingress"\n', 8, 1),
        ('role = "dispatch"\n', 8, 1),
        ("[dispatcher]\nenabled = false\n", 8, 1),
        ('[spool]\nurl = "sqlite:///:memory:"\n', 8, 1),
    ],
)
def test_one_process_when_asked_or_when_there_is_nothing_to_split(
    tmp_path: Path, text: str, cpus: int, expected: int
) -> None:
    assert process_count(_config(tmp_path, text), cpus=cpus) == expected


def test_a_process_count_other_than_0_1_or_2_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="processes: 0 \\(automatic\\), 1 or 2"):
        _config(tmp_path, "processes = 3\n")


def test_a_dead_unreaped_dispatch_child_does_not_count_as_running() -> None:
    # A killed split serve's child is an orphan that init must reap; in a container that
    # may never happen, and its heartbeat row must not refuse the next start.
    child = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 5
        while Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child did not end"
            time.sleep(0.01)
        assert not _running(child.pid)
        assert _running(os.getpid())
    finally:
        child.wait()
