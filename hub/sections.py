"""The sections of `hub.toml`, one frozen dataclass each, mirroring the modules they
configure; each checks its own values and says what is allowed. hub.config loads them."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from hub import waspa


def _check(ok: bool, allowed: str) -> None:
    if not ok:
        raise ValueError(allowed)


@dataclass(frozen=True, slots=True)
class HubSection:
    data_dir: str = "var"
    node: str = ""
    default_region: str = "ZA"
    timezone: str = "Africa/Johannesburg"
    log_level: str = "info"
    stop_timeout: float = 30.0
    role: str = "all"  # what `smshub serve` runs (docs/nodes.md); --role overrides
    heartbeat_interval: float = 5.0  # seconds between a node's heartbeats
    processes: int = 0  # role all: 0 = two (ingress + dispatch) if more than one core

    def __post_init__(self) -> None:
        _check(self.stop_timeout > 0, "stop_timeout: seconds, greater than 0")
        _check(self.role in {"all", "ingress", "dispatch"},
               "role: one of all, ingress, dispatch")
        _check(self.heartbeat_interval > 0, "heartbeat_interval: seconds, greater than 0")
        _check(self.processes in {0, 1, 2},
               "processes: 0 (automatic), 1 or 2")
        _check(len(self.default_region) == 2 and self.default_region.isupper(),
               "default_region: a two-letter ISO 3166 region code such as ZA")
        _check(self.log_level in {"debug", "info", "warning", "error"},
               "log_level: one of debug, info, warning, error")


@dataclass(frozen=True, slots=True)
class SpoolSection:
    url: str = ""
    busy_timeout: float = 10.0
    group_commit_max: int = 5000

    def __post_init__(self) -> None:
        _check(self.url == "" or self.url.startswith(("sqlite", "postgresql")),
               "url: empty (SQLite under data_dir) or a sqlite:/// or postgresql:// URL")
        _check(self.busy_timeout > 0, "busy_timeout: seconds, greater than 0")
        _check(self.group_commit_max >= 1, "group_commit_max: a whole number of at least 1")


@dataclass(frozen=True, slots=True)
class HttpSection:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 4_194_304
    max_messages_per_request: int = 10_000
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keep_alive_timeout: int = 30
    max_connections: int = 1000
    idempotency_window: float = 86_400.0  # seconds an Idempotency-Key's answer is kept

    def __post_init__(self) -> None:
        _check(0 <= self.port <= 65535, "port: 0 to 65535 (0 picks a free port)")
        _check(self.max_body_bytes >= 1024, "max_body_bytes: at least 1024")
        _check(self.max_messages_per_request >= 1, "max_messages_per_request: at least 1")
        _check(self.header_timeout > 0, "header_timeout: seconds, greater than 0")
        _check(self.body_timeout > 0, "body_timeout: seconds, greater than 0")
        _check(self.keep_alive_timeout >= 1, "keep_alive_timeout: whole seconds, at least 1")
        _check(self.max_connections >= 1, "max_connections: at least 1")
        _check(self.idempotency_window >= 60, "idempotency_window: seconds, at least 60")


@dataclass(frozen=True, slots=True)
class PortalSection:
    """The customers' web portal at / on the HTTP listener (README, "The portal")."""
    enabled: bool = True
    # Set the cookie's Secure flag even when the hub itself sees plain HTTP (behind a
    # proxy that ends TLS); a request that arrives over HTTPS always gets it.
    secure_cookies: bool = False
    session_hours: float = 12.0
    login_failures_per_ip: int = 10
    login_lockout_seconds: float = 300.0

    def __post_init__(self) -> None:
        _check(self.session_hours > 0, "session_hours: hours, greater than 0")
        _check(self.login_failures_per_ip >= 1, "login_failures_per_ip: at least 1")
        _check(self.login_lockout_seconds >= 0, "login_lockout_seconds: 0 or more")


@dataclass(frozen=True, slots=True)
class XmlSection:
    max_body_bytes: int = 16_777_216
    max_messages: int = 10_000

    def __post_init__(self) -> None:
        _check(self.max_body_bytes >= 1024, "max_body_bytes: at least 1024")
        _check(self.max_messages >= 1, "max_messages: at least 1")


@dataclass(frozen=True, slots=True)
class DialectsSection:
    """The HTTP dialects (docs/http-dialects.md): each vendor's paths, its XML form too,
    switched on or off; failed logins on them limited per client address."""
    winsms: bool = True
    clickatell: bool = True
    kannel: bool = True
    login_failures_per_ip: int = 10
    login_lockout_seconds: float = 300.0

    def __post_init__(self) -> None:
        _check(self.login_failures_per_ip >= 1, "login_failures_per_ip: at least 1")
        _check(self.login_lockout_seconds >= 0, "login_lockout_seconds: 0 or more")


@dataclass(frozen=True, slots=True)
class FtpSection:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 2121
    passive_port_min: int = 0
    passive_port_max: int = 0
    masquerade_address: str = ""
    certfile: str = ""
    keyfile: str = ""
    tls_required: bool = True
    max_connections: int = 256
    max_connections_per_ip: int = 8
    max_login_attempts: int = 3
    failed_login_delay: float = 3.0
    login_failures_per_ip: int = 20
    login_lockout_seconds: float = 300.0
    idle_timeout: float = 300.0
    rows_per_group: int = 5000
    duplicate_window: float = 86_400.0
    report_interval: float = 5.0
    progress_interval: float = 2.0
    group_retries: int = 3
    group_retry_delay: float = 0.5

    def __post_init__(self) -> None:
        _check(0 <= self.port <= 65535, "port: 0 to 65535 (0 picks a free port)")
        _check(self.passive_port_min == self.passive_port_max == 0
               or 1024 <= self.passive_port_min <= self.passive_port_max <= 65535,
               "passive_port_min/max: both 0 (any free port) or 1024 <= min <= max <= 65535")
        _check(bool(self.certfile) == bool(self.keyfile),
               "certfile/keyfile: give both (explicit FTPS) or neither")
        _check(self.max_connections >= 1 and self.max_connections_per_ip >= 1,
               "max_connections, max_connections_per_ip: at least 1")
        _check(self.max_login_attempts >= 1, "max_login_attempts: at least 1")
        _check(self.failed_login_delay >= 0, "failed_login_delay: seconds, 0 or more")
        _check(self.login_failures_per_ip >= 1, "login_failures_per_ip: at least 1")
        _check(self.login_lockout_seconds >= 0, "login_lockout_seconds: 0 or more")
        _check(self.idle_timeout > 0, "idle_timeout: seconds, greater than 0")
        _check(100 <= self.rows_per_group <= 50_000, "rows_per_group: 100 to 50000")
        _check(self.duplicate_window >= 0, "duplicate_window: seconds, 0 to turn off")
        _check(self.report_interval > 0, "report_interval: seconds, greater than 0")
        _check(self.progress_interval >= 0, "progress_interval: seconds, 0 or more")
        _check(0 <= self.group_retries <= 10, "group_retries: 0 to 10")
        _check(self.group_retry_delay >= 0, "group_retry_delay: seconds, 0 or more")


@dataclass(frozen=True, slots=True)
class MessagesSection:
    max_segments: int = 6
    default_validity: float = 172_800.0
    max_client_ref_length: int = 64
    # WASPA: appended to a marketing text that says nothing of how to opt out.
    marketing_optout_text: str = " Reply STOP to opt out"

    def __post_init__(self) -> None:
        _check(1 <= self.max_segments <= 255, "max_segments: 1 to 255")
        _check(bool(self.marketing_optout_text.strip()),
               "marketing_optout_text: the instruction appended, not blank")
        # Else every marketing text would go out with words that tell nobody how to stop.
        _check(waspa.has_instruction(self.marketing_optout_text),
               "marketing_optout_text: must say how to opt out (STOP, opt out or "
               "unsubscribe), as in ' Reply STOP to opt out'")
        _check(self.default_validity >= 0, "default_validity: seconds, 0 for none")
        _check(1 <= self.max_client_ref_length <= 255, "max_client_ref_length: 1 to 255")


@dataclass(frozen=True, slots=True)
class AccountsSection:
    credential_cache_seconds: float = 60.0

    def __post_init__(self) -> None:
        _check(self.credential_cache_seconds >= 0, "credential_cache_seconds: 0 or more")


@dataclass(frozen=True, slots=True)
class DispatcherSection:
    enabled: bool = True
    batch_size: int = 500
    poll_interval: float = 0.25
    gather: float = 0.01
    lease_seconds: float = 60.0
    max_attempts: int = 8
    max_age: float = 86_400.0
    retry_base: float = 5.0
    retry_cap: float = 600.0
    shutdown_timeout: float = 10.0
    report_retry_interval: float = 0.5
    unmatched_report_ttl: float = 86_400.0
    unknown_outcome: str = "resend"

    def __post_init__(self) -> None:
        _check(1 <= self.batch_size <= 10_000, "batch_size: 1 to 10000")
        _check(self.unknown_outcome in ("resend", "fail"),
               'unknown_outcome: "resend" (at least once) or "fail" (at most once)')
        _check(self.poll_interval > 0, "poll_interval: seconds, greater than 0")
        _check(0 <= self.gather <= 1, "gather: seconds, 0 to 1")
        _check(self.lease_seconds >= 1, "lease_seconds: at least 1")
        _check(self.max_attempts >= 1, "max_attempts: at least 1")
        _check(self.max_age > 0, "max_age: seconds, greater than 0")
        _check(0 < self.retry_base <= self.retry_cap, "retry_base: > 0 and <= retry_cap")
        _check(self.shutdown_timeout >= 0, "shutdown_timeout: seconds, 0 or more")
        _check(self.report_retry_interval > 0, "report_retry_interval: greater than 0")
        _check(self.unmatched_report_ttl >= 0, "unmatched_report_ttl: 0 or more")


@dataclass(frozen=True, slots=True)
class RouteRule:
    """One `[[routing.rules]]` entry: every condition given must hold (an empty one
    matches anything); `carriers` is the failover order."""
    carriers: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)  # E.164 prefixes such as "+2782"
    classes: list[str] = field(default_factory=list)  # message classes
    senders: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check(bool(self.carriers), "carriers: the failover list, at least one carrier")
        _check(all(p.startswith("+") and p[1:].isdigit() for p in self.prefixes),
               "prefixes: E.164 prefixes such as \"+2782\"")
        _check(all(c in {"transactional", "marketing"} for c in self.classes),
               "classes: transactional and/or marketing")


@dataclass(frozen=True, slots=True)
class RoutingSection:
    default_carrier: str = "simulator"
    # Tried in order after default_carrier when it is down.
    failover: list[str] = field(default_factory=list)
    rules: list[RouteRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check(bool(self.default_carrier), "default_carrier: the name of a carrier")


@dataclass(frozen=True, slots=True)
class SimulatorSection:
    report_delay: float = 1.0
    undelivered_suffixes: list[str] = field(default_factory=list)
    rejected_suffixes: list[str] = field(default_factory=list)
    throttled_suffixes: list[str] = field(default_factory=list)
    receipt_timeout: float = 0.0  # 0: the message's validity + receipt_margin
    receipt_margin: float = 3600.0
    price_per_segment: float = 0.0

    def __post_init__(self) -> None:
        _check(self.report_delay >= 0, "report_delay: seconds, 0 or more")
        _check(self.receipt_timeout >= 0,
               "receipt_timeout: seconds after submission, 0 for validity + receipt_margin")
        _check(self.receipt_margin >= 0, "receipt_margin: seconds, 0 or more")
        _check(self.price_per_segment >= 0, "price_per_segment: 0 or more")
        for name in ("undelivered_suffixes", "rejected_suffixes", "throttled_suffixes"):
            _check(all(s.isdigit() for s in getattr(self, name)),
                   f"{name}: a list of digit strings such as [\"13\"]")


@dataclass(frozen=True, slots=True)
class MaintenanceSection:
    interval: float = 10.0

    def __post_init__(self) -> None:
        _check(self.interval > 0, "interval: seconds, greater than 0")


@dataclass(frozen=True, slots=True)
class PrivacySection:
    """POPIA: how long message texts are kept, and how the purge goes about it."""

    retention_days: float = 90.0
    purge_interval: float = 3600.0  # seconds between purge runs
    purge_batch: int = 2000  # rows per transaction: the write lock is held that long

    def __post_init__(self) -> None:
        _check(self.retention_days > 0, "retention_days: days, greater than 0")
        _check(self.purge_interval > 0, "purge_interval: seconds, greater than 0")
        _check(1 <= self.purge_batch <= 50_000, "purge_batch: 1 to 50000")


@dataclass(frozen=True, slots=True)
class InboundSection:
    opt_out_keywords: list[str] = field(default_factory=lambda: [
        "STOP", "STOPALL", "UNSUBSCRIBE", "OPT OUT", "OPTOUT", "END", "CANCEL", "QUIT"])
    opt_out_confirmation: str = ("You have been unsubscribed and will receive no more "
                                 "marketing messages from us.")

    def __post_init__(self) -> None:
        _check(all(k.strip() for k in self.opt_out_keywords),
               "opt_out_keywords: a list of non-empty words")
        _check(bool(self.opt_out_confirmation.strip()),
               "opt_out_confirmation: the text of the confirmation SMS, not empty")


@dataclass(frozen=True, slots=True)
class OutboxSection:
    batch_size: int = 50
    poll_interval: float = 1.0
    lease_seconds: float = 120.0
    max_attempts: int = 10
    retry_base: float = 30.0
    retry_cap: float = 3600.0

    def __post_init__(self) -> None:
        _check(1 <= self.batch_size <= 1000, "batch_size: 1 to 1000")
        _check(self.poll_interval > 0, "poll_interval: seconds, greater than 0")
        _check(self.lease_seconds >= 1, "lease_seconds: at least 1")
        _check(self.max_attempts >= 1, "max_attempts: at least 1")
        _check(0 < self.retry_base <= self.retry_cap, "retry_base: > 0 and <= retry_cap")


@dataclass(frozen=True, slots=True)
class WebhooksSection:
    enabled: bool = True
    timeout: float = 15.0
    connections: int = 100
    concurrency: int = 200
    # Deliveries in flight to one endpoint at most: one that hangs holds only these.
    per_endpoint: int = 32
    batch_size: int = 500
    retry_period: float = 259_200.0  # three days
    retry_base: float = 5.0
    retry_cap: float = 21_600.0
    secret_overlap: float = 86_400.0
    # How often the outbox looks for new events: it is a read while there are none.
    poll_interval: float = 0.2
    allow_networks: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check(0 < self.timeout <= 60, "timeout: seconds, more than 0 and at most 60")
        _check(self.connections >= 1, "connections: at least 1")
        _check(self.concurrency >= 1, "concurrency: at least 1")
        _check(self.per_endpoint >= 1, "per_endpoint: at least 1")
        _check(1 <= self.batch_size <= 5000, "batch_size: 1 to 5000")
        _check(self.retry_period >= 0, "retry_period: seconds, 0 or more")
        _check(0 < self.retry_base <= self.retry_cap, "retry_base: > 0 and <= retry_cap")
        _check(self.secret_overlap >= 0, "secret_overlap: seconds, 0 or more")
        _check(self.poll_interval > 0, "poll_interval: seconds, greater than 0")
        for net in self.allow_networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"allow_networks: {net!r} is not an address or network "
                                 "such as 127.0.0.1/32 or 10.0.0.0/8") from None


@dataclass(frozen=True, slots=True)
class SmtpSection:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 2525
    hostname: str = ""
    domains: list[str] = field(default_factory=lambda: ["sms.localhost"])
    clickatell_addresses: list[str] = field(default_factory=list)
    max_recipients: int = 100
    max_message_bytes: int = 10_485_760
    max_connections: int = 500
    max_connections_per_ip: int = 20
    certfile: str = ""
    keyfile: str = ""
    allow_plaintext_auth_on_loopback: bool = False
    require_tls: bool = False
    failed_auth_delay: float = 2.0
    auth_failures_per_ip: int = 10
    auth_lockout_seconds: float = 300.0
    settings_cache_seconds: float = 5.0
    from_address: str = "smshub@localhost"
    relay_host: str = ""
    relay_port: int = 25
    relay_security: str = "starttls"
    relay_username: str = ""
    relay_password: str = ""
    relay_timeout: float = 30.0
    final_receipt_interval: float = 30.0

    def __post_init__(self) -> None:
        _check(0 <= self.port <= 65535, "port: 0 to 65535 (0 picks a free port)")
        _check(0 < self.relay_port <= 65535, "relay_port: 1 to 65535")
        _check(bool(self.domains) and all("." in d and "@" not in d for d in self.domains),
               "domains: a list of domain names such as [\"sms.example.co.za\"]")
        _check(all(a.count("@") == 1 for a in self.clickatell_addresses),
               "clickatell_addresses: a list of addresses such as [\"sms@sms.example.co.za\"]")
        _check(1 <= self.max_recipients <= 1000, "max_recipients: 1 to 1000")
        _check(self.max_message_bytes >= 10_240, "max_message_bytes: at least 10240")
        _check(self.max_connections >= 1 and self.max_connections_per_ip >= 1,
               "max_connections, max_connections_per_ip: at least 1")
        _check(bool(self.certfile) == bool(self.keyfile),
               "certfile/keyfile: give both (STARTTLS and AUTH) or neither")
        _check(not self.require_tls or bool(self.certfile),
               "require_tls: needs certfile and keyfile")
        _check(self.failed_auth_delay >= 0, "failed_auth_delay: seconds, 0 or more")
        _check(self.auth_failures_per_ip >= 1, "auth_failures_per_ip: at least 1")
        _check(self.auth_lockout_seconds >= 0, "auth_lockout_seconds: 0 or more")
        _check(self.settings_cache_seconds >= 0, "settings_cache_seconds: 0 or more")
        _check(self.from_address.count("@") == 1, "from_address: an email address")
        _check(self.relay_security in {"starttls", "tls", "none"},
               "relay_security: one of starttls, tls, none")
        _check(bool(self.relay_username) == bool(self.relay_password),
               "relay_username/relay_password: give both or neither")
        _check(self.relay_timeout > 0, "relay_timeout: seconds, greater than 0")
        _check(self.final_receipt_interval > 0, "final_receipt_interval: greater than 0")

