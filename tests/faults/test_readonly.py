"""A spool that turns read-only under a running hub (SQLite refusing every write, as for a
read-only data directory: see tests/integration/test_readonly_data.py for why it is made
so): REST, XML (native and each dialect) and SMTP each say, in their own terms, that
the spool is read-only and to retry, logged once rather than per request; once writable
again the same hub accepts."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.faults.conftest import MakeHub, assert_said_not_dumped, open_account
from tests.faults.probes import Probes, is_temporary
from tests.integration.test_readonly_data import ReadOnly
from tests.polling import eventually

READ_ONLY = "the spool is read-only"


@pytest.fixture
def probes(make_hub: MakeHub) -> Probes:
    return open_account(make_hub())


@pytest.fixture
def read_only(probes: Probes) -> Iterator[ReadOnly]:
    switch = ReadOnly(probes.hub)
    yield switch
    switch.close()


def test_a_read_only_spool_is_named_in_each_protocol_and_the_hub_recovers(
        probes: Probes, read_only: ReadOnly, caplog: pytest.LogCaptureFixture) -> None:
    probes.rest("warm the key cache")
    read_only.on()
    assert probes.readyz().json()["reason"] == "the spool cannot be written"
    for _ in range(3):  # clients retry: each is told why, the log says it once
        rest = probes.rest("while read-only")
        assert is_temporary(rest, READ_ONLY), rest.text
        problem = rest.json()
        assert (problem["code"], problem["detail"]) == ("unavailable",
                                                        f"{READ_ONLY}; try again later")
        xml = probes.xml("while read-only")
        assert is_temporary(xml, READ_ONLY), xml.text
        for dialect, answer in probes.dialects("while read-only").items():
            assert is_temporary(answer, READ_ONLY), (dialect, answer.text)
        code, words = probes.mail("while read-only")
        assert code == 451 and words.startswith("4.3.0") and READ_ONLY in words, words
    said = [r for r in caplog.records if getattr(r, "action", None) in ("intake", "smtp-data")]
    assert [r.levelno for r in said] == [logging.WARNING] * 2, [r.getMessage() for r in said]

    read_only.off()
    eventually(lambda: probes.readyz().status_code == 200, 10, what="ready again")
    assert probes.rest("after").status_code == 202
    assert probes.xml("after").status_code == 200
    assert {d: a.status_code for d, a in probes.dialects("after").items()} == {
        "winsms": 200, "clickatell": 200, "kannel": 202, "kannel-get": 202}
    assert probes.mail("after")[0] == 250
    probes.all_delivered()
    assert_said_not_dumped(caplog)
