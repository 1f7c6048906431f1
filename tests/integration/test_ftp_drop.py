"""The FTP drop end to end: a real hub, real ftplib clients, native CSV batches."""

from __future__ import annotations

import ftplib
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.ftp import drop as ftp_drop
from hub.batches import BatchState
from tests.ftpdrop import Drop, make_drop, no_leaked_threads, read_csv, wait_for
from tests.hubthread import HubThread
from tests.integration import conftest
from tests.polling import eventually

pytestmark = pytest.mark.usefixtures("no_leaked_threads")
_ = no_leaked_threads  # a fixture used through pytestmark

CSV = ("to,text,from,client_ref,name\n"
       "0821234567,Hello {name},ACME,r1,Thandi\n"
       "not-a-number,Hi,,,\n"
       "+27831234567,\"two\nlines\",,,\n")


@pytest.fixture
def drop(make_hub: Callable[..., HubThread]) -> Drop:
    return make_drop(make_hub)


def test_ftp_upload_of_native_csv_gets_result_file_row_per_row(drop: Drop) -> None:
    drop.upload("payroll.csv", CSV)
    rows = drop.result("payroll.csv")
    assert rows[0][:4] == ["line", "recipient", "normalised", "status"]
    assert [r[0] for r in rows[1:4]] == ["2", "3", "4"]
    assert rows[1][2:4] == ["'+27821234567", "accepted"]  # neutralised: starts with +
    assert rows[2][3] == "rejected" and rows[2][7].startswith("invalid_number")
    assert rows[3][3] == "accepted"
    assert rows[-1][0] == "summary" and "accepted 2, rejected 1" in rows[-1][3]
    message = drop.hub.spool.get_message(rows[1][4])
    assert message is not None and message.text == "Hello Thandi"
    assert message.batch_id is not None
    batch = drop.hub.spool.get_batch(message.batch_id)
    assert batch is not None and (batch.rows, batch.accepted, batch.rejected) == (3, 2, 1)
    assert (drop.home / "processed").iterdir().__next__().name.endswith("-payroll.csv")


def test_ftp_report_file_turns_final_as_the_simulator_delivers(drop: Drop) -> None:
    drop.upload("run.csv", "to,text\n0821234567,one\n0821234568,two\n")
    drop.result("run.csv")
    report = wait_for(drop.report("run.csv"),
                      check=lambda p: read_csv(p)[-1][2] == "final")
    rows = read_csv(report)
    assert [r[2] for r in rows[1:3]] == ["delivered", "delivered"]
    assert rows[-1][3] == "delivered 2, failed 0, pending 0"
    batch_id = drop.hub.spool.get_message(rows[1][0]).batch_id  # type: ignore[union-attr]
    # The file is written first, then the batch row turns final.
    wait_for(report, check=lambda _: drop.hub.spool.get_batch(batch_id)  # type: ignore[union-attr,arg-type]
             .state is BatchState.FINAL)


def test_ftp_upload_of_same_file_twice_is_reported_duplicate(drop: Drop) -> None:
    drop.upload("a.csv", "to,text\n0821234567,once\n")
    first = drop.result("a.csv")
    drop.upload("b.csv", "to,text\n0821234567,once\n")
    second = drop.result("b.csv")
    spool = drop.hub.spool
    message = spool.get_message(first[1][4])
    assert message is not None and message.batch_id is not None
    assert second[1][3] == "duplicate" and message.batch_id in second[1][7]
    assert sum(spool.batch_status_counts(message.batch_id).values()) == 1
    batches = spool.list_batches(None, 10)
    assert batches[0].state is BatchState.DUPLICATE


def test_ftp_part_upload_is_processed_only_after_rename(drop: Drop) -> None:
    ftp = drop.client()
    drop.upload("night.part", "to,text\n0821234567,hi\n", ftp)
    assert not (drop.home / "results" / "night.result.csv").exists()
    ftp.rename("night.part", "night.csv")
    ftp.quit()
    assert drop.result("night.csv")[1][3] == "accepted"


def test_ftp_aborted_upload_is_never_processed_and_is_removed(
    drop: Drop, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.ftp.drop")
    ftp = drop.client()
    conn = ftp.transfercmd("STOR cut.csv")
    conn.sendall(b"to,text\n" + b"0821234567,partial\n" * 100)
    wait_for(drop.home / "cut.csv")  # the server has the file open and is receiving
    # The control connection dies while the data connection is still open. Closing both
    # at once would race: in FTP's stream mode, EOF on the data connection is how a client
    # says the file is complete, so the server must learn of the dead session first.
    ftp.close()
    wait_for(drop.home, check=lambda home: not (home / "cut.csv").exists())
    conn.close()
    # Logged just after the file is gone, on the server's thread: waited for, not raced.
    eventually(lambda: "incomplete upload removed" in caplog.text, 5,
               what="the removal logged")
    # A complete upload after it is processed; the cut one left no batch and no result.
    drop.upload("whole.csv", "to,text\n0821234567,whole\n")
    assert drop.result("whole.csv")[1][3] == "accepted"
    assert not (drop.home / "results" / "cut.result.csv").exists()
    assert [b.file_name for b in drop.hub.spool.list_batches(None, 10)] == ["whole.csv"]


def test_ftp_banner_has_no_version(drop: Drop) -> None:
    ftp = ftplib.FTP()
    banner = ftp.connect("127.0.0.1", drop.port, timeout=10)
    ftp.close()
    assert "smshub" in banner and "pyftpdlib" not in banner and "2." not in banner


def test_batch_list_and_show_print_progress(drop: Drop, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    from hub import cli  # noqa: PLC0415

    drop.upload("cli.csv", "to,text\n0821234567,one\nbad,two\n")
    rows = drop.result("cli.csv")
    batch_id = drop.hub.spool.get_message(rows[1][4]).batch_id  # type: ignore[union-attr]
    config = str(drop.hub.config.data_dir.parent / "cli.toml")
    with open(config, "w", encoding="utf-8") as handle:
        handle.write(f'[hub]\ndata_dir = "{drop.hub.config.data_dir}"\n')
    assert cli.main(["--config", config, "batch", "list"]) == 0
    assert "cli.csv: 2 rows read, 1 accepted, 1 rejected" in capsys.readouterr().out
    assert cli.main(["--config", config, "batch", "show", str(batch_id), "--json"]) == 0
    assert '"rows": 2' in capsys.readouterr().out


class SlowPasswords:
    """The spool, with the password lookup of one account held until the test says."""

    def __init__(self, spool: Any, held: str) -> None:
        self._spool = spool
        self._held = held
        self.entered = threading.Event()
        self.release = threading.Event()

    def password_hash(self, name: str) -> Any:
        if name == self._held:
            self.entered.set()
            assert self.release.wait(20)
        return self._spool.password_hash(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spool, name)


def test_ftp_login_being_checked_stalls_no_other_session(drop: Drop) -> None:
    assert drop.hub.hub.services is not None
    slow = SlowPasswords(drop.hub.hub.services.runner.spool, held="someone")
    drop.hub.hub.services.runner._spool = slow  # the seam, swapped under the running hub
    waiting = ftplib.FTP()
    waiting.connect("127.0.0.1", drop.port, timeout=20)
    waiting.sendcmd("USER someone")
    waiting.putcmd("PASS guess")  # its answer comes once the held lookup ends
    try:
        assert slow.entered.wait(10)
        # Meanwhile the IO loop serves everyone else: a new connection, a login, a listing.
        with drop.client() as other:
            assert other.voidcmd("NOOP").startswith("200")
            assert "results" in other.nlst()
        slow.release.set()
        with pytest.raises(ftplib.error_perm, match="530"):
            waiting.getresp()
    finally:
        slow.release.set()
        waiting.close()


def test_an_idle_ftp_drop_logs_nothing(drop: Drop, caplog: pytest.LogCaptureFixture,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG, logger="pyftpdlib")
    monkeypatch.setattr(ftp_drop, "MAX_POLL", 0.1)  # idle turns ten times a second, not once
    with drop.client() as ftp:  # one turn of the loop with a session, then idle
        ftp.voidcmd("NOOP")
    caplog.clear()
    time.sleep(0.5)  # five turns of the server loop: each used to log its start banner
    assert [r.getMessage() for r in caplog.records if "starting" in r.getMessage()] == []


def test_calls_from_other_threads_and_a_stop_wake_the_ftp_loop_at_once(
        make_hub: Callable[..., HubThread], monkeypatch: pytest.MonkeyPatch) -> None:
    """The IO loop polls for as long as nothing wakes it, here up to a minute: the answer
    to a password checked on a thread, the 226 held until an upload is committed and a
    stop each wake it. (They waited for the poll's timeout, 0.1 s each upload.)"""
    monkeypatch.setattr(ftp_drop, "MAX_POLL", 60.0)
    drop = make_drop(make_hub)
    with drop.client() as ftp:  # timeout 10 s; the first login is checked on a thread
        drop.upload("wake.csv", "to,text\n0821234567,hi\n", ftp)  # its 226: posted
    assert drop.result("wake.csv")[1][3] == "accepted"
    drop.hub.stop()  # joins the loop's thread for at most 10 s
    assert not [t.name for t in threading.enumerate() if t.name == "ftp-drop"]


def test_an_ftp_port_already_taken_fails_the_start_and_leaves_nothing_open(
        tmp_path: Path, hubs: list[HubThread]) -> None:
    """The start says why; the listener's IO loop and its mailbox are closed with it
    (the integration tests' no_leaks fixture counts file descriptors)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = conftest.test_config(tmp_path / "hub", ftp={"enabled": True, "port": port})
        hub = HubThread(config)
        hubs.append(hub)  # stopped at the end, as after any failed start
        with pytest.raises(OSError, match="in use"):
            hub.start()
