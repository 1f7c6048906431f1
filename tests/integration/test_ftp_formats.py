"""Each batch format and encoding uploaded over real FTP, answered row for row."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.ftpdrop import Drop, make_drop, no_leaked_threads
from tests.hubthread import HubThread
from tests.polling import eventually

pytestmark = pytest.mark.usefixtures("no_leaked_threads")
_ = no_leaked_threads


@pytest.fixture
def drop(make_hub: Callable[..., HubThread]) -> Drop:
    return make_drop(make_hub)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252"])
def test_ftp_native_csv_in_each_encoding(drop: Drop, encoding: str) -> None:
    drop.upload("enc.csv", "to;text\n0821234567;Café \u2013 Zoë\n".encode(encoding))
    rows = drop.result("enc.csv")
    message = drop.hub.spool.get_message(rows[1][4])
    assert message is not None and message.text == "Café \u2013 Zoë"


def test_ftp_excel_mangled_numbers_are_reported(drop: Drop) -> None:
    drop.upload("excel.csv", "to,text\n2.78213E+10,x\n821234567,y\n0821234567,z\n")
    rows = drop.result("excel.csv")
    assert [r[3] for r in rows[1:4]] == ["rejected", "rejected", "accepted"]
    assert rows[1][7].startswith("number_mangled")
    assert rows[2][7].startswith("leading_zero_lost")


def test_ftp_winsms_file(drop: Drop) -> None:
    drop.upload("winsms.txt", 'acme,pw,\n"0821234567","Hi, Fred","Fred","Smith"\n')
    rows = drop.result("winsms.txt")
    assert rows[1][:4] == ["2", "0821234567", "'+27821234567", "accepted"]
    assert "pw" not in "".join(",".join(r) for r in rows)  # credentials never echoed


def test_ftp_clickatell_file(drop: Drop) -> None:
    drop.upload("ct.txt", "api_id:1\nuser:u\npassword:p\ntext:Hi #field1#\n"
                          "csv:27821234567,Ann\nto:27831234567\n")
    rows = drop.result("ct.txt")
    assert [r[3] for r in rows[1:3]] == ["accepted", "accepted"]
    first = drop.hub.spool.get_message(rows[1][4])
    assert first is not None and first.text == "Hi Ann"


def test_ftp_unreadable_file_goes_to_rejected_with_a_reason(drop: Drop) -> None:
    drop.upload("junk.csv", b"PK\x03\x04\x14\x00\x08\x00" * 64)  # a zip, say
    rows = drop.result("junk.csv")
    assert rows[1][3] == "unreadable"
    reasons = list((drop.home / "rejected").glob("*.reason.txt"))
    assert len(reasons) == 1


@pytest.mark.slow
def test_ftp_100000_row_file_result_matches_row_for_row(
    make_hub: Callable[..., HubThread]
) -> None:
    drop = make_drop(make_hub, credits="100000", rows_per_group=5000)
    count = 100_000
    lines = ["to,text,client_ref"]
    lines += [f"08{2000000 + i:08d},m{i},ref{i}" if i % 1000 else f"bad{i},m{i},ref{i}"
              for i in range(count)]
    drop.upload("big.csv", "\n".join(lines) + "\n")
    # A deadline, not a measurement: bench/ftp_batch.py measures the speed.
    rows = drop.result("big.csv", timeout=120)
    body = rows[1:-1]
    assert len(body) == count
    assert [int(r[0]) for r in body] == list(range(2, count + 2))
    assert all((r[3] == "rejected") == (i % 1000 == 0) for i, r in enumerate(body))
    assert rows[-1][3] == f"accepted {count - 100}, rejected 100"


@pytest.mark.timeout(60)  # once: a thread at 100% CPU for over 20 minutes, stop refused
def test_ftp_line_of_two_million_commas_fails_its_batch_with_a_reason_and_jams_nothing(
    drop: Drop
) -> None:
    drop.upload("jam.csv", "to,text\n0821234567,before\n0821234500,jam" + "," * 2_000_000
                + "\n0821234568,after\n")
    rows = drop.result("jam.csv")
    assert rows[1][:4] == ["2", "0821234567", "'+27821234567", "accepted"]
    assert rows[2][3] == "not_processed"
    assert "rows after line 2 were not processed: line 3 is longer than 16,384" in rows[2][7]
    assert len(rows) == 4  # the rows, the reason, the summary: line 4 is not listed
    # The batch row and the filed original follow the published result file.
    account_id = drop.hub.spool.get_account("acme").id
    batch = eventually(lambda: next((b for b in drop.hub.spool.list_batches(account_id, 10)
                                     if b.state.value == "failed"), None), what="failed")
    assert batch.rows == 1
    eventually(lambda: list((drop.home / "rejected").glob("*.reason.txt")),
               what="the reason filed")
    # The drop goes on serving: the next file is processed as usual.
    drop.upload("next.csv", "to,text\n0821234569,next\n")
    assert drop.result("next.csv")[1][3] == "accepted"


@pytest.mark.timeout(60)
def test_ftp_header_of_two_million_commas_is_an_unreadable_file(drop: Drop) -> None:
    drop.upload("wide.csv", "to,text" + "," * 2_000_000 + "\n0821234567,Hi\n")
    rows = drop.result("wide.csv")
    assert rows[1][3] == "unreadable" and "line 1 is longer than" in rows[1][7]
