"""The rules a node checks before it joins a spool (hub/nodes.py): one node name on a
SQLite file (other hosts seen by their heartbeat), one dispatching process per name."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from hub.nodes import (
    NodeInfo,
    NodeRecord,
    NodeRefused,
    check_one_dispatcher,
    check_single_node,
)

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
INTERVAL = 5.0
ME = NodeInfo("a", "all", os.getpid(), "here", NOW, "1")


def seen(name: str, role: str, host: str, ago: float, pid: int = 4_194_400) -> NodeRecord:
    return NodeRecord(NodeInfo(name, role, pid, host, NOW, "1"),
                      NOW - timedelta(seconds=ago))


def test_another_name_live_on_another_host_refuses_a_sqlite_start() -> None:
    with pytest.raises(NodeRefused, match="in use by node 'b' on host there"):
        check_single_node([seen("b", "all", "there", 2)], ME, NOW, INTERVAL)


def test_another_name_on_this_host_or_stale_or_the_same_name_is_left_to_the_file_lock() -> None:
    check_single_node([seen("b", "all", "here", 2), seen("c", "all", "there", 16),
                       seen("a", "ingress", "there", 1)], ME, NOW, INTERVAL)


def test_a_live_dispatcher_of_the_same_name_elsewhere_refuses_a_second() -> None:
    with pytest.raises(NodeRefused, match="node 'a' already has a dispatching process"):
        check_one_dispatcher([seen("a", "dispatch", "there", 1)], ME, NOW, INTERVAL)


def test_a_dead_process_an_ingress_row_or_a_stale_row_does_not_count() -> None:
    records = [seen("a", "all", "here", 1),  # above pid_max: not running here
               seen("a", "ingress", "there", 1), seen("a", "dispatch", "there", 15),
               seen("b", "dispatch", "there", 1)]
    check_one_dispatcher(records, ME, NOW, INTERVAL)
    # An ingress process never dispatches, whatever else runs under its name.
    check_one_dispatcher([seen("a", "dispatch", "there", 1)],
                         NodeInfo("a", "ingress", 1, "here", NOW, "1"), NOW, INTERVAL)
