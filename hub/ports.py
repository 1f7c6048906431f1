"""Ports: the interfaces the core needs from the world. Adapters and the spool implement
them; the core imports only these Protocols, never an implementation.

The spool port is synchronous (SQLAlchemy underneath); the core calls it through one
seam, `hub.spoolcall.SpoolThreads`, so blocking work never runs on the event loop.
Carriers and report sinks are asynchronous.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from hub.audit import AuditStore
from hub.batches import Batch
from hub.consents import ConsentStore
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
    InboundMessage,
    InboundPart,
    Message,
    NewInbound,
    NewMessage,
    NewOutboxItem,
    OutboxItem,
    OutboxResult,
    Status,
    SubmitResult,
    Totals,
    Transition,
    UnknownOutcome,
    WebhookEndpoint,
    WriterFigures,
    record,
)
from hub.nodes import NodeStore
from hub.operators import AdminStore
from hub.optouts import NewOptOut, OptOut, OptOutSettings
from hub.privacy import PrivacyStore


class SchemaState(StrEnum):
    EMPTY = "empty"  # no tables at all: a first start may create them
    OUTDATED = "outdated"  # tables from an older version: `smshub db upgrade`
    CURRENT = "current"
    NEWER = "newer"  # written by a newer smshub: refuse to touch it


@record
class Committed:
    """The spool's answer for one NewMessage of an `accept` group."""

    message: NewMessage | None = None  # stored now
    duplicate_of: Message | None = None  # same account + client_ref already stored
    insufficient_credit: Decimal | None = None  # balance available when refused
    account_disabled: bool = False  # disabled or deleted since its credentials were read
    barred: str | None = None  # hub.optouts.OPTED_OUT or BLOCKED: its recipient is on a list


@dataclass(frozen=True, slots=True)
class CommitSeal:
    """An idempotency key completed by `accept` in the transaction of the `count`
    messages that follow it in the group: `answer` makes the kept answer from their
    results. KeyLost if the key is no longer held under `token`."""

    account_id: int
    key: str
    token: str
    count: int
    answer: Callable[[Sequence[Committed]], Answer]


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    account: Account
    digest: bytes
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key as operators see it: its id (the part after `shk_`), never the key."""
    key_id: str
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccountDeletion:
    """What `delete_account` did. Deleted: the tombstone, the keys it revoked, the unsent
    messages it cancelled and the credit it refunded for them. Not deleted (nothing
    changed): how many messages are unsent, and how many being sent right now."""
    account: Account
    deleted: bool
    keys_revoked: int = 0
    cancelled: int = 0
    refunded: Decimal = Decimal(0)
    unsent: int = 0
    sending: int = 0


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """Which messages `smshub message list` and `GET /v1/messages` show: those matching
    every condition given, newest first; `before_id` pages on (ids sort by acceptance)."""
    account_id: int | None = None
    status: Status | None = None
    since: datetime | None = None
    limit: int = 50
    statuses: tuple[Status, ...] = ()  # any of these (with `status`, if given)
    until: datetime | None = None  # accepted before
    batch_id: str | None = None
    recipient: str | None = None
    client_ref: str | None = None
    before_id: str | None = None


@dataclass(frozen=True, slots=True)
class DayUsage:
    """One day's messages of an account (in the hub's zone): how many were accepted,
    their segments, and the credit they cost net of refunds."""
    day: str  # YYYY-MM-DD
    messages: int
    segments: int
    credits: Decimal


@dataclass(frozen=True, slots=True)
class ReportDeadline:
    """When one carrier's submitted messages stop waiting for a final delivery report,
    as cut-offs at one moment (`hub.policies.ReceiptTimeout` makes them): a message with
    a validity is overdue once it ended at or before `expired_by`, any other once it was
    submitted at or before `submitted_by`. With no `expired_by`, validity is ignored."""

    carrier: str
    submitted_by: datetime
    expired_by: datetime | None = None


# --- The spool's roles ------------------------------------------------------------------
# Each part of the hub is handed the spool as the role(s) it uses, through the one seam
# (`SpoolThreads[Role]`), so mypy checks who may touch what; `Spool` is all of them, as
# spool/ implements it.


class SchemaAdmin(Protocol):
    """The spool's schema and connection: checked at start, upgraded by the CLI."""

    def schema_state(self) -> SchemaState: ...
    def upgrade(self) -> None: ...
    def ping(self) -> None: ...
    def check_writable(self) -> None:
        """Raise TemporaryFailure unless the spool takes writes; cheap, leaves nothing."""
        ...
    def close(self) -> None: ...


class AccountStore(Protocol):
    """Accounts, their credits, passwords and API keys."""

    def create_account(
        self,
        name: str,
        credits: Decimal,
        price_per_segment: Decimal,
        sender_ids: Sequence[str],
    ) -> Account: ...
    def get_account(self, name: str) -> Account: ...
    def get_account_by_id(self, account_id: int) -> Account: ...
    def session_account(self, account_id: int) -> tuple[Account, str]: ...
    def list_accounts(self) -> list[Account]: ...
    def add_credits(self, name: str, amount: Decimal) -> Account: ...
    def set_password_hash(self, name: str, password_hash: str) -> None: ...
    def password_hash(self, name: str) -> tuple[Account, str] | None: ...
    def add_api_key(self, name: str, key_id: str, digest: bytes,
                    expires_at: datetime | None = None) -> None: ...
    def api_key(self, key_id: str) -> ApiKeyRecord | None: ...
    # Clickatell's session ids, by a digest of each (spool/sessions.py).
    def open_dialect_session(self, digest: str, account_id: int, until: datetime,
                             now: datetime) -> None: ...
    def dialect_session(self, digest: str, now: datetime) -> tuple[int, datetime] | None: ...
    def extend_dialect_session(self, digest: str, until: datetime, now: datetime) -> bool: ...



class OperatorStore(Protocol):
    """What operators do from the CLI: API keys listed, revoked and given an expiry,
    accounts disabled, enabled and deleted, messages listed and cancelled (unsent ones
    only, credit refunded)."""

    def api_keys(self, name: str) -> list[ApiKeyInfo]: ...
    def revoke_api_key(self, name: str, key_id: str, now: datetime) -> ApiKeyInfo: ...
    def set_api_key_expiry(self, name: str, key_id: str,
                           expires_at: datetime | None) -> ApiKeyInfo: ...
    def set_enabled(self, name: str, enabled: bool) -> Account: ...
    def delete_account(self, name: str, cancel_queued: bool, now: datetime) -> AccountDeletion:
        """Tombstone the account (disabled, keys revoked, password and mail senders
        removed, history kept), all at once or not at all: not while it has unsent
        messages, unless `cancel_queued` cancels them, nor while any is being sent."""
        ...
    def list_messages(self, query: MessageFilter) -> list[Message]: ...
    def cancel(self, ids: Sequence[str], account_id: int | None, now: datetime) -> int: ...


class WriterTurn(Protocol):
    """Part of the roles whose writes come in groups."""

    def writer_turn(self) -> AbstractContextManager[None]:
        """This process's turn to write, held across several writes (re-entrant: each
        write inside takes it again at no cost): a group committer takes its group
        once it has the turn (hub.groupcommit.GroupCommitter)."""
        ...

    def writer_figures(self) -> WriterFigures:
        """This process's turns so far, and the time spent waiting for and holding
        them (/metrics)."""
        ...


class MessageStore(WriterTurn, Protocol):
    """Messages in (intake's one transaction per group) and read back."""

    # intake: one transaction for the whole group, credits reserved atomically, with
    # the idempotency keys of the requests whose messages these are (`seals`: each with
    # the index of its first message)
    def accept(self, group: Sequence[NewMessage],
               seals: Sequence[tuple[int, CommitSeal]] = ()) -> list[Committed]: ...

    # reading
    def get_message(self, message_id: str) -> Message | None: ...
    def find_by_client_ref(
        self, account_id: int, client_refs: Sequence[str]
    ) -> dict[str, Message]:
        """The account's messages with these client references, keyed by reference."""
        ...

    def events(self, message_id: str) -> list[Event]: ...
    def totals(self, now: datetime) -> Totals: ...
    def carrier_usage(self, since: datetime, until: datetime) -> list[CarrierUsage]:
        """Messages and segments each carrier accepted (submitted) in [since, until)."""
        ...
    def usage_by_day(self, account_id: int, since: datetime, until: datetime,
                     offset: timedelta) -> list[DayUsage]:
        """The account's messages accepted in [since, until) by day, days starting at
        midnight `offset` from UTC; days without messages left out."""
        ...



class MessageQueue(WriterTurn, Protocol):
    """The dispatcher's side: claims under leases, outcomes, reports, upkeep."""

    def claim(self, owner: str, limit: int, lease_seconds: float, now: datetime) -> Claim: ...
    def record(self, token: str, transitions: Sequence[Transition], now: datetime) -> list[str]:
        """Apply transitions of messages still leased under `token`; return applied ids."""
        ...

    def apply_reports(
        self, reports: Sequence[DeliveryReport], now: datetime
    ) -> list[DeliveryReport]:
        """Apply delivery reports; return those whose message is not (yet) known."""
        ...

    def settle(self, records: Sequence[tuple[str, Sequence[Transition]]],
               reports: Sequence[DeliveryReport], now: datetime) -> list[str]:
        """`record` for each (lease token, transitions), then `apply_reports`, in as few
        transactions as the backend allows; returns the ids of the transitions applied
        (unmatched reports are held, as by apply_reports)."""
        ...

    def release(self, owner: str, now: datetime, *, after_crash: bool = False,
                unknown: UnknownOutcome = UnknownOutcome.RESEND) -> int:
        """Put every message leased by `owner` back in the queue: at a clean stop, as
        never sent; `after_crash` (taken back at the node's start), as of unknown
        outcome, sent again or failed as `unknown` says (P7)."""
        ...

    def hold_unsent(self, token: str, unsent: Sequence[Message], now: datetime) -> int:
        """Marketing messages still leased under `token` that their carrier did not send
        because direct-marketing hours closed first (hub.cpa.too_late): held until the
        next opening as a claim after closing holds them, the attempt not counted."""
        ...

    def recover_expired_leases(self, now: datetime, held: Collection[str] = (),
                               unknown: UnknownOutcome = UnknownOutcome.RESEND) -> int:
        """Requeue messages whose lease ran out before `now`, except those under the
        lease tokens in `held` (still being worked on by this node's dispatcher)."""
        ...

    def expire_due(self, now: datetime) -> int:
        """Queued or scheduled messages past expires-at become expired (credit refunded)."""
        ...

    def dead_letter(self, older_than: datetime, now: datetime) -> int:
        """Queued messages accepted before `older_than` fail (credit refunded)."""
        ...

    def apply_held_reports(self, now: datetime) -> int:
        """Apply held delivery reports whose message is now recorded; return how many."""
        ...

    def purge_held_reports(self, held_before: datetime) -> int:
        """Drop delivery reports held since before `held_before` that never matched a
        message (unknown ids); return how many."""
        ...

    def time_out_reports(self, deadline: ReportDeadline, now: datetime) -> int:
        """Submitted messages past `deadline` with no final report fail as
        `no_delivery_report` (credit kept: the carrier took them); idempotent."""
        ...


class ReceiptStore(Protocol):
    """Messages carriers took (status submitted) and still owe a final report for: a
    carrier re-derives the reports it owes after a restart; upkeep asks about overdue ones."""

    def awaiting_carriers(self) -> list[str]:
        """The carriers that hold submitted messages."""
        ...

    def awaiting_reports(self, carrier: str, after_id: str, limit: int) -> list[Message]:
        """One page, in id order after `after_id` ("" first), of the messages submitted to
        `carrier` with no final report yet."""
        ...

    def overdue_reports(
        self, deadline: ReportDeadline, after_id: str, limit: int
    ) -> list[Message]:
        """One page, as `awaiting_reports`, of those past `deadline`."""
        ...



class InboundPartStore(Protocol):
    """Parts of long replies, held durably so each part can be acknowledged to the carrier
    as soon as it is committed, and reassembled whatever the order or a restart between."""

    def hold_inbound_part(self, part: InboundPart) -> tuple[str, datetime] | None:
        """Commit one part (a redelivered one is kept once); when it completes its set,
        return the whole text and when the set's first part came."""
        ...

    def forget_inbound_parts(self, part: InboundPart) -> None:
        """Drop the parts of `part`'s set once the whole message is committed."""
        ...

    def purge_inbound_parts(self, held_before: datetime) -> int:
        """Drop sets still incomplete since before `held_before`; return how many parts."""
        ...


class BatchStore(Protocol):
    """Batch files (the FTP drop); their messages carry the batch id."""

    def create_batch(self, batch: Batch) -> None: ...
    def update_batch(self, batch: Batch) -> None:
        """Store a batch's counters, state, format, finish time and report mark."""
        ...

    def get_batch(self, batch_id: str) -> Batch | None: ...
    def list_batches(self, account_id: int | None, limit: int) -> list[Batch]: ...
    def open_batches(self) -> list[Batch]:
        """Batches still processing or waiting for their messages to become final."""
        ...

    def reporting_batches(self) -> list[Batch]:
        """Accepted and failed batches whose delivery-report file is not final yet."""
        ...

    def find_batch_by_content(
        self, account_id: int, sha256: str, since: datetime
    ) -> Batch | None:
        """The earliest non-duplicate batch of the account with this content since then."""
        ...

    def batch_status_counts(self, batch_id: str) -> dict[Status, int]: ...
    def batch_messages(self, batch_id: str, after_id: str, limit: int) -> list[Message]:
        """One page of a batch's messages in id order after `after_id` ("" first)."""
        ...

    def batch_outcomes(self, batch_id: str, after_line: int) -> dict[int, Accepted]:
        """The accepted outcomes of the batch's rows after `after_line`, by line."""
        ...

    # Which node works each open batch (several nodes, docs/nodes.md): a lease per batch.
    def receive_batch(self, batch: Batch, node: str, until: datetime) -> bool:
        """Record an upload just claimed, leased to `node`, before its 226; False if a
        batch of that id exists already."""
        ...

    def settle_batch_content(self, batch: Batch, since: datetime | None) -> Batch | None:
        """Store the batch's hash; mark it a duplicate of, and return, the earliest batch
        of the account with that content since then (once, cluster-wide)."""
        ...

    def renew_batch_leases(self, node: str, until: datetime) -> list[str]:
        """Extend the node's leases of batches still open; the ids it holds."""
        ...

    def keep_batch_lease(self, batch_id: str, node: str, until: datetime) -> bool:
        """Extend one lease; False once another node has taken the batch."""
        ...

    def release_batch_leases(self, node: str) -> int:
        """Let the node's batches go (a clean stop), for another node to take at once."""
        ...

    def take_batches(self, node: str, now: datetime, until: datetime,
                     own: bool = False) -> list[Batch]:
        """Lease to `node` the open batches no live node holds (with `own`, also those
        leased in its own name); the batches taken."""
        ...

    def batch_holder(self, batch_id: str) -> str | None: ...



class InboundStore(Protocol):
    """Inbound messages: stored, linked to what they answer, routed once."""

    def store_inbound(self, items: Sequence[NewInbound]) -> list[Inbound]:
        """Commit inbound messages, each linked to the latest message sent to its sender;
        one a carrier redelivers (same carrier id) returns the stored record."""
        ...

    def get_inbound(self, inbound_id: str) -> Inbound | None: ...
    def list_inbound(
        self, account_id: int, since: datetime | None, limit: int
    ) -> list[Inbound]: ...
    def inbound_page(self, account_id: int | None, since: datetime | None,
                     after: tuple[datetime, str] | None, limit: int) -> list[Inbound]:
        """One page of inbound messages (one account's, or every one for None) in the
        order they were received, after the one at `after` (received_at, id)."""
        ...

    def unrouted_inbound(self, limit: int) -> list[Inbound]: ...
    def route_inbound(
        self, inbound_ids: Sequence[str], items: Sequence[NewOutboxItem], now: datetime
    ) -> None:
        """Mark inbound messages routed and queue their outbox items, atomically."""
        ...



class OutboxStore(Protocol):
    """What the hub owes customers (mails now, webhooks next), claimed and recorded."""

    def claim_outbox(
        self, channel: str, limit: int, lease_seconds: float, now: datetime, owner: str = "",
        exclude: Sequence[str] = (), held: Collection[str] = (),
    ) -> list[OutboxItem]:
        """Lease due items of one channel (and items whose lease ran out, except those
        under the lease tokens in `held`: the caller is still at work on them) to `owner`,
        none going to a target (endpoint id, else address) named in `exclude`."""
        ...

    def release_outbox(self, owner: str, now: datetime) -> int:
        """Make due again what `owner` held when it stopped; returns how many."""
        ...

    def record_outbox(
        self, token: str, results: Sequence[OutboxResult], now: datetime
    ) -> list[str]: ...
    def get_outbox(self, item_id: str) -> OutboxItem | None: ...



class IdempotencyStore(Protocol):
    """Idempotency keys of the JSON API's POSTs: claimed, answered, released, purged."""

    def claim_key(self, request: KeyRequest) -> KeyClaim:
        """Hold the account's key for this request, or say why not (answered before,
        still running, used for another request). An expired record counts as none."""
        ...

    def finish_key(self, account_id: int, key: str, token: str, answer: Answer) -> bool:
        """Keep the answer of a key held under `token`; False if it is no longer held."""
        ...

    def release_key(self, account_id: int, key: str, token: str) -> None:
        """Give up a held key unanswered (the request failed for now): it may run again."""
        ...

    def purge_keys(self, now: datetime) -> int:
        """Drop the records whose window is over; returns how many."""
        ...


class WebhookStore(Protocol):
    """Webhook endpoints (adapters/webhooks delivers their events; the REST API and the
    CLI manage them)."""

    def create_webhook(self, endpoint: WebhookEndpoint) -> WebhookEndpoint: ...
    def get_webhook(self, endpoint_id: str) -> WebhookEndpoint | None: ...
    def list_webhooks(self, account_id: int | None) -> list[WebhookEndpoint]:
        """One account's endpoints, or all (None)."""
        ...

    def remove_webhook(self, endpoint_id: str, now: datetime) -> bool:
        """Delete it; what it was still owed is given up."""
        ...

    def rotate_webhook_secret(self, endpoint_id: str, secret: str, overlap_until: datetime,
                              now: datetime) -> WebhookEndpoint | None:
        """A new secret; the old one signs beside it until `overlap_until`."""
        ...

    def enable_webhook(self, endpoint_id: str, enabled: bool, reason: str | None,
                       now: datetime) -> bool: ...
    def replay_webhook(self, endpoint_id: str, since: datetime | None, item_id: str | None,
                       now: datetime) -> int:
        """Queue settled events again (same ids); returns how many."""
        ...

    def webhook_deliveries(self, endpoint_id: str, limit: int) -> list[dict[str, Any]]: ...


class MailStore(Protocol):
    """Email-to-SMS (adapters/smtp): settings, accepted mails, receipts and replies."""

    def get_mail_settings(self, account_id: int) -> MailSettings: ...
    def save_mail_settings(self, settings: MailSettings) -> None: ...
    def mail_sender_account(self, address: str) -> Account | None:
        """The account whose allow-list has this address or its domain."""
        ...

    def create_mail(self, mail: Mail) -> None: ...
    def create_mails(self, mails: Sequence[Mail]) -> None: ...
    def mail_receipts_missing(self, after_id: str, before_id: str,
                              limit: int) -> list[Mail]:
        """Mails (ids in [after_id, before_id)) whose SMS are committed but whose
        receipt was never queued: the listener stopped in between."""
        ...

    def queue_mail_receipt(self, mail_id: str, item: NewOutboxItem, now: datetime) -> bool:
        """Queue the receipt unless one is queued already (then False)."""
        ...

    def finish_mail(self, mail_id: str, refused: Sequence[str],
                    notices: Sequence[tuple[NewOutboxItem, NoticeKind]],
                    now: datetime) -> None:
        """Record refused recipients and queue the mail's receipt, atomically."""
        ...

    def discard_mail(self, mail_id: str) -> bool:
        """Remove the record of a mail whose intake failed, unless it has SMS."""
        ...

    def get_mail(self, mail_id: str) -> Mail | None: ...
    def mail_for_message(self, message_id: str) -> Mail | None: ...
    def mail_notice(self, item_id: str) -> tuple[Mail, NoticeKind] | None: ...
    def final_receipts_due(self, limit: int, settled_before: str) -> list[Mail]:
        """Mails whose SMS are all final and whose first receipt, if wanted, is queued
        (or whose id is below `settled_before`)."""
        ...
    def queue_final_receipt(self, mail_id: str, item: NewOutboxItem | None,
                            now: datetime) -> bool: ...


class OptOutStore(Protocol):
    """Opt-out lists (WASPA): each account's, and the global block list (account None);
    each account's opt-out settings. Intake's check runs inside `accept`, and a STOP
    goes on its account's list in the transaction that stores it."""

    def add_optout(self, new: NewOptOut) -> tuple[OptOut, bool]:
        """The number's entry on that list, and whether it was added now (an entry
        already there is kept as it was)."""
        ...

    def add_optouts(self, entries: Sequence[NewOptOut]) -> int:
        """Put many numbers on lists (an import), a few thousand per transaction;
        returns how many were not listed before."""
        ...

    def remove_optout(self, account_id: int | None, number: str) -> bool: ...
    def get_optout(self, account_id: int | None, number: str) -> OptOut | None: ...
    def list_optouts(self, account_id: int | None, after_id: int,
                     limit: int) -> list[OptOut]:
        """One page of a list, oldest first, after the entry with id `after_id` (0)."""
        ...

    def optout_settings(self, account_id: int) -> OptOutSettings: ...
    def save_optout_settings(self, settings: OptOutSettings) -> None: ...
    def optout_confirmations_due(self, inbound_ids: Sequence[str]) -> list[OptOut]:
        """The opt-outs these inbound messages created, of accounts that confirm them."""
        ...


class PushStore(Protocol):
    """Each account's own URLs for delivery-report pushes (hub.pushes)."""

    def account_push_urls(self, account_id: int) -> dict[CallbackKind, str]: ...
    def set_account_push_url(self, account_id: int, kind: CallbackKind, url: str | None,
                             now: datetime) -> None:
        """Set it, or (None) remove it."""
        ...


class Spool(SchemaAdmin, AccountStore, MessageStore, MessageQueue, ReceiptStore, BatchStore,
            InboundStore, InboundPartStore, OutboxStore, MailStore, OperatorStore,
            OptOutStore, WebhookStore, PushStore, IdempotencyStore, PrivacyStore, ConsentStore,
            AuditStore, NodeStore, AdminStore, Protocol):
    """Durable storage of accounts, messages and their history: every role (spool/
    implements it; only the composition root and the CLI hold it whole)."""


class Carrier(Protocol):
    """An outbound route to handsets: SMPP, an HTTP upstream, or the simulator."""

    name: str

    async def start(self, sink: CarrierSink) -> None: ...
    async def stop(self) -> None: ...
    async def submit(self, messages: Sequence[Message]) -> list[SubmitResult]:
        """Submit a batch; one result per message, in order. Never raises for one message."""
        ...


@runtime_checkable
class StreamingCarrier(Carrier, Protocol):
    """A carrier that tells each message's result as soon as it has it (SMPP: the
    message's submit_sm_resp), so the dispatcher records it at once rather than when the
    whole batch is through: a crash then leaves only the messages in flight unrecorded,
    the only ones that may go out twice (P7)."""

    async def submit_each(self, messages: Sequence[Message],
                          on_result: Callable[[SubmitResult], None]) -> list[SubmitResult]:
        """As `submit`, calling `on_result` with each result the moment it is known."""
        ...


@runtime_checkable
class QueryingCarrier(Carrier, Protocol):
    """A carrier that can be asked what became of messages it took (SMPP `query_sm`):
    upkeep asks it before giving up on their delivery reports."""

    async def query(self, messages: Sequence[Message]) -> list[DeliveryReport]:
        """A report for each message it can answer about; the others are left out."""
        ...


class CarrierSink(Protocol):
    """Where every carrier sends what comes back: delivery reports and inbound messages.
    Each call returns once they are committed, so a carrier may then acknowledge them."""

    async def report(self, reports: Sequence[DeliveryReport]) -> None: ...
    async def inbound(self, messages: Sequence[InboundMessage]) -> None: ...


class OutboxChannel(Protocol):
    """Delivers outbox items of one channel (email, later webhooks). `deliver` raises
    TemporaryFailure to be retried later, Rejected to give the item up."""

    name: str

    async def deliver(self, item: OutboxItem) -> None: ...


class InboundRoute(Protocol):
    """Decides what an inbound message leads to (an email, a webhook...)."""

    async def route(self, message: Inbound) -> list[NewOutboxItem]: ...


# What a committed transaction wakes the other nodes for (Coordination): messages due to
# be claimed, and outbox items due to be delivered.
MESSAGES_CHANNEL = "smshub_messages"
OUTBOX_CHANNEL = "smshub_outbox"


class Coordination(Protocol):
    """How the processes sharing one PostgreSQL spool work together (spool/cluster.py;
    a SQLite spool has none): wake-ups when any node commits work, and cluster-wide locks
    that the database lets go of when the holder's connection ends, however it ends.
    A lock's name is `KIND:REST`; `count(KIND)` tells how many are held."""

    @property
    def listening(self) -> bool:
        """Whether wake-ups arrive now: a poller may then poll slowly."""
        ...

    def subscribe(self, channel: str, wake: Callable[[], None]) -> None:
        """Call `wake` on the event loop when a transaction that made work on `channel`
        commits, on any node, and after a reconnect (what was sent meanwhile is lost).
        Subscribe before start."""
        ...

    async def try_lock(self, name: str) -> asyncio.Event | None:
        """Hold `name` for this process if no other holds it: an event set once the lock
        is lost (the connection broke). None: another process holds it, or the database
        cannot be reached. Holding it already answers at once."""
        ...

    async def unlock(self, name: str) -> None: ...

    def holds(self, name: str) -> bool: ...

    async def count(self, kind: str) -> int:
        """How many locks named `kind:...` are held, by every process (0: unknown)."""
        ...
