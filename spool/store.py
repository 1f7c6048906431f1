"""SqlSpool: the hub's Spool port on SQLAlchemy Core, over SQLite or PostgreSQL. It owns
the schema calls and the reads, and hands the rest to the module that does each job."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text

from hub.batches import Batch
from hub.consents import Consent
from hub.idempotency import Answer, KeyClaim, KeyRequest
from hub.mail import Mail, MailSettings, NoticeKind
from hub.model import (
    Accepted,
    Account,
    CallbackKind,
    CarrierUsage,
    Claim,
    DeliveryReport,
    Event,
    Inbound,
    InboundPart,
    Message,
    NewInbound,
    NewMessage,
    NewOutboxItem,
    OutboxItem,
    OutboxResult,
    Status,
    Totals,
    Transition,
    UnknownOutcome,
    WebhookEndpoint,
    WriterFigures,
)
from hub.nodes import NodeInfo, NodeRecord
from hub.optouts import NewOptOut, OptOut, OptOutSettings
from hub.ports import (
    AccountDeletion,
    ApiKeyInfo,
    ApiKeyRecord,
    CommitSeal,
    Committed,
    DayUsage,
    MessageFilter,
    ReportDeadline,
    SchemaState,
)
from hub.privacy import Holdings, PrivacyEntry
from spool import (
    acceptance,
    accounts,
    admin,
    audit,
    batch_leases,
    batches,
    consents,
    idempotency,
    inbound,
    inbound_parts,
    lookups,
    mail,
    migrate,
    nodes,
    optouts,
    outbox,
    privacy,
    pushes,
    queue,
    receipts,
    usage,
    webhooks,
)
from spool.engine import Database
from spool.operators import OperatorRows
from spool.reports import apply_held, purge_held
from spool.reports import apply_reports as _apply_reports
from spool.rows import event_from_row, message_from_row
from spool.sessions import SessionRows
from spool.tables import CLAIMABLE_SQL, message_events, messages


class SqlSpool(OperatorRows, SessionRows):
    """Durable storage of accounts, messages and their history."""

    def __init__(self, url: str, *, busy_timeout: float = 10.0) -> None:
        self.db = Database(url, busy_timeout)

    # --- schema ---------------------------------------------------------------

    def schema_state(self) -> SchemaState:
        return migrate.schema_state(self.db)

    def upgrade(self) -> None:
        migrate.upgrade(self.db)

    def ping(self) -> None:
        with self.db.read() as conn:
            conn.execute(select(1))

    def check_writable(self) -> None:
        self.db.probe_write()

    def close(self) -> None:
        self.db.dispose()

    # --- accounts -------------------------------------------------------------

    def create_account(
        self,
        name: str,
        credits: Decimal,
        price_per_segment: Decimal,
        sender_ids: Sequence[str],
    ) -> Account:
        return accounts.create_account(self.db, name, credits, price_per_segment, sender_ids)

    def get_account(self, name: str) -> Account:
        return accounts.get_account(self.db, name)

    def get_account_by_id(self, account_id: int) -> Account:
        return accounts.get_account_by_id(self.db, account_id)

    def session_account(self, account_id: int) -> tuple[Account, str]:
        return accounts.session_account(self.db, account_id)

    def list_accounts(self) -> list[Account]:
        return accounts.list_accounts(self.db)

    def add_credits(self, name: str, amount: Decimal) -> Account:
        return accounts.add_credits(self.db, name, amount)

    def set_password_hash(self, name: str, password_hash: str) -> None:
        accounts.set_password_hash(self.db, name, password_hash)

    def password_hash(self, name: str) -> tuple[Account, str] | None:
        return accounts.password_hash(self.db, name)

    def add_api_key(self, name: str, key_id: str, digest: bytes,
                    expires_at: datetime | None = None) -> None:
        accounts.add_api_key(self.db, name, key_id, digest, expires_at)

    def api_key(self, key_id: str) -> ApiKeyRecord | None:
        return accounts.api_key(self.db, key_id)

    # --- operators -----------------------------------------------------------------

    def api_keys(self, name: str) -> list[ApiKeyInfo]:
        return admin.list_api_keys(self.db, name)

    def revoke_api_key(self, name: str, key_id: str, now: datetime) -> ApiKeyInfo:
        return admin.revoke_api_key(self.db, name, key_id, now)

    def set_api_key_expiry(self, name: str, key_id: str,
                           expires_at: datetime | None) -> ApiKeyInfo:
        return admin.set_api_key_expiry(self.db, name, key_id, expires_at)

    def set_enabled(self, name: str, enabled: bool) -> Account:
        return admin.set_enabled(self.db, name, enabled)

    def delete_account(self, name: str, cancel_queued: bool, now: datetime) -> AccountDeletion:
        return admin.delete_account(self.db, name, cancel_queued, now)

    def list_messages(self, query: MessageFilter) -> list[Message]:
        return admin.list_messages(self.db, query)

    def cancel(self, ids: Sequence[str], account_id: int | None, now: datetime) -> int:
        return queue.cancel(self.db, ids, account_id, now)

    # --- intake and reading -----------------------------------------------------

    def accept(self, group: Sequence[NewMessage],
               seals: Sequence[tuple[int, CommitSeal]] = ()) -> list[Committed]:
        return acceptance.accept(self.db, group, seals)

    def writer_turn(self) -> AbstractContextManager[None]:
        return self.db.turn()

    def writer_figures(self) -> WriterFigures:
        return self.db.writer_figures()

    def get_message(self, message_id: str) -> Message | None:
        with self.db.read() as conn:
            row = conn.execute(select(messages).where(messages.c.id == message_id)).first()
        return None if row is None else message_from_row(row._mapping)

    def find_by_client_ref(
        self, account_id: int, client_refs: Sequence[str]
    ) -> dict[str, Message]:
        return lookups.find_by_client_ref(self.db, account_id, client_refs)

    def events(self, message_id: str) -> list[Event]:
        query = (
            select(message_events)
            .where(message_events.c.message_id == message_id)
            .order_by(message_events.c.id)
        )
        with self.db.read() as conn:
            return [event_from_row(row) for row in conn.execute(query).mappings()]

    def totals(self, now: datetime) -> Totals:
        by_status = select(messages.c.status, func.count()).group_by(messages.c.status)
        due = (
            select(func.count())
            .select_from(messages)
            .where(text(CLAIMABLE_SQL), messages.c.due_at <= now)
        )
        with self.db.read() as conn:
            counts = {Status(status): n for status, n in conn.execute(by_status)}
            return Totals(by_status=counts, due=conn.execute(due).scalar_one())

    def carrier_usage(self, since: datetime, until: datetime) -> list[CarrierUsage]:
        # A report, not a hot path: it reads the period's rows without an index.
        m = messages
        query = (select(m.c.carrier, func.count(), func.sum(m.c.segments))
                 .where(m.c.carrier.is_not(None), m.c.submitted_at >= since,
                        m.c.submitted_at < until)
                 .group_by(m.c.carrier).order_by(m.c.carrier))
        with self.db.read() as conn:
            return [CarrierUsage(carrier, int(n), int(segments or 0))
                    for carrier, n, segments in conn.execute(query)]

    def usage_by_day(self, account_id: int, since: datetime, until: datetime,
                     offset: timedelta) -> list[DayUsage]:
        return usage.usage_by_day(self.db, account_id, since, until, offset)

    # --- idempotency keys -------------------------------------------------------

    def claim_key(self, request: KeyRequest) -> KeyClaim:
        return idempotency.claim_key(self.db, request)

    def finish_key(self, account_id: int, key: str, token: str, answer: Answer) -> bool:
        return idempotency.finish_key(self.db, account_id, key, token, answer)

    def release_key(self, account_id: int, key: str, token: str) -> None:
        idempotency.release_key(self.db, account_id, key, token)

    def purge_keys(self, now: datetime) -> int:
        return idempotency.purge_keys(self.db, now)

    # --- queue ------------------------------------------------------------------

    def claim(self, owner: str, limit: int, lease_seconds: float, now: datetime) -> Claim:
        return queue.claim(self.db, owner, limit, lease_seconds, now)

    def record(self, token: str, transitions: Sequence[Transition], now: datetime) -> list[str]:
        """Apply transitions of messages still leased under `token`; return applied ids."""
        return queue.record(self.db, token, transitions, now)

    def apply_reports(
        self, reports: Sequence[DeliveryReport], now: datetime
    ) -> list[DeliveryReport]:
        """Apply delivery reports; return those whose message is not (yet) known."""
        return _apply_reports(self.db, reports, now)

    def settle(self, records: Sequence[tuple[str, Sequence[Transition]]],
               reports: Sequence[DeliveryReport], now: datetime) -> list[str]:
        """`record` for each (lease token, transitions), then `apply_reports`; returns
        the ids of the transitions applied."""
        return queue.settle(self.db, records, reports, now)

    def release(self, owner: str, now: datetime, *, after_crash: bool = False,
                unknown: UnknownOutcome = UnknownOutcome.RESEND) -> int:
        return queue.release(self.db, owner, now, after_crash=after_crash, unknown=unknown)

    def hold_unsent(self, token: str, unsent: Sequence[Message], now: datetime) -> int:
        return queue.hold_unsent(self.db, token, unsent, now)

    def recover_expired_leases(self, now: datetime, held: Collection[str] = (),
                               unknown: UnknownOutcome = UnknownOutcome.RESEND) -> int:
        return queue.recover_expired_leases(self.db, now, held, unknown)

    def expire_due(self, now: datetime) -> int:
        """Queued or scheduled messages past expires-at become expired (credit refunded)."""
        return queue.expire_due(self.db, now)

    def dead_letter(self, older_than: datetime, now: datetime) -> int:
        """Queued messages accepted before `older_than` fail (credit refunded)."""
        return queue.dead_letter(self.db, older_than, now)

    # --- parts of long replies --------------------------------------------------------

    def hold_inbound_part(self, part: InboundPart) -> tuple[str, datetime] | None:
        return inbound_parts.hold(self.db, part)

    def forget_inbound_parts(self, part: InboundPart) -> None:
        inbound_parts.forget(self.db, part)

    def purge_inbound_parts(self, held_before: datetime) -> int:
        return inbound_parts.purge(self.db, held_before)

    def purge_held_reports(self, held_before: datetime) -> int:
        return purge_held(self.db, held_before)

    def apply_held_reports(self, now: datetime) -> int:
        return apply_held(self.db, now)

    # --- reports still owed -----------------------------------------------------------

    def time_out_reports(self, deadline: ReportDeadline, now: datetime) -> int:
        return receipts.time_out(self.db, deadline, now)

    def awaiting_carriers(self) -> list[str]:
        return receipts.carriers(self.db)

    def awaiting_reports(self, carrier: str, after_id: str, limit: int) -> list[Message]:
        return receipts.awaiting(self.db, carrier, after_id, limit)

    def overdue_reports(
        self, deadline: ReportDeadline, after_id: str, limit: int
    ) -> list[Message]:
        return receipts.awaiting(self.db, deadline.carrier, after_id, limit, deadline)

    # --- inbound and the outbox -----------------------------------------------------

    def store_inbound(self, items: Sequence[NewInbound]) -> list[Inbound]:
        return inbound.store(self.db, items)

    def get_inbound(self, inbound_id: str) -> Inbound | None:
        return inbound.get(self.db, inbound_id)

    def list_inbound(self, account_id: int, since: datetime | None, limit: int) -> list[Inbound]:
        return inbound.for_account(self.db, account_id, since, limit)

    def inbound_page(self, account_id: int | None, since: datetime | None,
                     after: tuple[datetime, str] | None, limit: int) -> list[Inbound]:
        return inbound.page(self.db, account_id, since, after, limit)

    def unrouted_inbound(self, limit: int) -> list[Inbound]:
        return inbound.unrouted(self.db, limit)

    def route_inbound(
        self, inbound_ids: Sequence[str], items: Sequence[NewOutboxItem], now: datetime
    ) -> None:
        inbound.route(self.db, inbound_ids, items, now)

    def claim_outbox(
        self, channel: str, limit: int, lease_seconds: float, now: datetime, owner: str = "",
        exclude: Sequence[str] = (), held: Collection[str] = (),
    ) -> list[OutboxItem]:
        return outbox.claim(self.db, channel, limit, lease_seconds, now, owner, exclude,
                            held)

    def release_outbox(self, owner: str, now: datetime) -> int:
        return outbox.release(self.db, owner, now)

    def record_outbox(
        self, token: str, results: Sequence[OutboxResult], now: datetime
    ) -> list[str]:
        return outbox.record(self.db, token, results, now)

    def get_outbox(self, item_id: str) -> OutboxItem | None:
        return outbox.get(self.db, item_id)

    # --- webhook endpoints ---------------------------------------------------------

    def create_webhook(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        return webhooks.create(self.db, endpoint)

    def get_webhook(self, endpoint_id: str) -> WebhookEndpoint | None:
        return webhooks.get(self.db, endpoint_id)

    def list_webhooks(self, account_id: int | None) -> list[WebhookEndpoint]:
        return webhooks.list_for(self.db, account_id)

    def remove_webhook(self, endpoint_id: str, now: datetime) -> bool:
        return webhooks.remove(self.db, endpoint_id, now)

    def rotate_webhook_secret(self, endpoint_id: str, secret: str, overlap_until: datetime,
                              now: datetime) -> WebhookEndpoint | None:
        return webhooks.rotate(self.db, endpoint_id, secret, overlap_until, now)

    def enable_webhook(self, endpoint_id: str, enabled: bool, reason: str | None,
                       now: datetime) -> bool:
        return webhooks.set_enabled(self.db, endpoint_id, enabled, reason, now)

    def replay_webhook(self, endpoint_id: str, since: datetime | None, item_id: str | None,
                       now: datetime) -> int:
        return webhooks.replay(self.db, endpoint_id, since, item_id, now)

    def webhook_deliveries(self, endpoint_id: str, limit: int) -> list[dict[str, Any]]:
        return webhooks.deliveries(self.db, endpoint_id, limit)

    # --- batches (FTP drop files) -------------------------------------------------

    def create_batch(self, batch: Batch) -> None:
        batches.create_batch(self.db, batch)

    def update_batch(self, batch: Batch) -> None:
        batches.update_batch(self.db, batch)

    def get_batch(self, batch_id: str) -> Batch | None:
        return batches.get_batch(self.db, batch_id)

    def list_batches(self, account_id: int | None, limit: int) -> list[Batch]:
        return batches.list_batches(self.db, account_id, limit)

    def open_batches(self) -> list[Batch]:
        return batches.open_batches(self.db)

    def reporting_batches(self) -> list[Batch]:
        return batches.reporting_batches(self.db)

    def find_batch_by_content(
        self, account_id: int, sha256: str, since: datetime
    ) -> Batch | None:
        return batches.find_batch_by_content(self.db, account_id, sha256, since)

    def batch_status_counts(self, batch_id: str) -> dict[Status, int]:
        return batches.batch_status_counts(self.db, batch_id)

    def batch_messages(self, batch_id: str, after_id: str, limit: int) -> list[Message]:
        return batches.batch_messages(self.db, batch_id, after_id, limit)

    def batch_outcomes(self, batch_id: str, after_line: int) -> dict[int, Accepted]:
        return batches.batch_outcomes(self.db, batch_id, after_line)

    # --- which node works each open batch (spool/batch_leases.py) -----------------------

    def receive_batch(self, batch: Batch, node: str, until: datetime) -> bool:
        return batch_leases.receive_batch(self.db, batch, node, until)

    def settle_batch_content(self, batch: Batch, since: datetime | None) -> Batch | None:
        return batch_leases.settle_content(self.db, batch, since)

    def renew_batch_leases(self, node: str, until: datetime) -> list[str]:
        return batch_leases.renew(self.db, node, until)

    def keep_batch_lease(self, batch_id: str, node: str, until: datetime) -> bool:
        return batch_leases.keep(self.db, batch_id, node, until)

    def release_batch_leases(self, node: str) -> int:
        return batch_leases.release(self.db, node)

    def take_batches(self, node: str, now: datetime, until: datetime,
                     own: bool = False) -> list[Batch]:
        return batch_leases.take(self.db, node, now, until, own)

    def batch_holder(self, batch_id: str) -> str | None:
        return batch_leases.holder(self.db, batch_id)

    # --- email-to-SMS ---------------------------------------------------------------

    def get_mail_settings(self, account_id: int) -> MailSettings:
        return mail.get_settings(self.db, account_id)

    def save_mail_settings(self, settings: MailSettings) -> None:
        mail.save_settings(self.db, settings)

    def mail_sender_account(self, address: str) -> Account | None:
        return mail.sender_account(self.db, address)

    def create_mail(self, record: Mail) -> None:
        mail.create_mail(self.db, record)

    def create_mails(self, records: Sequence[Mail]) -> None:
        mail.create_mails(self.db, records)

    def mail_receipts_missing(self, after_id: str, before_id: str,
                              limit: int) -> list[Mail]:
        return mail.receipts_missing(self.db, after_id, before_id, limit)

    def queue_mail_receipt(self, mail_id: str, item: NewOutboxItem, now: datetime) -> bool:
        return mail.queue_receipt(self.db, mail_id, item, now)

    def finish_mail(self, mail_id: str, refused: Sequence[str],
                    notices: Sequence[tuple[NewOutboxItem, NoticeKind]],
                    now: datetime) -> None:
        mail.finish_mail(self.db, mail_id, refused, notices, now)

    def discard_mail(self, mail_id: str) -> bool:
        return mail.discard_mail(self.db, mail_id)

    def get_mail(self, mail_id: str) -> Mail | None:
        return mail.get_mail(self.db, mail_id)

    def mail_for_message(self, message_id: str) -> Mail | None:
        return mail.mail_for_message(self.db, message_id)

    def mail_notice(self, item_id: str) -> tuple[Mail, NoticeKind] | None:
        return mail.notice(self.db, item_id)

    def final_receipts_due(self, limit: int, settled_before: str) -> list[Mail]:
        return mail.final_receipts_due(self.db, limit, settled_before)

    def queue_final_receipt(self, mail_id: str, item: NewOutboxItem | None,
                            now: datetime) -> bool:
        return mail.queue_final_receipt(self.db, mail_id, item, now)

    # --- opt-outs --------------------------------------------------------------------

    def add_optout(self, new: NewOptOut) -> tuple[OptOut, bool]:
        return optouts.add(self.db, new)

    def add_optouts(self, entries: Sequence[NewOptOut]) -> int:
        return optouts.add_many(self.db, entries)

    def remove_optout(self, account_id: int | None, number: str) -> bool:
        return optouts.remove(self.db, account_id, number)

    def get_optout(self, account_id: int | None, number: str) -> OptOut | None:
        return optouts.get(self.db, account_id, number)

    def list_optouts(self, account_id: int | None, after_id: int,
                     limit: int) -> list[OptOut]:
        return optouts.page(self.db, account_id, after_id, limit)

    def optout_settings(self, account_id: int) -> OptOutSettings:
        return optouts.get_settings(self.db, account_id)

    def save_optout_settings(self, settings: OptOutSettings) -> None:
        optouts.save_settings(self.db, settings)

    def optout_confirmations_due(self, inbound_ids: Sequence[str]) -> list[OptOut]:
        return optouts.confirmations_due(self.db, inbound_ids)

    # --- consents (CPA regulation 4) and the audit export ------------------------------

    def add_consent(self, new: Consent) -> tuple[Consent, bool, int]:
        return consents.add(self.db, new)

    def remove_consent(self, account_id: int, number: str) -> bool:
        return consents.remove(self.db, account_id, number)

    def list_consents(self, account_id: int, after: str, limit: int) -> list[Consent]:
        return consents.listed(self.db, account_id, after, limit)

    def audit_trail(self, account_id: int, start: datetime, end: datetime, after_id: str,
                    limit: int) -> list[tuple[Message, list[Event]]]:
        return audit.trail(self.db, account_id, start, end, after_id, limit)

    # --- delivery-report pushes ----------------------------------------------------

    def account_push_urls(self, account_id: int) -> dict[CallbackKind, str]:
        return pushes.account_urls(self.db, account_id)

    def set_account_push_url(self, account_id: int, kind: CallbackKind, url: str | None,
                             now: datetime) -> None:
        pushes.set_account_url(self.db, account_id, kind, url, now)

    # --- privacy (POPIA, WASPA's per-account rule) -----------------------------------

    def purge_texts(self, kind: str, before: datetime, after: str,
                    limit: int) -> tuple[int, str | None]:
        return privacy.purge_texts(self.db, kind, before, after, limit)

    def purge_leftovers(self, before: datetime) -> dict[str, int]:
        return privacy.purge_leftovers(self.db, before)

    def record_privacy(self, at: datetime, action: str, subject: str | None, actor: str,
                       detail: dict[str, int]) -> None:
        privacy.record(self.db, at, action, subject, actor, detail)

    def privacy_log(self, limit: int) -> list[PrivacyEntry]:
        return privacy.log_entries(self.db, limit)

    def holdings(self, number: str) -> Holdings:
        return privacy.holdings(self.db, number)

    def erase_number(self, number: str, at: datetime, subject: str, actor: str,
                     also: Mapping[str, int] | None = None) -> dict[str, int]:
        return privacy.erase_number(self.db, number, at, subject, actor, also)

    def set_marketing_optout(self, account_name: str, rule: str) -> None:
        privacy.set_marketing_optout(self.db, account_name, rule)

    # --- nodes (hub/nodes.py) ------------------------------------------------------------

    def beat(self, info: NodeInfo, now: datetime) -> None:
        nodes.beat(self.db, info, now)

    def leave(self, info: NodeInfo) -> None:
        nodes.leave(self.db, info)

    def list_nodes(self) -> list[NodeRecord]:
        return nodes.listed(self.db)
