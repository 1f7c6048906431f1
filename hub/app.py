"""The composition root: the only place in hub/ that imports the spool and the adapters.
It builds the node's core and its list of services from the configuration, starts them in
order and stops them in reverse."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from hub import logs
from hub.accounts import Credentials, load_secret
from hub.clock import utcnow
from hub.config import Config
from hub.confirmations import OptOutConfirmations
from hub.dispatcher import Dispatcher, DispatchSettings
from hub.errors import SchemaError
from hub.inbound import InboundDesk
from hub.intake import Intake, IntakeRules
from hub.maintenance import Maintenance
from hub.metrics import Metrics
from hub.model import UnknownOutcome
from hub.nodelock import NodeLock, lock_sqlite
from hub.nodes import Heartbeat, this_node
from hub.outbox import OutboxRunner, OutboxSettings
from hub.policies import RetryPolicy
from hub.ports import (
    MESSAGES_CHANNEL,
    OUTBOX_CHANNEL,
    AccountStore,
    Coordination,
    SchemaState,
    Spool,
)
from hub.privacy import written_forms
from hub.retention import Retention
from hub.routing import Router, Rule
from hub.services import Core, Service, ServiceGroup, Task
from hub.spoolcall import SpoolThreads

if TYPE_CHECKING:
    from adapters.ftp.drop import FtpDrop
    from spool.cluster import PgCoordination

# The spool and the adapters are imported inside the functions that wire them, not above:
# every `smshub` command imports this module, and `--help` or a command that only reads
# the spool needs none of the servers, clients and SMPP library they bring (0.6 s of
# imports each time). `smshub serve` imports them all as it builds the node.

log = logging.getLogger(__name__)


def open_configured_spool(config: Config) -> Spool:
    from spool import open_spool

    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # secret.key, spool.db
    return open_spool(config.spool_url, busy_timeout=config.spool.busy_timeout)


def ensure_schema(spool: Spool, *, create_if_empty: bool) -> None:
    """Refuse an out-of-date schema with what to run; create one on an empty spool."""
    state = spool.schema_state()
    if state is SchemaState.EMPTY and create_if_empty:
        spool.upgrade()
        log.info("created the spool schema", extra={"action": "db-upgrade"})
        return
    if state is SchemaState.EMPTY:
        raise SchemaError("the spool has no schema yet: run `smshub db upgrade`")
    if state is SchemaState.OUTDATED:
        raise SchemaError("the spool schema is out of date: run `smshub db upgrade`")
    if state is SchemaState.NEWER:
        raise SchemaError("the spool schema is newer than this smshub: upgrade smshub")


def intake_rules(config: Config) -> IntakeRules:
    return IntakeRules(
        region=config.hub.default_region,
        max_segments=config.messages.max_segments,
        default_validity=config.messages.default_validity,
        max_client_ref_length=config.messages.max_client_ref_length,
        optout_instruction=config.messages.marketing_optout_text,
    )


def build_intake(config: Config, runner: SpoolThreads[Spool],
                 on_commit: Callable[[], None] | None = None) -> Intake:
    """The one way in, as every caller gets it: the server's listeners and the CLI."""
    return Intake(runner, intake_rules(config), group_commit_max=config.spool.group_commit_max,
                  on_commit=on_commit)


def build_outbox(config: Config, runner: SpoolThreads[Spool]) -> OutboxRunner:
    from adapters.smtp import service as smtp
    from adapters.webhooks import service as webhooks

    o = config.outbox
    policy = RetryPolicy(o.max_attempts, o.retry_base, o.retry_cap, max_age=float("inf"))
    settings = OutboxSettings(o.batch_size, o.poll_interval, o.lease_seconds)
    channels = {**smtp.outbox_channels(config, runner),
                **webhooks.outbox_channels(config, runner)}
    return OutboxRunner(runner, channels, policy, settings, tuning=webhooks.tuning(config),
                        node=config.node)


def build_inbound_desk(
    config: Config, runner: SpoolThreads[Spool], outbox: OutboxRunner | None = None,
    intake: Intake | None = None,
) -> InboundDesk:
    """Inbound messages and where they may lead (ingress adapters that answer by email
    or webhook add their route); with `intake`, opt-outs are confirmed by SMS where the
    account asks for it (see `confirm_opt_outs`)."""
    from adapters.smtp import service as smtp

    desk = InboundDesk(
        runner, smtp.inbound_routes(config, runner),
        keywords=config.inbound.opt_out_keywords,
        on_routed=None if outbox is None else outbox.wake,
    )
    if intake is not None:
        confirm_opt_outs(config, runner, desk, intake)
    return desk


def confirm_opt_outs(config: Config, runner: SpoolThreads[Spool], desk: InboundDesk,
                     intake: Intake) -> None:
    desk.on_opt_outs = OptOutConfirmations(
        runner, intake, config.inbound.opt_out_confirmation).send


def routing_rules(config: Config, accounts: AccountStore) -> list[Rule]:
    """`[[routing.rules]]` with account names resolved to ids once, at start; a rule
    naming no existing account matches nothing (and the log says so)."""
    ids = ({a.name: a.id for a in accounts.list_accounts()}
           if any(r.accounts for r in config.routing.rules) else {})
    rules = []
    for number, rule in enumerate(config.routing.rules, 1):
        missing = [name for name in rule.accounts if name not in ids]
        if missing:
            log.warning("[routing] rule #%d names unknown accounts: %s", number,
                        ", ".join(missing), extra={"action": "config"})
        account_ids = frozenset(ids[n] for n in rule.accounts if n in ids)
        if rule.accounts and not account_ids:
            account_ids = frozenset({-1})
        rules.append(Rule(tuple(rule.carriers), account_ids, tuple(rule.prefixes),
                          frozenset(rule.classes), frozenset(rule.senders)))
    return rules


def carrier_prices(config: Config) -> dict[str, Decimal]:
    """Each carrier's price per segment (its adapter reads its section)."""
    from adapters.carriers import service as carriers

    return carriers.prices(config)


def open_coordination(config: Config) -> PgCoordination | None:
    """How a dispatching process works with the other nodes on a PostgreSQL spool
    (docs/nodes.md); None on SQLite (one node) and for ingress (it waits for nothing)."""
    if config.hub.role == "ingress" or not config.spool_url.startswith("postgres"):
        return None
    # Imported here: psycopg costs each process about a third of a second to import on
    # a slow host, and a SQLite node never uses it.
    from spool.cluster import PgCoordination

    return PgCoordination(config.spool_url, member=f"dispatcher:{config.node}")


def build_dispatcher(config: Config, runner: SpoolThreads[Spool], metrics: Metrics,
                     inbound: InboundDesk,
                     coordination: Coordination | None = None) -> Dispatcher:
    from adapters.carriers import service as carriers

    d = config.dispatcher
    router = Router(carriers.build(config, runner, runner, coordination),
                    config.routing.default_carrier,
                    config.routing.failover, routing_rules(config, runner.spool))
    policy = RetryPolicy(d.max_attempts, d.retry_base, d.retry_cap, d.max_age)
    settings = DispatchSettings(
        batch_size=d.batch_size, poll_interval=d.poll_interval, gather=d.gather,
        lease_seconds=d.lease_seconds, shutdown_timeout=d.shutdown_timeout,
        report_retry_interval=d.report_retry_interval,
        unknown_outcome=UnknownOutcome(d.unknown_outcome),
    )
    return Dispatcher(runner, router, policy, settings, config.node, metrics, inbound=inbound,
                      coordination=coordination)


def build_core(config: Config, spool: Spool,
               coordination: Coordination | None = None) -> Core:
    runner = SpoolThreads(spool)
    metrics = Metrics()
    metrics.role, metrics.writer_figures = config.hub.role, spool.writer_figures
    outbox = build_outbox(config, runner)
    inbound = build_inbound_desk(config, runner, outbox)
    dispatcher = build_dispatcher(config, runner, metrics, inbound, coordination)
    if coordination is not None:  # work any node commits wakes this one's workers
        coordination.subscribe(MESSAGES_CHANNEL, dispatcher.wake)
        coordination.subscribe(OUTBOX_CHANNEL, outbox.wake)
        outbox.listening = lambda: coordination.listening
    if config.hub.role != "ingress":
        # An ingress process starts no carrier, so it shows no carrier figures rather
        # than all of them down (a split node's listener half shows its dispatch
        # half's, hub.supervisor).
        metrics.carrier_figures = dispatcher.carrier_figures
    intake = build_intake(config, runner, on_commit=dispatcher.wake)
    confirm_opt_outs(config, runner, inbound, intake)
    secret = load_secret(config.data_dir)
    logs.use_key(secret)  # numbers in the log keep one pseudonym from the first start on
    credentials = Credentials(runner, secret,
                              config.accounts.credential_cache_seconds)
    return Core(runner, intake, credentials, metrics, dispatcher, inbound, outbox)


def build_services(config: Config, core: Core,
                   coordination: Coordination | None = None) -> list[Service]:
    """Everything this node's role runs, in start order: dispatch side first, so messages
    that listeners accept have somewhere to go, then the listeners (docs/nodes.md)."""
    from adapters.carriers import service as carriers
    from adapters.http import health

    role = config.hub.role
    if role == "ingress":
        # Claims nothing and starts no carrier; an HTTP upstream's callbacks are still
        # committed here, through the dispatcher's sink (the spool applies them).
        sink = Task("callbacks",
                    lambda: carriers.take_callbacks(core.dispatcher.carriers, core.dispatcher),
                    lambda: carriers.take_callbacks(core.dispatcher.carriers, None))
        return [sink, *listeners(config, core)]
    services = dispatch_services(config, core, coordination)
    if role == "dispatch":
        callbacks = carriers.callback_routes(core.dispatcher.carriers)
        return services + ([health.build(config, core, callbacks)] if config.http.enabled
                           else [])
    return services + listeners(config, core)


def dispatch_services(config: Config, core: Core,
                      coordination: Coordination | None = None) -> list[Service]:
    """The dispatcher with its carriers, upkeep and the outbox."""
    from adapters.carriers import service as carriers
    from adapters.smtp import service as smtp

    cfg, d = config, config.dispatcher
    services: list[Service] = [Task("dispatcher", lambda: core.dispatcher.start(
        claim=d.enabled), core.dispatcher.stop)]
    if d.enabled:
        upkeep = Maintenance(core.runner, cfg.maintenance.interval, d.max_age,
                             inbound=core.inbound, receipts=carriers.receipt_timeouts(cfg),
                             carriers=core.dispatcher.carriers,
                             held_report_ttl=d.unmatched_report_ttl,
                             held=core.dispatcher.held_leases,
                             retention=Retention(core.runner, cfg.privacy.retention_days,
                                                 cfg.privacy.purge_interval,
                                                 cfg.privacy.purge_batch),
                             coordination=coordination,
                             unknown_outcome=UnknownOutcome(d.unknown_outcome))
        services += [Task("maintenance", upkeep.start, upkeep.stop),
                     Task("outbox", core.outbox.start, core.outbox.stop)]
        if cfg.smtp.enabled:  # receipts of mails any node took, that node gone or not
            services += smtp.receipt_jobs(cfg, core)
    return services


def listeners(cfg: Config, core: Core) -> list[Service]:
    """The ways in, as enabled: HTTP (with the carriers' callbacks), FTP, SMTP."""
    from adapters.carriers import service as carriers
    from adapters.ftp import service as ftp
    from adapters.http import service as http
    from adapters.smtp import service as smtp

    services: list[Service] = []
    if cfg.http.enabled:
        services.append(http.build(cfg, core,
                                   carriers.callback_routes(core.dispatcher.carriers)))
    if cfg.ftp.enabled:
        services.append(ftp.build(cfg, core))
    if cfg.smtp.enabled:
        services += smtp.build(cfg, core)
    return services


class Hub:
    """Every enabled service of one hub node, in one process."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.services: Core | None = None  # the shared core, once started
        self._group = ServiceGroup()
        self._by_name: dict[str, Service] = {}
        self._closed = False
        self._lock: NodeLock | None = None

    def _port(self, name: str) -> int | None:
        port = getattr(self._by_name.get(name), "port", None)
        return port if isinstance(port, int) else None

    @property
    def http_port(self) -> int | None:
        return self._port("http")

    @property
    def ftp_port(self) -> int | None:
        return self._port("ftp")

    @property
    def smtp_port(self) -> int | None:
        return self._port("smtp")

    @property
    def ftp_drop(self) -> FtpDrop | None:
        """The FTP drop when enabled and started (tests pause its batches through it)."""
        from adapters.ftp.drop import FtpDrop

        found = self._by_name.get("ftp")
        return found if isinstance(found, FtpDrop) else None

    async def start(self) -> None:
        cfg = self.config
        spool = await asyncio.to_thread(open_configured_spool, cfg)
        # A SQLite spool serves one node name, one dispatching process (hub.nodelock):
        # refused here, before the schema is looked at.
        try:
            self._lock = await asyncio.to_thread(
                lock_sqlite, cfg.spool_url, cfg.node, cfg.hub.role != "ingress")
        except BaseException:
            spool.close()
            raise
        await asyncio.to_thread(ensure_schema, spool, create_if_empty=True)
        coordination = open_coordination(cfg)
        self.services = core = build_core(cfg, spool, coordination)
        heartbeat = Heartbeat(core.runner, this_node(cfg.node, cfg.hub.role, utcnow()),
                              cfg.hub.heartbeat_interval, single_node=self._lock is not None)
        # Started after the heartbeat (which refuses a second dispatcher of this name)
        # and before the dispatcher, whose carriers ask it for their bind slots.
        first: list[Service] = [heartbeat] if coordination is None else [
            heartbeat, Task("coordination", coordination.start, coordination.stop)]
        try:
            for service in [*first, *build_services(cfg, core, coordination)]:
                await self._group.start(service)
                self._by_name[service.name] = service
        except BaseException:
            await self.stop()
            raise
        log.info("smshub node %s started: %s", cfg.node, ", ".join(self._group.names),
                 extra={"action": "start"})

    async def stop(self) -> None:
        await self._group.stop()
        if self.services is not None and not self._closed:
            self._closed = True
            self.services.runner.shutdown()
            self.services.runner.spool.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        log.info("smshub stopped", extra={"action": "stop"})


def settle_gc() -> None:
    """Tune the cyclic garbage collector for a long-running hub, once it has started.

    Intake allocates several containers per message; with CPython's default thresholds
    (a young collection every 700 allocations) the collector ran about every hundred
    messages and, every so often, walked the whole heap, phonenumbers' metadata and the
    number cache included: a fifth of the CPU of batch intake (30k -> 39k msg/s in
    batches of 1,000 once tuned). Objects alive after start-up are frozen out of every
    collection, and young collections run every 20,000 allocations instead; cycles are
    still collected, only in larger steps."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


async def serve(config: Config) -> None:
    """Run every enabled service until SIGTERM or SIGINT, then stop gracefully."""
    hub = Hub(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await hub.start()
    settle_gc()
    try:
        await stop.wait()
        log.info("stopping on signal", extra={"action": "stop"})
    finally:
        await stop_within(hub, config.hub.stop_timeout)


async def stop_within(hub: Hub, timeout: float) -> None:
    """Stop gracefully, or exit the process once `timeout` has passed: a stop must
    always end. Nothing acknowledged is lost by exiting (it is committed); leases and
    paused batches are recovered at the next start, as after a crash."""
    try:
        async with asyncio.timeout(timeout):
            await hub.stop()
    except TimeoutError:
        log.error("the stop did not finish within %g s ([hub] stop_timeout); exiting "
                  "now: work in flight is recovered at the next start", timeout,
                  extra={"action": "stop-timeout"})
        logging.shutdown()
        sys.stdout.flush()
        # Worker threads still busy would keep a normal exit waiting for them.
        os._exit(3)


# --- the FTP area's files about a number (smshub privacy export and erase) -----------


def ftp_files_naming(config: Config, number: str) -> list[str]:
    """The files of this node's FTP area that hold `number` (originals, results and
    reports), relative to the area: `acme/processed/<batch id>-promo.csv`."""
    from adapters.ftp import holdings as ftp_holdings
    from adapters.ftp.homes import Homes

    homes = Homes(config.data_dir)
    return [str(path.relative_to(homes.root))
            for path in ftp_holdings.files_naming(homes, written_forms(number))]


def erase_ftp_originals(config: Config, number: str) -> int:
    """Delete the FTP area's filed originals that hold `number` (they hold its texts)."""
    from adapters.ftp import holdings as ftp_holdings
    from adapters.ftp.homes import Homes

    return len(ftp_holdings.erase_originals(Homes(config.data_dir), written_forms(number)))
