"""`smshub account pushes NAME` through hub.cli.main: an account's XML and Clickatell
push URLs set, shown and turned off; a URL of the hub's own networks refused, as a
webhook endpoint's is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.clirun import Run, hub_cli

ALLOW_LOOPBACK = '[webhooks]\nallow_networks = ["127.0.0.1/32"]\n'


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Run:
    """cli(*argv) -> (exit code, parsed --json output or text, stderr)."""
    run = hub_cli(tmp_path, monkeypatch, capsys, ALLOW_LOOPBACK)
    assert run("account", "create", "acme", "--credits", "10")[0] == 0
    return run


def test_push_urls_are_set_shown_and_turned_off(cli: Any) -> None:
    code, shown, _ = cli("account", "pushes", "acme", "--xml", "http://127.0.0.1:9/dr",
                         "--json")
    assert (code, shown) == (0, {"account": "acme", "xml": "http://127.0.0.1:9/dr",
                                 "clickatell": None})
    cli("account", "pushes", "acme", "--clickatell", "http://127.0.0.1:9/cb")
    code, text, _ = cli("account", "pushes", "acme")
    assert text == "acme: xml http://127.0.0.1:9/dr\nacme: clickatell http://127.0.0.1:9/cb\n"
    cli("account", "pushes", "acme", "--xml", "off")
    assert cli("account", "pushes", "acme", "--json")[1]["xml"] is None


@pytest.mark.parametrize("url", ["http://10.0.0.1/dr", "http://169.254.169.254/",
                                 "ftp://127.0.0.1/", "http://user:pw@127.0.0.1/"])
def test_a_url_the_hub_may_not_call_is_refused(cli: Any, url: str) -> None:
    code, _, err = cli("account", "pushes", "acme", "--clickatell", url)
    assert code == 2 and err.startswith("smshub: ")
    assert cli("account", "pushes", "acme", "--json")[1]["clickatell"] is None
