"""The spool's tables as SQLAlchemy Core metadata, with the column types that keep
times as UTC microseconds and money as 1/10000 credit units."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
    text,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
UNITS_PER_CREDIT = 10_000


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch; naive datetimes are refused, never guessed."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()}: the spool needs a timezone")
    return (value - EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def to_units(amount: Decimal | int) -> int:
    """Credits as whole 1/10000 units; more precision than that would be silently lost."""
    units = Decimal(amount) * UNITS_PER_CREDIT
    if units != units.to_integral_value():
        raise ValueError(f"amount {amount} has more than 4 decimal places")
    return int(units)


def from_units(units: int) -> Decimal:
    return Decimal(units) / UNITS_PER_CREDIT


class UtcTime(TypeDecorator[datetime]):
    """An aware datetime stored as BigInteger microseconds since 1970-01-01 UTC."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        return None if value is None else to_micros(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else from_micros(int(value))


class Money(TypeDecorator[Decimal]):
    """A Decimal amount of credit stored as BigInteger 1/10000 units."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> int | None:
        return None if value is None else to_units(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else from_units(int(value))


metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("balance", Money, nullable=False),
    Column("price_per_segment", Money, nullable=False),
    Column("password_hash", Text),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UtcTime, nullable=False),
    Column("deleted_at", UtcTime),  # a tombstone: the name stays taken, history kept
    # WASPA: a marketing text without an opt-out instruction gets one ("append") or is
    # refused ("refuse"); hub.waspa.
    Column("marketing_optout", Text, nullable=False, server_default="append"),
)

account_sender_ids = Table(
    "account_sender_ids",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), primary_key=True),
    Column("sender_id", Text, primary_key=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_id", Text, nullable=False, unique=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("digest", LargeBinary, nullable=False),
    Column("created_at", UtcTime, nullable=False),
    Column("revoked_at", UtcTime),
    Column("expires_at", UtcTime),
)

# Status conditions as literal SQL, shared by the partial indexes and the queries that
# must use them: neither planner can match a partial index against a bound parameter.
CLAIMABLE_SQL = "status IN ('accepted', 'queued', 'scheduled')"
SENDING_SQL = "status = 'sending'"
# The same test kept off ix_messages_status, for queries that name their messages by id:
# without statistics SQLite's planner prefers `status = ?` on that index to `id IN (...)`
# on the primary key, and read every message being sent to find a record's few dozen
# (record's lookup of its leased messages grew with the messages in flight).
SENDING_BY_ID_SQL = "status || '' = 'sending'"
QUEUED_SQL = "status = 'queued'"
_CLAIMABLE = text(CLAIMABLE_SQL)
_SENDING = text(SENDING_SQL)
_HAS_REF = text("client_ref IS NOT NULL")

messages = Table(
    "messages",
    metadata,
    Column("id", String(26), primary_key=True),
    # A key on SQLite only: PostgreSQL drops it (migration 0008), its per-row check
    # cost two thirds of the insert time there, and intake locks the account anyway.
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("source", Text, nullable=False),
    Column("client_ref", Text),
    Column("batch_id", Text),
    # The message's line in its batch file: an interrupted batch resumes by it.
    Column("batch_line", Integer),
    Column("sender", Text),
    Column("recipient", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("encoding", Text, nullable=False),
    Column("segments", Integer, nullable=False),
    Column("cost", Money, nullable=False),
    Column("message_class", Text, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("send_at", UtcTime),
    Column("expires_at", UtcTime),
    Column("due_at", UtcTime, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("carrier", Text),
    Column("carrier_message_id", Text),
    Column("error_code", Text),
    Column("error_text", Text),
    Column("lease_token", Text),
    Column("lease_owner", Text),
    Column("lease_expires_at", UtcTime),
    Column("accepted_at", UtcTime, nullable=False),
    Column("submitted_at", UtcTime),
    Column("completed_at", UtcTime),
    Column("updated_at", UtcTime, nullable=False),
    # Claims read this index in claim order (priority DESC, due_at, id); partial, so
    # finished messages never bloat it.
    Index(
        "ix_messages_claim",
        text("priority DESC"),
        "due_at",
        "id",
        sqlite_where=_CLAIMABLE,
        postgresql_where=_CLAIMABLE,
    ),
    Index(
        "ix_messages_lease",
        "lease_expires_at",
        sqlite_where=_SENDING,
        postgresql_where=_SENDING,
    ),
    # Partial: most rows have no carrier id or batch yet, and every index entry costs
    # time on the hot insert path (about 10% of intake's spool time for these two).
    Index("ix_messages_carrier_ref", "carrier", "carrier_message_id",
          sqlite_where=text("carrier_message_id IS NOT NULL"),
          postgresql_where=text("carrier_message_id IS NOT NULL")),
    Index(
        "ux_messages_client_ref",
        "account_id",
        "client_ref",
        unique=True,
        sqlite_where=_HAS_REF,
        postgresql_where=_HAS_REF,
    ),
    Index("ix_messages_batch", "batch_id", sqlite_where=text("batch_id IS NOT NULL"),
          postgresql_where=text("batch_id IS NOT NULL")),
    Index("ix_messages_status", "status"),
)

# The parts of a message a carrier took as several submissions (an SMPP long message
# sent as UDH or SAR parts), each with the carrier's own id, so each part's delivery
# report is matched; status is the part's final report, NULL until it has one.
message_parts = Table(
    "message_parts",
    metadata,
    Column("message_id", String(26), primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("carrier", Text, nullable=False),
    Column("carrier_message_id", Text, nullable=False),
    Column("status", Text),
    Column("error_code", Text),
    Column("error_text", Text),
    Index("ix_message_parts_carrier_ref", "carrier", "carrier_message_id"),
)

# Parts of long replies until every part of their set is in (spool/inbound_parts.py).
inbound_parts = Table(
    "inbound_parts",
    metadata,
    Column("carrier", Text, primary_key=True),
    Column("sender", Text, primary_key=True),
    Column("recipient", Text, primary_key=True),
    Column("ref", Integer, primary_key=True),
    Column("total", Integer, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("text", Text, nullable=False),
    Column("received_at", UtcTime, nullable=False),
    Index("ix_inbound_parts_received", "received_at"),
)

# Delivery reports that came before the submission they answer was recorded (or for
# ids never recorded): committed so the carrier may acknowledge them, applied when the
# carrier id is recorded, purged after a while (spool/reports.py).
held_reports = Table(
    "held_reports",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("carrier", Text, nullable=False),
    Column("carrier_message_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("at", UtcTime, nullable=False),
    Column("error_code", Text),
    Column("error_text", Text),
    Column("detail", Text, nullable=False),
    Column("held_at", UtcTime, nullable=False),
    Index("ix_held_reports_carrier_ref", "carrier", "carrier_message_id"),
    Index("ix_held_reports_held_at", "held_at"),
)

message_events = Table(
    "message_events",
    metadata,
    # BIGSERIAL on PostgreSQL; SQLite needs plain INTEGER to alias the rowid.
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("message_id", String(26), nullable=False, index=True),
    Column("at", UtcTime, nullable=False),
    Column("status", Text, nullable=False),
    Column("detail", Text, nullable=False),
)

_HAS_CARRIER_REF = text("carrier_message_id IS NOT NULL")
_UNROUTED = text("routed_at IS NULL")
_OUTBOX_DUE = text("status = 'pending'")
# An outbox item not yet settled (see CLAIMABLE_SQL on why literal SQL).
OUTBOX_OWED_SQL = "status IN ('pending', 'sending')"
_OUTBOX_OWED = text(f"{OUTBOX_OWED_SQL} AND endpoint_id IS NOT NULL")
OUTBOX_DUE_SQL = "status = 'pending'"

inbound = Table(
    "inbound",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("carrier", Text, nullable=False),
    Column("carrier_message_id", Text),
    Column("sender", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("account_id", Integer, ForeignKey("accounts.id")),
    Column("in_reply_to", String(26)),
    Column("received_at", UtcTime, nullable=False),
    Column("routed_at", UtcTime),
    # A carrier that lost our ack delivers the same MO again: store it once.
    Index(
        "ux_inbound_carrier_ref",
        "carrier",
        "carrier_message_id",
        unique=True,
        sqlite_where=_HAS_CARRIER_REF,
        postgresql_where=_HAS_CARRIER_REF,
    ),
    Index("ix_inbound_account", "account_id", "received_at"),
    Index("ix_inbound_unrouted", "received_at", sqlite_where=_UNROUTED,
          postgresql_where=_UNROUTED),
)

# Linking a reply to the latest message sent to its sender reads this index.
ix_messages_recipient = Index("ix_messages_recipient", messages.c.recipient,
                              messages.c.accepted_at)

outbox = Table(
    "outbox",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("channel", Text, nullable=False),
    Column("account_id", Integer, ForeignKey("accounts.id")),
    Column("address", Text, nullable=False),
    Column("inbound_id", String(26)),
    Column("message_id", String(26)),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error_code", Text),
    Column("error_text", Text),
    Column("lease_token", Text),
    Column("lease_expires_at", UtcTime),
    Column("created_at", UtcTime, nullable=False),
    Column("due_at", UtcTime, nullable=False),
    Column("updated_at", UtcTime, nullable=False),
    # Events pushed to a webhook endpoint: the endpoint, the event type, the JSON body
    # as it was when the change happened (a retry sends the same bytes).
    Column("endpoint_id", String(26)),
    Column("event_type", Text),
    Column("payload", Text),
    Index("ix_outbox_due", "channel", "due_at", sqlite_where=_OUTBOX_DUE,
          postgresql_where=_OUTBOX_DUE),
    Index("ix_outbox_lease", "lease_expires_at", sqlite_where=text("status = 'sending'"),
          postgresql_where=text("status = 'sending'")),
    # One message's events reach an endpoint in order: a claim skips an item while an
    # earlier one for the same endpoint and subject is still owed.
    Index("ix_outbox_order", "endpoint_id", "message_id", "id", sqlite_where=_OUTBOX_OWED,
          postgresql_where=_OUTBOX_OWED),
    Index("ix_outbox_endpoint", "endpoint_id", "created_at",
          sqlite_where=text("endpoint_id IS NOT NULL"),
          postgresql_where=text("endpoint_id IS NOT NULL")),
)

# An account's webhook endpoints; `events` holds the subscribed types, one per line.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text),
    Column("previous_until", UtcTime),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text),
    Column("kind", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", UtcTime, nullable=False),
    Column("updated_at", UtcTime, nullable=False),
)

# One row per uploaded batch file (FTP drop); its messages carry its id in batch_id.
batches = Table(
    "batches",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("file_name", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("format", Text, nullable=False),
    Column("received_at", UtcTime, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("state", Text, nullable=False),
    Column("duplicate_of", String(26)),
    Column("finished_at", UtcTime),
    # The delivery-report file needs no more rewrites; a failed batch keeps state 'failed'.
    Column("report_final", Boolean, nullable=False, server_default=false()),
    Index("ix_batches_account_sha", "account_id", "sha256", "received_at"),
    Index("ix_batches_state", "state"),
)

# --- email-to-SMS (adapters/smtp) ---------------------------------------------

# An account's mail settings; no row means the defaults of hub.mail.MailSettings.
mail_accounts = Table(
    "mail_accounts",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), primary_key=True),
    Column("subject_mode", Text, nullable=False),
    Column("too_long", Text, nullable=False),
    Column("receipts", Boolean, nullable=False),
    Column("final_receipts", Boolean, nullable=False),
    Column("replies", Boolean, nullable=False),
    Column("cut_markers", Text, nullable=False),  # one marker per line
)

# Sender addresses ("ops@acme.co.za") and domains ("acme.co.za"), each one account's.
mail_senders = Table(
    "mail_senders",
    metadata,
    Column("pattern", Text, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
)

# One accepted mail; its id is the batch_id of the SMS made from it.
mails = Table(
    "mails",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("sender", Text, nullable=False),
    Column("reply_to", Text, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("received_at", UtcTime, nullable=False),
    Column("receipts", Boolean, nullable=False),
    Column("final_receipt", Boolean, nullable=False),
    Column("replies", Boolean, nullable=False),
    Column("attachments", Text, nullable=False),  # one name per line
    Column("refused", Text, nullable=False),  # one "number: reason" per line
    Column("final_sent_at", UtcTime),
    Index("ix_mails_final_due", "received_at",
          sqlite_where=text("final_receipt AND final_sent_at IS NULL"),
          postgresql_where=text("final_receipt AND final_sent_at IS NULL")),
)

# What each email outbox item is about: a mail's receipt, final receipt or a reply.
mail_notices = Table(
    "mail_notices",
    metadata,
    Column("item_id", String(26), primary_key=True),
    Column("mail_id", String(26), nullable=False, index=True),
    Column("kind", Text, nullable=False),
)

# --- opt-outs (WASPA) -------------------------------------------------------------

_GLOBAL = text("account_id IS NULL")
_ACCOUNTS = text("account_id IS NOT NULL")

# Numbers on an account's opt-out list, or (account_id NULL) on the operator's global
# block list; spool/optouts.py creates every entry, with how and why it came.
optouts = Table(
    "optouts",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id")),
    Column("number", Text, nullable=False),
    Column("created_at", UtcTime, nullable=False),
    Column("method", Text, nullable=False),
    Column("reason", Text),
    Column("inbound_id", String(26)),
    # Intake reads this once per commit group for all its recipients.
    Index("ix_optouts_number", "number"),
    Index("ux_optouts_account_number", "account_id", "number", unique=True,
          sqlite_where=_ACCOUNTS, postgresql_where=_ACCOUNTS),
    Index("ux_optouts_global_number", "number", unique=True,
          sqlite_where=_GLOBAL, postgresql_where=_GLOBAL),
    Index("ix_optouts_account_page", "account_id", "id"),
)

# An account's opt-out settings; no row means hub.optouts.OptOutSettings' defaults.
optout_settings = Table(
    "optout_settings",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), primary_key=True),
    Column("scope", Text, nullable=False),
    Column("confirm", Boolean, nullable=False),
)

# --- delivery-report pushes in the dialects' shapes (hub.pushes) --------------------

# A push one message's request asked for (a Kannel dlr-url, a Clickatell callback):
# written at acceptance only for messages that ask, read by the fan-out of its status
# changes. `url` NULL: the account's own URL for that kind (account_callbacks).
message_callbacks = Table(
    "message_callbacks",
    metadata,
    Column("message_id", String(26), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("url", Text),
    Column("mask", Integer, nullable=False),
    Column("api_id", Text),
)

# An account's own push URLs, one per kind: where every XML deliveryReport goes, and
# Clickatell callbacks whose request named no URL (Clickatell keeps it per account).
account_callbacks = Table(
    "account_callbacks",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), primary_key=True),
    Column("kind", Text, primary_key=True),
    Column("url", Text, nullable=False),
    Column("updated_at", UtcTime, nullable=False),
)

# --- idempotency keys of the JSON API's POSTs (hub.idempotency, P12) --------------------

# One row per account and key: `running` while its request holds it (until
# `locked_until`), then `done` with the answer replayed to repeats until `expires_at`.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("state", Text, nullable=False),
    Column("token", Text, nullable=False),
    Column("status", Integer),
    Column("media_type", Text),
    Column("body", LargeBinary),
    Column("created_at", UtcTime, nullable=False),
    Column("locked_until", UtcTime, nullable=False),
    Column("expires_at", UtcTime, nullable=False),
    Column("location", Text),  # a 201's Location, replayed with it
    Index("ix_idempotency_keys_expires", "expires_at"),
)

# --- privacy (POPIA, spool/privacy.py) ------------------------------------------------

# What the hub did to personal data: each text purge past the retention, each erasure
# for a number. `subject` is the number masked with its keyed hash, never the number.
privacy_log = Table(
    "privacy_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("at", UtcTime, nullable=False),
    Column("action", Text, nullable=False),
    Column("subject", Text),
    Column("actor", Text, nullable=False),
    Column("detail", Text, nullable=False),  # JSON: what was done, row counts
)
