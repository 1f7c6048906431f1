"""The SMPP command_status table: every code classified, errors named stably, and
docs/smpp.md showing exactly the table the code uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapters.carriers.smpp.status import (
    TABLE,
    Outcome,
    classify,
    error_info,
    markdown_table,
)
from hub.model import Verdict

DOC = Path(__file__).resolve().parents[2] / "docs" / "smpp.md"

# Every ESME_* code of SMPP 3.4 section 5.1.3.
SMPP_34 = {
    0x00: "ESME_ROK", 0x01: "ESME_RINVMSGLEN", 0x02: "ESME_RINVCMDLEN",
    0x03: "ESME_RINVCMDID", 0x04: "ESME_RINVBNDSTS", 0x05: "ESME_RALYBND",
    0x06: "ESME_RINVPRTFLG", 0x07: "ESME_RINVREGDLVFLG", 0x08: "ESME_RSYSERR",
    0x0A: "ESME_RINVSRCADR", 0x0B: "ESME_RINVDSTADR", 0x0C: "ESME_RINVMSGID",
    0x0D: "ESME_RBINDFAIL", 0x0E: "ESME_RINVPASWD", 0x0F: "ESME_RINVSYSID",
    0x11: "ESME_RCANCELFAIL", 0x13: "ESME_RREPLACEFAIL", 0x14: "ESME_RMSGQFUL",
    0x15: "ESME_RINVSERTYP", 0x33: "ESME_RINVNUMDESTS", 0x34: "ESME_RINVDLNAME",
    0x40: "ESME_RINVDESTFLAG", 0x42: "ESME_RINVSUBREP", 0x43: "ESME_RINVESMCLASS",
    0x44: "ESME_RCNTSUBDL", 0x45: "ESME_RSUBMITFAIL", 0x48: "ESME_RINVSRCTON",
    0x49: "ESME_RINVSRCNPI", 0x50: "ESME_RINVDSTTON", 0x51: "ESME_RINVDSTNPI",
    0x53: "ESME_RINVSYSTYP", 0x54: "ESME_RINVREPFLAG", 0x55: "ESME_RINVNUMMSGS",
    0x58: "ESME_RTHROTTLED", 0x61: "ESME_RINVSCHED", 0x62: "ESME_RINVEXPIRY",
    0x63: "ESME_RINVDFTMSGID", 0x64: "ESME_RX_T_APPN", 0x65: "ESME_RX_P_APPN",
    0x66: "ESME_RX_R_APPN", 0x67: "ESME_RQUERYFAIL", 0xC0: "ESME_RINVOPTPARSTREAM",
    0xC1: "ESME_ROPTPARNOTALLWD", 0xC2: "ESME_RINVPARLEN", 0xC3: "ESME_RMISSINGOPTPARAM",
    0xC4: "ESME_RINVOPTPARAMVAL", 0xFE: "ESME_RDELIVERYFAILURE", 0xFF: "ESME_RUNKNOWNERR",
}


def test_every_smpp_34_code_is_in_the_table_under_its_name() -> None:
    assert {code: TABLE[code].name for code in SMPP_34} == SMPP_34


@pytest.mark.parametrize(("status", "outcome"), [
    (0x00, Outcome.OK),
    (0x58, Outcome.THROTTLE), (0x14, Outcome.THROTTLE),
    (0x08, Outcome.TRANSIENT), (0x45, Outcome.TRANSIENT), (0x64, Outcome.TRANSIENT),
    (0xFF, Outcome.TRANSIENT),
    (0x0B, Outcome.PERMANENT), (0x0A, Outcome.PERMANENT), (0x01, Outcome.PERMANENT),
    (0x104, Outcome.PERMANENT), (0x43, Outcome.PERMANENT), (0x33, Outcome.PERMANENT),
    (0x65, Outcome.PERMANENT), (0x66, Outcome.PERMANENT), (0x48, Outcome.PERMANENT),
])
def test_outcomes_follow_the_meaning(status: int, outcome: Outcome) -> None:
    assert classify(status).outcome is outcome


@pytest.mark.parametrize("status", [0x400, 0x4AB, 0x4FF])
def test_vendor_specific_codes_are_transient(status: int) -> None:
    info = classify(status)
    assert (info.name, info.outcome, info.code) == (
        "vendor-specific", Outcome.TRANSIENT, "smpp_vendor_error")


@pytest.mark.parametrize("status", [0x09, 0x16, 0x68, 0x3FF, 0x500, 0xFFFFFFFF, -1])
def test_codes_outside_the_table_are_transient(status: int) -> None:
    assert classify(status).outcome is Outcome.TRANSIENT


def test_outcomes_give_the_dispatcher_verdicts() -> None:
    assert [o.verdict for o in Outcome] == [
        Verdict.SUBMITTED, Verdict.RETRY, Verdict.RETRY, Verdict.REJECTED]


def test_error_codes_are_unique_stable_snake_case() -> None:
    codes = [info.code for info in TABLE.values()]
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"smpp_[a-z0-9_]+", code) for code in codes)
    assert TABLE[0x0B].code == "smpp_invalid_destination"


def test_error_info_names_the_code_in_hex_and_its_meaning() -> None:
    info = error_info(0x0B)
    assert info is not None
    assert info.code == "smpp_invalid_destination"
    assert info.text == "ESME_RINVDSTADR (0x0000000B): Invalid destination address"
    assert error_info(0) is None
    vendor = error_info(0x401)
    assert vendor is not None
    assert "0x00000401" in vendor.text


def test_docs_show_exactly_the_table_the_code_uses() -> None:
    doc = DOC.read_text("utf-8")
    section = doc.split("## Command status table", 1)[1].split("\n## ", 1)[0]
    assert markdown_table() in section
    for code, info in TABLE.items():
        assert f"| 0x{code:08X} | {info.name} | {info.outcome} |" in section
