"""The one table of SMPP command_status values: each code's name, meaning, and what the
hub does about it (go on, slow down, retry later, or give up on the message)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hub.model import ErrorInfo, Verdict


class Outcome(StrEnum):
    OK = "ok"
    THROTTLE = "throttle"  # the SMSC is busy: pause the carrier, then send again
    TRANSIENT = "transient"  # this attempt failed; the message may succeed later
    PERMANENT = "permanent"  # the message itself is refused: sending it again cannot help

    @property
    def verdict(self) -> Verdict:
        return _VERDICTS[self]


_VERDICTS = {Outcome.OK: Verdict.SUBMITTED, Outcome.THROTTLE: Verdict.RETRY,
             Outcome.TRANSIENT: Verdict.RETRY, Outcome.PERMANENT: Verdict.REJECTED}


@dataclass(frozen=True, slots=True)
class StatusInfo:
    name: str  # ESME_R..., or a description of the range for a code not in the table
    outcome: Outcome
    text: str  # the spec's meaning
    code: str  # stable snake_case error code, "smpp_..."


OK, THROTTLE = Outcome.OK, Outcome.THROTTLE
TRANSIENT, PERMANENT = Outcome.TRANSIENT, Outcome.PERMANENT

# (value, name, outcome, error code, meaning). SMPP 3.4 section 5.1.3 in full, then the
# SMPP 5.0 codes an SMSC may answer a submit_sm with (0x100-0x106). Outcomes follow the
# meaning: a fault in the message or its parameters is PERMANENT; trouble on the SMSC's
# side or with the bind (which a rebind or another carrier can cure) is TRANSIENT.
_TABLE: tuple[tuple[int, str, Outcome, str, str], ...] = (
    (0x000, "ESME_ROK", OK, "smpp_ok", "No error"),
    (0x001, "ESME_RINVMSGLEN", PERMANENT, "smpp_invalid_message_length",
     "Message length is invalid"),
    (0x002, "ESME_RINVCMDLEN", PERMANENT, "smpp_invalid_command_length",
     "Command length is invalid"),
    (0x003, "ESME_RINVCMDID", PERMANENT, "smpp_invalid_command_id", "Invalid command ID"),
    (0x004, "ESME_RINVBNDSTS", TRANSIENT, "smpp_incorrect_bind_status",
     "Incorrect bind status for given command"),
    (0x005, "ESME_RALYBND", TRANSIENT, "smpp_already_bound", "ESME already in bound state"),
    (0x006, "ESME_RINVPRTFLG", PERMANENT, "smpp_invalid_priority_flag",
     "Invalid priority flag"),
    (0x007, "ESME_RINVREGDLVFLG", PERMANENT, "smpp_invalid_registered_delivery",
     "Invalid registered delivery flag"),
    (0x008, "ESME_RSYSERR", TRANSIENT, "smpp_system_error", "System error"),
    (0x00A, "ESME_RINVSRCADR", PERMANENT, "smpp_invalid_source", "Invalid source address"),
    (0x00B, "ESME_RINVDSTADR", PERMANENT, "smpp_invalid_destination",
     "Invalid destination address"),
    (0x00C, "ESME_RINVMSGID", PERMANENT, "smpp_invalid_message_id", "Message ID is invalid"),
    (0x00D, "ESME_RBINDFAIL", TRANSIENT, "smpp_bind_failed", "Bind failed"),
    (0x00E, "ESME_RINVPASWD", TRANSIENT, "smpp_invalid_password", "Invalid password"),
    (0x00F, "ESME_RINVSYSID", TRANSIENT, "smpp_invalid_system_id", "Invalid system ID"),
    (0x011, "ESME_RCANCELFAIL", PERMANENT, "smpp_cancel_failed", "cancel_sm failed"),
    (0x013, "ESME_RREPLACEFAIL", PERMANENT, "smpp_replace_failed", "replace_sm failed"),
    (0x014, "ESME_RMSGQFUL", THROTTLE, "smpp_queue_full", "Message queue full"),
    (0x015, "ESME_RINVSERTYP", PERMANENT, "smpp_invalid_service_type",
     "Invalid service type"),
    (0x033, "ESME_RINVNUMDESTS", PERMANENT, "smpp_invalid_number_of_destinations",
     "Invalid number of destinations"),
    (0x034, "ESME_RINVDLNAME", PERMANENT, "smpp_invalid_distribution_list",
     "Invalid distribution list name"),
    (0x040, "ESME_RINVDESTFLAG", PERMANENT, "smpp_invalid_destination_flag",
     "Destination flag is invalid (submit_multi)"),
    (0x042, "ESME_RINVSUBREP", PERMANENT, "smpp_invalid_submit_with_replace",
     "Invalid 'submit with replace' request (replace_if_present_flag set)"),
    (0x043, "ESME_RINVESMCLASS", PERMANENT, "smpp_invalid_esm_class",
     "Invalid esm_class field data"),
    (0x044, "ESME_RCNTSUBDL", PERMANENT, "smpp_cannot_submit_to_distribution_list",
     "Cannot submit to distribution list"),
    (0x045, "ESME_RSUBMITFAIL", TRANSIENT, "smpp_submit_failed",
     "submit_sm or submit_multi failed"),
    (0x048, "ESME_RINVSRCTON", PERMANENT, "smpp_invalid_source_ton",
     "Invalid source address TON"),
    (0x049, "ESME_RINVSRCNPI", PERMANENT, "smpp_invalid_source_npi",
     "Invalid source address NPI"),
    (0x050, "ESME_RINVDSTTON", PERMANENT, "smpp_invalid_destination_ton",
     "Invalid destination address TON"),
    (0x051, "ESME_RINVDSTNPI", PERMANENT, "smpp_invalid_destination_npi",
     "Invalid destination address NPI"),
    (0x053, "ESME_RINVSYSTYP", TRANSIENT, "smpp_invalid_system_type",
     "Invalid system_type field"),
    (0x054, "ESME_RINVREPFLAG", PERMANENT, "smpp_invalid_replace_flag",
     "Invalid replace_if_present flag"),
    (0x055, "ESME_RINVNUMMSGS", PERMANENT, "smpp_invalid_number_of_messages",
     "Invalid number of messages"),
    (0x058, "ESME_RTHROTTLED", THROTTLE, "smpp_throttled",
     "Throttling error (ESME has exceeded allowed message limits)"),
    (0x061, "ESME_RINVSCHED", PERMANENT, "smpp_invalid_schedule_time",
     "Invalid scheduled delivery time"),
    (0x062, "ESME_RINVEXPIRY", PERMANENT, "smpp_invalid_validity_period",
     "Invalid message validity period (expiry time)"),
    (0x063, "ESME_RINVDFTMSGID", PERMANENT, "smpp_invalid_predefined_message",
     "Predefined message invalid or not found"),
    (0x064, "ESME_RX_T_APPN", TRANSIENT, "smpp_receiver_temporary_error",
     "ESME receiver temporary application error"),
    (0x065, "ESME_RX_P_APPN", PERMANENT, "smpp_receiver_permanent_error",
     "ESME receiver permanent application error"),
    (0x066, "ESME_RX_R_APPN", PERMANENT, "smpp_receiver_rejected",
     "ESME receiver reject message error"),
    (0x067, "ESME_RQUERYFAIL", TRANSIENT, "smpp_query_failed", "query_sm request failed"),
    (0x0C0, "ESME_RINVOPTPARSTREAM", PERMANENT, "smpp_invalid_optional_part",
     "Error in the optional part of the PDU body"),
    (0x0C1, "ESME_ROPTPARNOTALLWD", PERMANENT, "smpp_optional_parameter_not_allowed",
     "Optional parameter not allowed"),
    (0x0C2, "ESME_RINVPARLEN", PERMANENT, "smpp_invalid_parameter_length",
     "Invalid parameter length"),
    (0x0C3, "ESME_RMISSINGOPTPARAM", PERMANENT, "smpp_missing_optional_parameter",
     "Expected optional parameter missing"),
    (0x0C4, "ESME_RINVOPTPARAMVAL", PERMANENT, "smpp_invalid_optional_parameter_value",
     "Invalid optional parameter value"),
    (0x0FE, "ESME_RDELIVERYFAILURE", TRANSIENT, "smpp_delivery_failure",
     "Delivery failure (data_sm_resp; delivery_failure_reason may say more)"),
    (0x0FF, "ESME_RUNKNOWNERR", TRANSIENT, "smpp_unknown_error", "Unknown error"),
    (0x100, "ESME_RSERTYPUNAUTH", PERMANENT, "smpp_service_type_unauthorised",
     "ESME not authorised to use the specified service_type (SMPP 5.0)"),
    (0x101, "ESME_RPROHIBITED", PERMANENT, "smpp_prohibited",
     "ESME prohibited from using the specified operation (SMPP 5.0)"),
    (0x102, "ESME_RSERTYPUNAVAIL", TRANSIENT, "smpp_service_type_unavailable",
     "Specified service_type is unavailable (SMPP 5.0)"),
    (0x103, "ESME_RSERTYPDENIED", PERMANENT, "smpp_service_type_denied",
     "Specified service_type is denied (SMPP 5.0)"),
    (0x104, "ESME_RINVDCS", PERMANENT, "smpp_invalid_data_coding",
     "Invalid data coding scheme (SMPP 5.0)"),
    (0x105, "ESME_RINVSRCADDRSUBUNIT", PERMANENT, "smpp_invalid_source_subunit",
     "Source address subunit is invalid (SMPP 5.0)"),
    (0x106, "ESME_RINVDSTADDRSUBUNIT", PERMANENT, "smpp_invalid_destination_subunit",
     "Destination address subunit is invalid (SMPP 5.0)"),
)

TABLE: dict[int, StatusInfo] = {
    value: StatusInfo(name, outcome, text, code) for value, name, outcome, code, text in _TABLE
}
VENDOR_RANGE = range(0x400, 0x500)


def classify(status: int) -> StatusInfo:
    """What a command_status means. A code outside the table is TRANSIENT: retrying a
    message the SMSC might have taken costs little, giving it up on a guess costs it."""
    known = TABLE.get(status)
    if known is not None:
        return known
    if status in VENDOR_RANGE:
        return StatusInfo("vendor-specific", TRANSIENT,
                          "Reserved for SMSC vendor-specific errors", "smpp_vendor_error")
    return StatusInfo("unknown", TRANSIENT, "Not a command_status SMPP defines",
                      "smpp_unknown_status")


def error_info(status: int) -> ErrorInfo | None:
    """The hub's error for a failed command, or None for ESME_ROK."""
    if status == 0:
        return None
    info = classify(status)
    return ErrorInfo(info.code, f"{info.name} (0x{status:08X}): {info.text}")


def markdown_table() -> str:
    """The table as docs/smpp.md shows it; a test keeps the two identical."""
    lines = ["| command_status | name | outcome | meaning |", "|---|---|---|---|"]
    lines += [f"| 0x{value:08X} | {info.name} | {info.outcome} | {info.text} |"
              for value, info in TABLE.items()]
    lines.append(f"| 0x{VENDOR_RANGE.start:08X}-0x{VENDOR_RANGE.stop - 1:08X} | "
                 "vendor-specific | transient | Reserved for SMSC vendor-specific errors |")
    lines.append("| any other | unknown | transient | Not a command_status SMPP defines |")
    return "\n".join(lines)
