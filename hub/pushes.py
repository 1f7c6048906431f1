"""Delivery-report pushes in the dialects' own shapes (Kannel dlr-url, Clickatell
callbacks, the XML deliveryReport): which status changes each one reports, decided
inside the spool's transaction (docs/pushes.md); the adapters format and send them."""

from __future__ import annotations

from enum import IntFlag

from hub.model import CallbackKind, Status

# Statuses that may be pushed at all; the others (accepted, scheduled, sending) are the
# hub's own business, so a status change into them costs the fan-out nothing.
PUSHED = frozenset({Status.QUEUED, Status.SUBMITTED, Status.DELIVERED, Status.UNDELIVERED,
                    Status.EXPIRED, Status.REJECTED, Status.FAILED, Status.CANCELLED})

# The XML deliveryReport: "when messages reach a final state (or are submitted to a
# carrier)", as schemas/smshub-1.xsd says.
XML_STATUSES = PUSHED - {Status.QUEUED}

NO_REPORT = "no_delivery_report"  # failed after the carrier took it: never heard of again


class KannelDlr(IntFlag):
    """Kannel's DLR types, one bit each of a dlr-mask (gw/dlr.h)."""

    DELIVERED = 1  # delivered to the phone
    UNDELIVERED = 2  # not delivered to the phone
    BUFFERED = 4  # queued, not yet delivered
    SMSC_ACK = 8  # the SMSC took it
    SMSC_NACK = 16  # the SMSC refused it


KANNEL_ALL = 31  # every bit smshub reports
MAX_DLR_MASK = 63  # smsbox refuses a mask above this ("DLR-Mask field misformed")


def kannel_type(status: Status, error_code: str | None) -> KannelDlr | None:
    """The DLR type Kannel would report for a message entering `status`: a message that
    failed after its carrier took it failed on the phone's side (2), one the hub gave up
    on before any carrier took it was refused on the SMSC's side (16)."""
    if status is Status.FAILED:
        return KannelDlr.UNDELIVERED if error_code == NO_REPORT else KannelDlr.SMSC_NACK
    return _KANNEL.get(status)


_KANNEL = {
    Status.QUEUED: KannelDlr.BUFFERED,  # waiting for another attempt
    Status.SUBMITTED: KannelDlr.SMSC_ACK,
    Status.DELIVERED: KannelDlr.DELIVERED,
    Status.UNDELIVERED: KannelDlr.UNDELIVERED,
    Status.EXPIRED: KannelDlr.UNDELIVERED,  # Kannel reads an EXPIRED receipt as a failure
    Status.REJECTED: KannelDlr.SMSC_NACK,
    Status.CANCELLED: KannelDlr.SMSC_NACK,  # it will never reach an SMSC
}


class ClickatellCallback(IntFlag):
    """The bits of Clickatell's `callback` value (0-7): which statuses come back."""

    INTERMEDIATE = 1
    FINAL = 2
    ERROR = 4


CLICKATELL_ALL = 7

_CLICKATELL = {
    Status.QUEUED: ClickatellCallback.INTERMEDIATE,  # 002
    Status.SUBMITTED: ClickatellCallback.INTERMEDIATE,  # 003
    Status.DELIVERED: ClickatellCallback.FINAL,  # 004
}
_ERROR = ClickatellCallback.FINAL | ClickatellCallback.ERROR  # 005, 006, 007, 009, 010


def wants(kind: CallbackKind, mask: int, status: Status, error_code: str | None) -> bool:
    """Whether a push of `kind` asked for with `mask` reports a change into `status`."""
    if status not in PUSHED:
        return False
    if kind is CallbackKind.KANNEL:
        found = kannel_type(status, error_code)
        return found is not None and bool(mask & found)
    if kind is CallbackKind.CLICKATELL:
        return bool(mask & _CLICKATELL.get(status, _ERROR))
    return status in XML_STATUSES
