"""POPIA retention in the FTP area (adapters/ftp/retention.py): originals filed in
processed/ and rejected/ (with a rejection's reason) go once taken in before the cutoff,
by the ULID their name starts with, else their mtime; answer files and symlinks stay."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ulid import ULID

from adapters.ftp.homes import Homes
from adapters.ftp.retention import filed_at, purge_filed

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=90)


def _named(at: datetime, name: str) -> str:
    return f"{ULID.from_datetime(at)}-{name}"


def test_originals_taken_in_before_the_cutoff_go_and_the_rest_stay(tmp_path: Path) -> None:
    homes = Homes(tmp_path)
    home = homes.ensure("acme")
    old, young = CUTOFF - timedelta(minutes=1), CUTOFF + timedelta(minutes=1)
    files = {
        "old": home / "processed" / _named(old, "promo.csv"),
        "young": home / "processed" / _named(young, "promo.csv"),
        "rejected": home / "rejected" / _named(old, "bad.csv"),
        "reason": home / "rejected" / (_named(old, "bad.csv") + ".reason.txt"),
        "result": home / "results" / "promo.result.csv",
        "report": home / "reports" / "promo.report.csv",
        "upload": home / "incoming" / "waiting.csv",
    }
    for path in files.values():
        path.write_text("0821234567,Canary text\n", encoding="utf-8")
    # A name that is no ULID is judged by its mtime.
    unnamed_old = home / "processed" / "copied-in.csv"
    unnamed_old.write_text("x", encoding="utf-8")
    stamp = (CUTOFF - timedelta(days=1)).timestamp()
    os.utime(unnamed_old, (stamp, stamp))
    # Every file is new on disk: a filed original's name decides.
    assert filed_at(files["old"]) < CUTOFF < filed_at(files["young"])
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("not the hub's", encoding="utf-8")
    link = home / "processed" / _named(old, "link.csv")
    link.symlink_to(outside)
    assert purge_filed(homes, CUTOFF) == 4
    gone = {"old", "rejected", "reason"}
    assert {k for k, p in files.items() if not p.exists()} == gone
    assert not unnamed_old.exists()
    assert outside.exists() and link.is_symlink()
    assert purge_filed(homes, CUTOFF) == 0


def test_an_ftp_area_not_made_yet_purges_nothing(tmp_path: Path) -> None:
    assert purge_filed(Homes(tmp_path), NOW) == 0
