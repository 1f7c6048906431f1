"""What the FTP area holds about a number (adapters/ftp/holdings.py): the filed originals
and answer files that hold it however a client spaced it, UTF-16 files too; erasure
deletes the originals only."""

from __future__ import annotations

from pathlib import Path

from adapters.ftp.holdings import erase_originals, files_naming
from adapters.ftp.homes import Homes
from hub.privacy import written_forms

FORMS = written_forms("+27821234590")


def test_files_naming_the_number_in_any_spacing_or_encoding_are_found(tmp_path: Path) -> None:
    homes = Homes(tmp_path)
    acme, other = homes.ensure("acme"), homes.ensure("other")
    named = {
        acme / "processed" / "01-plain.csv": b"to,text\n0821234590,Sale\n",
        acme / "processed" / "02-spaced.csv": b"+27 (82) 123-4590;Sale\n",
        acme / "rejected" / "03-utf16.csv": "to,text\n27821234590,Sale\n".encode("utf-16"),
        acme / "results" / "plain.result.csv": b"2,'+27821234590,+27821234590,accepted\n",
        other / "reports" / "x.report.csv": b"01M,'+27821234590,delivered\n",
    }
    unnamed = {
        acme / "processed" / "04-other.csv": b"to,text\n0821234591,Sale\n",
        acme / "processed" / "05-split.csv": b"to,text\n08212\n34590,Sale\n",
        acme / "incoming" / "06-not-filed.csv": b"0821234590,Sale\n",
    }
    for path, content in {**named, **unnamed}.items():
        path.write_bytes(content)
    assert sorted(files_naming(homes, FORMS)) == sorted(named)
    gone = erase_originals(homes, FORMS)
    originals = {p for p in named if p.parent.name in ("processed", "rejected")}
    assert set(gone) == originals and not any(p.exists() for p in originals)
    assert all(p.exists() for p in set(named) - originals)  # answer files: kept
    assert all(p.exists() for p in unnamed)
    assert files_naming(homes, FORMS, ("processed", "rejected")) == []
