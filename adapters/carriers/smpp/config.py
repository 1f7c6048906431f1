"""The settings of one SMPP carrier, from its `[carriers.NAME]` table with type "smpp"."""

from __future__ import annotations

from dataclasses import dataclass


def _check(ok: bool, allowed: str) -> None:
    if not ok:
        raise ValueError(allowed)


BIND_MODES = ("transceiver", "transmitter+receiver", "transmitter")
LONG_MODES = ("udh", "sar", "payload")
ID_FORMATS = ("as-is", "dec", "hex")


@dataclass(frozen=True, slots=True)
class SmppSettings:
    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    address_range: str = ""
    addr_ton: int = 0
    addr_npi: int = 0
    # "transceiver": one bind both ways; "transmitter+receiver": a pair per bind slot.
    bind_mode: str = "transceiver"
    binds: int = 1
    window: int = 100
    rate: float = 0.0  # messages/s over all binds; 0: no limit
    enquire_link_interval: float = 30.0
    response_timeout: float = 30.0
    bind_timeout: float = 10.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    throttle_pause: float = 1.0  # after ESME_RTHROTTLED / ESME_RMSGQFUL
    tls: bool = False
    tls_verify: bool = True
    tls_ca_file: str = ""
    long_messages: str = "udh"
    registered_delivery: bool = True
    # How the SMSC writes its ids: in submit_sm_resp and in receipts (Kannel's msg-id-type).
    response_id_format: str = "as-is"
    receipt_id_format: str = "as-is"
    # Sender TON/NPI: chosen from the sender (alphanumeric 5/0, short code 3/0,
    # international 1/1) unless set here (-1: choose).
    source_ton: int = -1
    source_npi: int = -1
    # The receipt timeout (docs/carriers.md): seconds after submission, or 0 for the end
    # of the message's validity plus receipt_margin; query_sm first if the SMSC allows it.
    receipt_timeout: float = 0.0
    receipt_margin: float = 3600.0
    query_before_timeout: bool = False
    # What the carrier charges per segment, for `smshub carriers --costs`.
    price_per_segment: float = 0.0

    def __post_init__(self) -> None:
        _check(bool(self.host), "host: the SMSC's host name or address")
        _check(0 < self.port <= 65535, "port: 1 to 65535")
        _check(0 < len(self.system_id) <= 15, "system_id: 1 to 15 characters")
        _check(len(self.password) <= 8, "password: at most 8 characters (SMPP 3.4)")
        _check(len(self.system_type) <= 12, "system_type: at most 12 characters")
        _check(self.bind_mode in BIND_MODES, "bind_mode: one of " + ", ".join(BIND_MODES))
        _check(1 <= self.binds <= 32, "binds: 1 to 32")
        _check(1 <= self.window <= 10_000, "window: 1 to 10000")
        _check(self.rate >= 0, "rate: messages per second, 0 for no limit")
        _check(self.enquire_link_interval > 0, "enquire_link_interval: seconds, > 0")
        _check(self.response_timeout > 0, "response_timeout: seconds, > 0")
        _check(self.bind_timeout > 0, "bind_timeout: seconds, > 0")
        _check(0 < self.reconnect_min <= self.reconnect_max,
               "reconnect_min: > 0 and at most reconnect_max")
        _check(self.throttle_pause > 0, "throttle_pause: seconds, > 0")
        _check(self.long_messages in LONG_MODES,
               "long_messages: one of " + ", ".join(LONG_MODES))
        for name in ("response_id_format", "receipt_id_format"):
            _check(getattr(self, name) in ID_FORMATS, f"{name}: one of " + ", ".join(ID_FORMATS))
        for name in ("source_ton", "source_npi", "addr_ton", "addr_npi"):
            _check(-1 <= getattr(self, name) <= 255, f"{name}: 0 to 255 (-1: choose)")
        _check(self.receipt_timeout >= 0, "receipt_timeout: seconds, 0 for validity + margin")
        _check(self.receipt_margin >= 0, "receipt_margin: seconds, 0 or more")
        _check(self.price_per_segment >= 0, "price_per_segment: 0 or more")
