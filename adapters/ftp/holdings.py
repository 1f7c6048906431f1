"""What the FTP area holds about a number (POPIA): the filed originals in processed/ and
rejected/ hold its rows' texts, the result and report files its number and statuses.
`smshub privacy export` lists them all; `erase` deletes the originals only, the answer
files staying as the message rows do."""

from __future__ import annotations

import codecs
import re
from collections.abc import Generator, Sequence
from contextlib import closing
from pathlib import Path

from adapters.ftp.homes import Homes

ORIGINALS = ("processed", "rejected")
ANSWERS = ("results", "reports")
# How a client may space a number in its file ("082 123 4567", "+27 (82) 123-4567"):
# squeezed out of each line before the number's written forms are looked for.
_SPACING = re.compile(rb"[ \t().-]")
_UTF16 = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def files_naming(homes: Homes, forms: Sequence[str],
                 folders: tuple[str, ...] = ORIGINALS + ANSWERS) -> list[Path]:
    """Every file of every home's `folders` that holds one of `forms` (the digits the
    number is written with: hub.privacy.written_forms). Blocking: reads each file."""
    wanted = [form.encode() for form in forms]
    return [path for path in homes.files_in(folders) if _names(path, wanted)]


def erase_originals(homes: Homes, forms: Sequence[str]) -> list[Path]:
    """Delete the filed originals that hold the number; the ones deleted."""
    gone = files_naming(homes, forms, ORIGINALS)
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


def _names(path: Path, wanted: list[bytes]) -> bool:
    with closing(_lines(path)) as lines:
        return any(w in _SPACING.sub(b"", line) for line in lines for w in wanted)


def _lines(path: Path) -> Generator[bytes, None, None]:
    """The file's lines, a UTF-16 file's (the drop reads those too) as UTF-8."""
    with path.open("rb") as handle:
        head = handle.read(2)
        if head in _UTF16:
            text = (head + handle.read()).decode("utf-16", "replace")
            yield from (line.encode() for line in text.splitlines())
            return
        handle.seek(0)
        yield from handle
