"""A full disk (real ENOSPC: a small tmpfs filled to the last byte) under a running hub,
first under the spool, then under the FTP area: every protocol answers a temporary
error that says so, nothing acknowledged is lost, and once space is freed the same hub
accepts and dispatches again and /readyz says ready."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from spool.tables import messages
from tests.faults import cluster
from tests.faults.conftest import (
    Ballast,
    MakeHub,
    assert_said_not_dumped,
    cannot_mount,
    open_account,
)
from tests.faults.probes import Probes, is_temporary, refused
from tests.polling import eventually

FULL = "the spool's disk is full"


def accepted_rows(probes: Probes, stem: str) -> int:
    """The rows the batch's result file lists as accepted, once it is published."""
    result = probes.hub.config.data_dir.resolve() / "ftp" / "acme" / "results" / (
        f"{stem}.result.csv")
    eventually(result.exists, 20, what=f"the result file of {stem}")
    return result.read_text().count(",accepted,")


def rows(count: int, start: int = 0) -> bytes:
    return ("to,text\n" + "".join(f"08{2000000 + i:08d},row {i}\n"
                                  for i in range(start, start + count))).encode()


@pytest.fixture
def full_spool(tmpfs: Callable[[Path, str], Path], make_hub: MakeHub,
               tmp_path: Path) -> tuple[Probes, Ballast]:
    """A hub whose data directory (spool.db and its WAL) is a 24 MB tmpfs."""
    data = tmpfs(tmp_path / "data", "24m")
    return open_account(make_hub(data)), Ballast(data)


def test_a_full_spool_disk_gets_temporary_errors_in_each_protocol_and_recovers(
        full_spool: tuple[Probes, Ballast], caplog: pytest.LogCaptureFixture) -> None:
    probes, ballast = full_spool
    assert probes.rest("before").status_code == 202
    probes.ftp().quit()  # the FTP home (in the same data directory) is made
    probes.all_delivered()
    ballast.fill()

    ready = eventually(lambda: refused(probes.readyz()), 5, what="readiness failing")
    assert ready is not None
    assert ready.json()["status"] == "unavailable"
    # The WAL may still hold room for a commit or two: those are acknowledged and kept.
    rest = eventually(lambda: refused(probes.rest("while full")), 10, what="REST refusing")
    assert rest is not None
    assert is_temporary(rest, FULL), rest.text
    assert rest.json()["code"] == "unavailable"
    xml = probes.xml("while full")
    assert is_temporary(xml, FULL), xml.text
    assert xml.headers["content-type"].startswith("application/xml")
    code, words = probes.mail("while full")
    assert code == 451 and words.startswith("4.3.1") and FULL in words, words
    assert probes.store("full.csv", rows(500)).startswith("452 Insufficient storage")

    ballast.free()
    eventually(lambda: probes.readyz().status_code == 200, 10, what="ready again")
    assert probes.rest("after").status_code == 202
    assert probes.xml("after").status_code == 200
    assert probes.mail("after")[0] == 250
    assert probes.store("full.csv", rows(500)).startswith("226")
    assert accepted_rows(probes, "full") == 500
    probes.all_delivered()
    assert_said_not_dumped(caplog)


@pytest.fixture
def full_ftp_area(tmpfs: Callable[[Path, str], Path], make_hub: MakeHub,
                  tmp_path: Path) -> tuple[Probes, Ballast]:
    """A hub whose data directory (the FTP area) is a 2 MB tmpfs, with the spool
    elsewhere, on the ordinary disk."""
    data = tmpfs(tmp_path / "data", "2m")
    spool = tmp_path / "spool" / "spool.db"
    probes = open_account(make_hub(data, spool={"url": f"sqlite:///{spool}"}))
    probes.ftp().quit()  # the account's home and folders exist before the disk fills
    return probes, Ballast(data)


def test_an_upload_to_a_full_ftp_area_is_refused_for_now_and_taken_once_space_is_freed(
        full_ftp_area: tuple[Probes, Ballast]) -> None:
    probes, ballast = full_ftp_area
    home = probes.hub.config.data_dir.resolve() / "ftp" / "acme"
    ballast.fill()

    answer = probes.store("big.csv", rows(2000))
    assert answer.startswith("452 Insufficient storage space"), answer
    assert not (home / "big.csv").exists()  # the partial upload is not kept
    assert not list((home / "results").iterdir())  # and never became a batch

    ballast.free()
    assert probes.store("big.csv", rows(2000)).startswith("226")
    assert accepted_rows(probes, "big") == 2000


def test_a_batch_whose_result_file_fills_the_ftp_area_waits_and_finishes_once_freed(
        full_ftp_area: tuple[Probes, Ballast], caplog: pytest.LogCaptureFixture) -> None:
    """The upload fits, its result file (each row and its outcome) does not: the batch
    must neither fail nor lose the rows it committed; it waits, and finishes as one
    result file listing every row once, no row sent twice."""
    probes, ballast = full_ftp_area
    home = probes.hub.config.data_dir.resolve() / "ftp" / "acme"
    upload = rows(8000)  # 160 KB; its result file takes 560 KB
    ballast.fill()
    ballast.free(leave=len(upload) + 200_000)  # room for the upload, not for its result
    assert probes.store("big.csv", upload).startswith("226")
    eventually(lambda: any(getattr(r, "action", None) == "ftp-space" for r in caplog.records),
               20, what="the batch waiting for room")
    assert not (home / "results" / "big.result.csv").exists()

    ballast.free()
    assert accepted_rows(probes, "big") == 8000
    listed = [line.split(",")[0] for line in
              (home / "results" / "big.result.csv").read_text().splitlines()[1:-1]]
    assert listed == [str(n) for n in range(2, 8002)]  # every row once, in order
    with probes.hub.spool.db.engine.connect() as conn:  # type: ignore[attr-defined]
        stored = conn.execute(select(func.count()).select_from(messages)).scalar_one()
    assert stored == 8000  # none twice
    assert_said_not_dumped(caplog)


@pytest.fixture
def full_database() -> Iterator[cluster.Cluster]:
    """A private PostgreSQL cluster whose files are on a 96 MB tmpfs."""
    reason = cluster.missing() or cannot_mount()
    if reason:
        pytest.skip(reason)
    server = cluster.Cluster(disk="96m")
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.mark.postgres
def test_a_full_postgresql_disk_gets_temporary_errors_and_recovers(
        full_database: cluster.Cluster, make_hub: MakeHub,
        caplog: pytest.LogCaptureFixture) -> None:
    # full_database first: set up before make_hub, torn down after the hubs are stopped.
    probes = open_account(make_hub(spool={"url": full_database.url}))
    assert probes.rest("before").status_code == 202
    probes.all_delivered()
    ballast = Ballast(full_database.root)
    ballast.fill()

    # Pages with room left take a few more rows; then PostgreSQL says 53100.
    rest = eventually(lambda: refused(probes.rest("while full")), 20, what="REST refusing")
    assert rest is not None and is_temporary(rest, FULL), rest and rest.text
    code, words = probes.mail("while full")
    assert code == 451 and words.startswith("4.3.1"), words

    ballast.free()
    eventually(lambda: probes.rest("after").status_code == 202, 20, what="accepting again")
    assert probes.readyz().status_code == 200
    probes.all_delivered()
    assert_said_not_dumped(caplog)
