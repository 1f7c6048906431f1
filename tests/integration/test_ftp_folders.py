"""The hub's own folders in an FTP home stay the hub's: a client cannot remove, rename or
replace them, and no answer file ever shows where the hub keeps its files."""

from __future__ import annotations

import ftplib
from collections.abc import Callable

import pytest

from adapters.ftp.homes import SUBDIRS
from tests.ftpdrop import Drop, make_drop, no_leaked_threads, read_csv
from tests.hubthread import HubThread

pytestmark = pytest.mark.usefixtures("no_leaked_threads")
_ = no_leaked_threads


@pytest.fixture
def drop(make_hub: Callable[..., HubThread]) -> Drop:
    return make_drop(make_hub)


@pytest.mark.parametrize("folder", SUBDIRS)
def test_ftp_client_cannot_remove_or_rename_the_hubs_folders(drop: Drop, folder: str) -> None:
    ftp = drop.client()
    try:
        for command in (f"RMD {folder}", f"RMD /{folder}/", f"DELE {folder}",
                        f"RNFR {folder}"):
            with pytest.raises(ftplib.error_perm, match=r"550 .*hub's own folders"):
                ftp.sendcmd(command)
        ftp.mkd("mine")
        with pytest.raises(ftplib.error_perm, match=r"550 .*hub's own folders"):
            ftp.rename("mine", folder)
        assert (drop.home / folder).is_dir() and (drop.home / "mine").is_dir()
        ftp.rmd("mine")  # the client's own folder: its to remove
    finally:
        ftp.quit()
    drop.upload("after.csv", "to,text\n0821234567,still answered\n")
    assert drop.result("after.csv")[1][3] == "accepted"


def test_ftp_client_may_still_delete_files_in_the_hubs_folders(drop: Drop) -> None:
    drop.upload("once.csv", "to,text\n0821234567,hi\n")
    drop.result("once.csv")
    ftp = drop.client()
    ftp.delete("results/once.result.csv")
    ftp.quit()
    assert not (drop.home / "results" / "once.result.csv").exists()


def test_ftp_answer_files_never_show_a_server_path(drop: Drop) -> None:
    # A file-system fault whose error names a path: the progress file cannot be written.
    (drop.home / "results" / ".stuck.progress.tmp").mkdir(parents=True)
    drop.upload("stuck.csv", "to,text\n0821234567,one\n0821234568,two\n")
    rows = drop.result("stuck.csv")
    assert rows[-2][3] == "not_processed" and "could not read or write its files" in rows[-2][7]
    data_dir = str(drop.hub.config.data_dir.resolve())
    reasons = [p.read_text("utf-8") for p in (drop.home / "rejected").glob("*.reason.txt")]
    assert reasons and all(data_dir not in text and "/ftp/" not in text
                           for text in [*reasons, *(",".join(r) for r in rows)])
    assert read_csv(drop.home / "results" / "stuck.result.csv") == rows
