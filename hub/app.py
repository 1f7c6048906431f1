"""The composition root: the only place in hub/ that imports the spool and the adapters.
It builds every service from the configuration, starts them in order and stops them in
reverse."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from dataclasses import dataclass

from adapters.carriers.simulator import SimulatorCarrier, SimulatorRules
from adapters.csv.rows import FileRules
from adapters.ftp.drop import FtpDrop
from adapters.ftp.jobs import JobSettings
from adapters.http.app import HttpContext
from adapters.http.server import HttpServer
from adapters.smtp.listener import MailHandler, MailRules, SmtpListener
from adapters.smtp.outbound import EMAIL_CHANNEL, EmailChannel, FinalReceipts, MailReplyRoute, Relay
from adapters.xml.native import XmlSettings
from hub.accounts import Credentials, load_secret
from hub.config import Config
from hub.dispatcher import Dispatcher, DispatchSettings
from hub.errors import SchemaError
from hub.inbound import InboundDesk
from hub.intake import Intake, IntakeRules
from hub.maintenance import Maintenance
from hub.metrics import Metrics
from hub.outbox import OutboxRunner, OutboxSettings
from hub.policies import RetryPolicy
from hub.ports import Carrier, InboundRoute, OutboxChannel, SchemaState, Spool
from hub.routing import Router
from hub.spoolcall import SpoolRunner
from spool import open_spool

log = logging.getLogger(__name__)


def open_configured_spool(config: Config) -> Spool:
    config.data_dir.mkdir(parents=True, exist_ok=True)
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
    )


def build_carriers(config: Config) -> dict[str, Carrier]:
    sim = config.simulator
    rules = SimulatorRules(
        report_delay=sim.report_delay,
        undelivered_suffixes=tuple(sim.undelivered_suffixes),
        rejected_suffixes=tuple(sim.rejected_suffixes),
        throttled_suffixes=tuple(sim.throttled_suffixes),
    )
    return {"simulator": SimulatorCarrier(rules)}


@dataclass
class Services:
    runner: SpoolRunner
    intake: Intake
    credentials: Credentials
    metrics: Metrics
    dispatcher: Dispatcher
    inbound: InboundDesk
    outbox: OutboxRunner


def build_inbound_routes(config: Config, runner: SpoolRunner) -> list[InboundRoute]:
    """What inbound messages may lead to; ingress adapters that answer by email or
    webhook add their route here."""
    routes: list[InboundRoute] = []
    if config.smtp.enabled:
        routes.append(MailReplyRoute(runner))
    return routes


def build_outbox_channels(config: Config, runner: SpoolRunner) -> dict[str, OutboxChannel]:
    channels: dict[str, OutboxChannel] = {}
    if config.smtp.enabled and config.smtp.relay_host:
        # Without a relay, receipts and replies wait in the outbox until one is set.
        channels[EMAIL_CHANNEL] = EmailChannel(config.smtp, runner,
                                               Relay.from_section(config.smtp),
                                               config.hub.timezone)
    return channels


def build_outbox(config: Config, runner: SpoolRunner) -> OutboxRunner:
    o = config.outbox
    policy = RetryPolicy(o.max_attempts, o.retry_base, o.retry_cap, max_age=float("inf"))
    settings = OutboxSettings(o.batch_size, o.poll_interval, o.lease_seconds)
    return OutboxRunner(runner, build_outbox_channels(config, runner), policy, settings)


def build_inbound_desk(
    config: Config, runner: SpoolRunner, outbox: OutboxRunner | None = None
) -> InboundDesk:
    return InboundDesk(
        runner, build_inbound_routes(config, runner),
        keywords=config.inbound.opt_out_keywords,
        on_routed=None if outbox is None else outbox.wake,
    )


class Hub:
    """Every enabled service of one hub node, in one process."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.services: Services | None = None
        self.http_port: int | None = None
        self._http: HttpServer | None = None
        self._maintenance: Maintenance | None = None
        self._ftp: FtpDrop | None = None
        self.ftp_port: int | None = None
        self._smtp: SmtpListener | None = None
        self._final_receipts: FinalReceipts | None = None
        self.smtp_port: int | None = None

    @property
    def ftp_drop(self) -> FtpDrop | None:
        """The FTP drop when enabled and started (tests pause its batches through it)."""
        return self._ftp

    async def start(self) -> None:
        cfg = self.config
        spool = await asyncio.to_thread(open_configured_spool, cfg)
        await asyncio.to_thread(ensure_schema, spool, create_if_empty=True)
        runner = SpoolRunner(spool)
        metrics = Metrics()
        outbox = build_outbox(cfg, runner)
        inbound = build_inbound_desk(cfg, runner, outbox)
        dispatcher = self._dispatcher(runner, metrics, inbound)
        intake = Intake(runner, intake_rules(cfg), group_commit_max=cfg.spool.group_commit_max,
                        on_commit=dispatcher.wake)
        credentials = Credentials(runner, load_secret(cfg.data_dir),
                                  cfg.accounts.credential_cache_seconds)
        self.services = Services(runner, intake, credentials, metrics, dispatcher, inbound,
                                 outbox)
        await dispatcher.start(claim=cfg.dispatcher.enabled)
        if cfg.dispatcher.enabled:
            self._maintenance = Maintenance(runner, cfg.maintenance.interval,
                                            cfg.dispatcher.max_age, inbound=inbound)
            self._maintenance.start()
            outbox.start()
        if cfg.http.enabled:
            await self._start_http(self.services)
        if cfg.ftp.enabled:
            await self._start_ftp(self.services)
        if cfg.smtp.enabled:
            await self._start_smtp(self.services)
        log.info("smshub node %s started", cfg.node, extra={"action": "start"})

    def _dispatcher(
        self, runner: SpoolRunner, metrics: Metrics, inbound: InboundDesk
    ) -> Dispatcher:
        d = self.config.dispatcher
        router = Router(build_carriers(self.config), self.config.routing.default_carrier)
        policy = RetryPolicy(d.max_attempts, d.retry_base, d.retry_cap, d.max_age)
        settings = DispatchSettings(
            batch_size=d.batch_size, poll_interval=d.poll_interval,
            lease_seconds=d.lease_seconds, shutdown_timeout=d.shutdown_timeout,
            report_retry_interval=d.report_retry_interval,
            unmatched_report_ttl=d.unmatched_report_ttl,
        )
        return Dispatcher(runner, router, policy, settings, self.config.node, metrics,
                          inbound=inbound)

    async def _start_http(self, services: Services) -> None:
        cfg = self.config
        ctx = HttpContext(
            intake=services.intake, credentials=services.credentials, runner=services.runner,
            metrics=services.metrics, max_body_bytes=cfg.http.max_body_bytes,
            max_messages_per_request=cfg.http.max_messages_per_request,
            timezone=cfg.hub.timezone,
        )
        self._http = HttpServer(ctx, XmlSettings(cfg.xml.max_body_bytes, cfg.xml.max_messages),
                                cfg.http.host, cfg.http.port)
        await self._http.start()
        self.http_port = self._http.port

    async def _start_ftp(self, services: Services) -> None:
        cfg = self.config
        jobs = JobSettings(
            FileRules(cfg.hub.default_region, cfg.hub.timezone),
            rows_per_group=cfg.ftp.rows_per_group, duplicate_window=cfg.ftp.duplicate_window,
            report_interval=cfg.ftp.report_interval,
            progress_interval=cfg.ftp.progress_interval,
            retry_delays=tuple(cfg.ftp.group_retry_delay * 2**i
                               for i in range(cfg.ftp.group_retries)),
        )
        self._ftp = FtpDrop(cfg.ftp, jobs, services.intake, services.runner, cfg.data_dir)
        await self._ftp.start()
        self.ftp_port = self._ftp.port

    async def _start_smtp(self, services: Services) -> None:
        cfg = self.config
        rules = MailRules(cfg.hub.default_region, cfg.hub.timezone, cfg.messages.max_segments)
        handler = MailHandler(cfg.smtp, rules, services.intake, services.credentials,
                              services.runner)
        self._smtp = SmtpListener(cfg.smtp, handler)
        await self._smtp.start()
        self.smtp_port = self._smtp.port
        if cfg.dispatcher.enabled:
            self._final_receipts = FinalReceipts(services.runner,
                                                 cfg.smtp.final_receipt_interval,
                                                 wake=services.outbox.wake)
            self._final_receipts.start()

    async def stop(self) -> None:
        if self._smtp is not None:
            await self._smtp.stop()
        if self._final_receipts is not None:
            await self._final_receipts.stop()
        if self._ftp is not None:
            await self._ftp.stop()
        if self._http is not None:
            await self._http.stop()
        if self._maintenance is not None:
            self._maintenance.stop()
        if self.services is not None:
            await self.services.outbox.stop()
            await self.services.dispatcher.stop()
            self.services.runner.shutdown()
            self.services.runner.spool.close()
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
        await asyncio.wait_for(hub.stop(), timeout)
    except TimeoutError:
        log.error("the stop did not finish within %g s ([hub] stop_timeout); exiting "
                  "now: work in flight is recovered at the next start", timeout,
                  extra={"action": "stop-timeout"})
        logging.shutdown()
        sys.stdout.flush()
        # Worker threads still busy would keep a normal exit waiting for them.
        os._exit(3)
