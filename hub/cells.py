"""CSV cells a spreadsheet shows as text, never runs: shared by every CSV the hub
writes for people (FTP results and reports, the audit export)."""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutral(value: object) -> str:
    """A cell Excel and LibreOffice show as text: formulas get a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text
