"""Reading uploaded batch files as text: the encoding (UTF-8 with or without BOM, UTF-16,
Windows-1252) is decided once from the bytes, then the file is streamed line by line,
never loaded, and no line longer than MAX_LINE_CHARS is ever read whole."""

from __future__ import annotations

import codecs
import hashlib
from pathlib import Path
from types import TracebackType
from typing import TextIO

_CHUNK = 1 << 20
_SAMPLE = 1 << 16
DELIMITERS = (",", ";", "\t")
# A row is a number, a text of at most a few thousand characters and a few placeholder
# columns; a line far longer is not a row anyone wrote, and parsing one (a 2 MB line of
# commas is two million fields) must never cost more than a row can.
MAX_LINE_CHARS = 16_384
MAX_COLUMNS = 100


class UnreadableFile(Exception):
    """The file cannot be read as text at all (binary, empty, unknown format)."""


class LineTooLong(UnreadableFile):
    """A line longer than MAX_LINE_CHARS: the file is read no further."""

    def __init__(self, line: int, limit: int) -> None:
        super().__init__(f"line {line} is longer than {limit:,} characters, the limit for "
                         "one line; the file was read no further")
        self.line = line


class Lines:
    """A text file as an iterator of lines for the csv module, each line at most `limit`
    characters (its line ending aside); a longer one raises LineTooLong instead of
    being read into memory."""

    def __init__(self, handle: TextIO, limit: int = MAX_LINE_CHARS) -> None:
        self._handle = handle
        self._read = handle.readline
        self._limit = limit
        self._size = limit + 2  # room for "\r\n"
        self.line = 0

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> str:
        text = self._read(self._size)
        if not text:
            raise StopIteration
        self.line += 1
        if len(text) > self._limit and len(text.rstrip("\r\n")) > self._limit:
            raise LineTooLong(self.line, self._limit)
        return text

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> Lines:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def detect_encoding(path: Path) -> str:
    """A Python codec name for the file; BOMs win, then a full strict UTF-8 check."""
    with path.open("rb") as handle:
        head = handle.read(_SAMPLE)
    if not head.strip():
        raise UnreadableFile("the file is empty")
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # the BOM tells the codec the byte order
    if b"\x00" in head:
        return _bomless_utf16(head)
    # A whole-file check: an ASCII head followed by one Windows-1252 byte far down
    # must not fail halfway through processing.
    return "utf-8" if _is_utf8(path) else "cp1252"


def _bomless_utf16(head: bytes) -> str:
    even_zeros = head[0::2].count(0)
    odd_zeros = head[1::2].count(0)
    if odd_zeros > len(head) // 4:
        return "utf-16-le"
    if even_zeros > len(head) // 4:
        return "utf-16-be"
    raise UnreadableFile("the file contains NUL bytes and is not UTF-16 text")


def _is_utf8(path: Path) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def open_text(path: Path, encoding: str) -> Lines:
    """The file's lines for the csv module (newline="" keeps quoted newlines intact)."""
    # cp1252 leaves five bytes undefined; replacing them beats refusing a whole file.
    errors = "replace" if encoding == "cp1252" else "strict"
    return Lines(path.open("r", encoding=encoding, errors=errors, newline=""))


def first_line(path: Path, encoding: str) -> str:
    """The first non-blank line, for format detection."""
    with open_text(path, encoding) as stream:
        for line in stream:
            if line.strip():
                return line.strip("\r\n")
    raise UnreadableFile("the file has no lines")


def sniff_delimiter(header: str) -> str:
    """The delimiter a header line uses most (comma, semicolon or tab)."""
    counts = {d: _count_unquoted(header, d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _count_unquoted(line: str, char: str) -> int:
    count, quoted = 0, False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == char and not quoted:
            count += 1
    return count
