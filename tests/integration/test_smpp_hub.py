"""A whole hub with an SMPP carrier from hub.toml: a REST message goes out over SMPP and
is delivered by the SMSC's receipt; `smshub carriers` and /metrics show the bind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import uvloop

from hub.cli import main
from hub.config import CarrierTable
from tests.hubthread import HubThread
from tests.integration.conftest import test_config as hub_config
from tests.polling import eventually
from tests.smsc.scripted import ScriptedSmsc
from tests.smsc.thread import smsc_in_thread


@pytest.fixture
def smsc() -> Iterator[ScriptedSmsc]:
    with smsc_in_thread(receipt_mode="after", id_style="padded") as server:
        yield server


@pytest.mark.keeps_process_fds  # uvloop keeps its first loop's self-pipe open
def test_a_rest_message_goes_out_over_smpp_and_the_receipt_delivers_it(
    smsc: ScriptedSmsc, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    table = CarrierTable("smsc", "smpp", {"host": "127.0.0.1", "port": smsc.port,
                                          "system_id": "hub", "password": "secret",
                                          "window": 10}, "test")
    base = hub_config(tmp_path / "hub", routing={"default_carrier": "smsc"})
    # On uvloop, as `smshub serve` runs: its transports are not asyncio's classes.
    hub = HubThread(replace(base, carriers={"smsc": table}),
                    loop_factory=uvloop.new_event_loop).start()
    try:
        key = hub.account("acme", credits="10", price="0.25", sender_ids=("ACME",))
        with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {key}"}) as c:
            r = c.post("/v1/messages", json={"to": "082 123 4567", "text": "Hello over SMPP",
                                             "from": "ACME"})
            assert r.status_code == 202, r.text
            mid = r.json()["id"]

            def delivered() -> dict[str, object] | None:
                body: dict[str, object] = c.get(f"/v1/messages/{mid}").json()
                return body if body["status"] == "delivered" else None

            body = eventually(delivered, what="delivered")
            assert body["carrier"] == "smsc"
            metrics = c.get("/metrics").text
        [sent] = smsc.submits
        assert (sent.dest_addr, sent.source_addr, sent.source_ton) == ("27821234567", "ACME", 5)
        assert sent.short_message == b"Hello over SMPP"
        assert 'smshub_carrier{carrier="smsc",figure="binds_up"} 1.0' in metrics
        assert 'smshub_carrier{carrier="smsc",figure="up"} 1.0' in metrics

        toml = tmp_path / "hub.toml"
        toml.write_text(
            f'[http]\nport = {hub.hub.http_port}\n[hub]\ndata_dir = "{tmp_path / "hub"}"\n'
            f'[carriers.smsc]\ntype = "smpp"\nhost = "127.0.0.1"\nport = {smsc.port}\n'
            'system_id = "hub"\nprice_per_segment = 0.12\n')
        assert main(["--config", str(toml), "carriers", "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["error"] is None
        assert shown["carriers"]["smsc"]["binds_up"] == 1
        assert shown["carriers"]["smsc"]["submitted"] == 1
        assert shown["carriers"]["simulator"]["up"] == 1

        assert main(["--config", str(toml), "carriers", "--costs", "--json"]) == 0
        costs = json.loads(capsys.readouterr().out)
        assert costs["carriers"] == [{"carrier": "smsc", "messages": 1, "segments": 1,
                                      "price_per_segment": "0.12", "cost": "0.12"}]
        assert costs["total"] == "0.12"
    finally:
        hub.stop()
