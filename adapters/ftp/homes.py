"""The on-disk layout of the FTP drop: one home per account under `<data_dir>/ftp/`, and a
work area outside every home where files wait while the hub processes them."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from hub.ids import new_id

BATCH_ID_LENGTH = 26  # a ULID (new_id): the prefix `claim` gives a claimed upload

SUBDIRS = ("incoming", "results", "reports", "processed", "rejected")
HUB_OWNED = frozenset({"results", "reports", "processed", "rejected"})
PART_SUFFIX = ".part"
# Account names become directory names: nothing that could climb out of the root.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
# An absolute path inside a text (an OSError's file name, say): not after a word
# character, so "8/16-bit" or "a/b" are left alone.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/[^\s'\",;()/]+(?:/[^\s'\",;()/]*)*")


def safe_account_name(name: str) -> bool:
    return bool(_SAFE_NAME.fullmatch(name)) and ".." not in name


def without_paths(text: str) -> str:
    """Text for a client's answer file: every absolute path replaced by its last part,
    so no answer ever shows where the hub keeps its files."""
    return _ABSOLUTE_PATH.sub(lambda m: f"<{PurePosixPath(m.group()).name or 'path'}>", text)


def stem(file_name: str) -> str:
    base, dot, _ext = file_name.rpartition(".")
    return base if dot and base else file_name


class Homes:
    """The FTP area on disk: one home per account with its drop folder and the hub's
    own folders (results, reports, processed, rejected), and the work area files are
    claimed into while they are processed."""

    def __init__(self, data_dir: Path) -> None:
        self.root = (data_dir / "ftp").resolve()
        self.work = (data_dir / "ftp-work").resolve()

    def home(self, account: str) -> Path:
        return self.root / account

    def ensure(self, account: str) -> Path:
        home = self.home(account)
        for sub in SUBDIRS:
            (home / sub).mkdir(parents=True, exist_ok=True)
        return home

    def is_drop(self, account: str, path: Path) -> bool:
        """An upload the hub processes: in the home or incoming/, complete, not hidden."""
        home = self.home(account)
        return (path.parent in (home, home / "incoming") and not path.name.startswith(".")
                and not path.name.endswith(PART_SUFFIX))

    def is_own_folder(self, account: str, path: Path) -> bool:
        """One of the folders the hub made in the home (incoming/ and the hub's own):
        a client may use them but never remove or rename them."""
        resolved = path.resolve()
        return resolved.parent == self.home(account) and resolved.name in SUBDIRS

    def in_hub_owned(self, account: str, path: Path) -> bool:
        try:
            relative = path.resolve().relative_to(self.home(account))
        except ValueError:
            return False
        return bool(relative.parts) and relative.parts[0] in HUB_OWNED

    def claim(self, account: str, path: Path) -> Path:
        """Move an upload out of the client's reach (no APPE, REST or delete while the hub
        reads it). A rename on one file system: cheap enough for the FTP thread."""
        target = self.work / account / f"{new_id()}-{path.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        return target

    def claimed_originals(self) -> list[tuple[str, Path]]:
        """(account, file) of each claimed original in the work area, `<batch id>-<name>`
        as `claim` names it (the hub's own work files there are `<batch id>.<kind>.tmp`)."""
        if not self.work.is_dir():
            return []
        return [(folder.name, path) for folder in sorted(self.work.iterdir())
                if folder.is_dir() for path in sorted(folder.iterdir())
                if path.is_file() and path.name[BATCH_ID_LENGTH:BATCH_ID_LENGTH + 1] == "-"]

    def result_path(self, account: str, file_name: str) -> Path:
        return self.home(account) / "results" / f"{stem(file_name)}.result.csv"

    def progress_path(self, account: str, file_name: str) -> Path:
        return self.home(account) / "results" / f"{stem(file_name)}.progress"

    def report_path(self, account: str, file_name: str) -> Path:
        return self.home(account) / "reports" / f"{stem(file_name)}.report.csv"

    def work_file(self, account: str, name: str) -> Path:
        path = self.work / account / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def files_in(self, folders: tuple[str, ...]) -> list[Path]:
        """Every file in these folders of every home. Only the hub writes into its own
        folders: a symbolic link there is none of its files and is never followed."""
        found: list[Path] = []
        for home in _entries(self.root, lambda p: p.is_dir()):
            for folder in folders:
                found += _entries(home / folder, lambda p: p.is_file())
        return found

    def file_away(self, account: str, work: Path, file_name: str, folder: str) -> Path:
        """Move a processed original into processed/ or rejected/ under a unique name."""
        batch_prefix = work.name.split("-", 1)[0]
        target = self.home(account) / folder / f"{batch_prefix}-{file_name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work, target)
        return target


def _entries(folder: Path, keep: Callable[[Path], bool]) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if not p.is_symlink() and keep(p)]
    except (FileNotFoundError, NotADirectoryError):
        return []
