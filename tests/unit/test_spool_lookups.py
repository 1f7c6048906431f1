"""Finding messages by the customer's own client reference, on SQLite and PostgreSQL."""

from __future__ import annotations

from spool import SqlSpool
from tests.factories import make_account, new_message


def test_messages_are_found_by_client_ref_within_their_account_only(spool: SqlSpool) -> None:
    acme, other = make_account(spool), make_account(spool)
    spool.accept([new_message(acme, client_ref="order-1"), new_message(acme, client_ref="order-2"),
                  new_message(other, client_ref="order-3"), new_message(acme)])
    found = spool.find_by_client_ref(acme.id, ["order-1", "order-2", "order-3", "nope", "order-1"])
    assert sorted(found) == ["order-1", "order-2"]
    assert all(m.account_id == acme.id and m.client_ref == ref for ref, m in found.items())
    assert spool.find_by_client_ref(other.id, ["order-1"]) == {}


def test_client_ref_lookup_of_many_references_finds_them_all(spool: SqlSpool) -> None:
    acme = make_account(spool, credits="1000")
    refs = [f"ref-{i}" for i in range(1200)]
    spool.accept([new_message(acme, client_ref=r) for r in refs])
    assert len(spool.find_by_client_ref(acme.id, refs)) == 1200
    assert spool.find_by_client_ref(acme.id, []) == {}
