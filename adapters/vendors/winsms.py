"""WinSMS's `CCYYMMDDHHmm` times (XML `<Scheduled>`, the FTP first line, the email
subject): one parser and one formatter. The zone is the caller's: WinSMS's XML API is
South African time whatever our zone; the FTP drop and email use the configured one."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

_SHAPE = re.compile(r"\d{12}")
_FORMAT = "%Y%m%d%H%M"


def is_time(value: str) -> bool:
    """Twelve digits: what WinSMS clients write for a time (checked before parsing, as the
    FTP header and the email subject are times only when they look like one)."""
    return _SHAPE.fullmatch(value.strip()) is not None


def parse_time(value: str, zone: tzinfo) -> datetime:
    """The moment `CCYYMMDDHHmm` names in `zone`; raises ValueError saying why not.
    Exactly twelve digits: strptime alone would take `2024111410` too."""
    value = value.strip()
    if not is_time(value):
        raise ValueError(f"'{value}' is not CCYYMMDDHHmm")
    try:
        local = datetime.strptime(value, _FORMAT)
    except ValueError:
        raise ValueError(f"'{value}' is not a real CCYYMMDDHHmm time") from None
    return local.replace(tzinfo=zone)


def format_time(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime(_FORMAT)
