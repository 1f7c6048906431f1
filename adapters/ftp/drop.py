"""The FTP drop server: pyftpdlib in its own thread, accounts logging in with their hub
password into their own home, and every completed upload handed to the hub's event loop
(`ftp_jobs.BatchProcessor`); nothing is parsed on pyftpdlib's IO loop."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import threading
import time
import warnings
from collections import defaultdict, deque
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # On Python 3.11 pyftpdlib uses the stdlib asyncore/asynchat, which warn on import;
    # 3.12+ gets them from pyasynchat. The warning is about pyftpdlib, not about us.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="asyn")
    warnings.filterwarnings("ignore", "The (asyncore|asynchat) module", DeprecationWarning)
    from pyftpdlib.authorizers import AuthenticationFailed
    from pyftpdlib.filesystems import AbstractedFS
    from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import FTPServer

from adapters.ftp.homes import PART_SUFFIX, Homes, safe_account_name
from adapters.ftp.jobs import BatchProcessor, JobSettings
from adapters.ftp.reports import ReportJob
from hub.accounts import check_password
from hub.intake import Intake
from hub.ports import Spool
from hub.sections import FtpSection
from hub.spoolcall import SpoolRunner
from hub.tasks import cancel_all

log = logging.getLogger(__name__)

# e list, l retrieve, r read, d delete, f rename, w store, m mkdir. No "a": no APPE onto
# a file, no SITE CHMOD ("M") and no "T" (MFMT).
PERMS = "elrdfwm"
_WRITE_PERMS = frozenset("adfwmMT")
_SUCCESS_TTL = 60.0


class HubAuthorizer:
    """pyftpdlib's authorizer interface over the spool's argon2 password hashes, with a
    brief cache of successful logins and a per-IP cap on failures."""

    def __init__(self, spool: Spool, homes: Homes, settings: FtpSection) -> None:
        self._spool = spool
        self._homes = homes
        self._settings = settings
        self._salt = secrets.token_bytes(16)
        self._ok: dict[bytes, float] = {}
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        ip = str(getattr(handler, "remote_ip", ""))
        if self._locked_out(ip):
            raise AuthenticationFailed("too many failed logins from this address; try later")
        if not self._check(username, password):
            self._failures[ip].append(time.monotonic())
            raise AuthenticationFailed("authentication failed")
        self._homes.ensure(username)

    def _check(self, username: str, password: str) -> bool:
        if not safe_account_name(username):
            return False
        digest = hmac.new(self._salt, f"{username}\0{password}".encode(), hashlib.sha256)
        key = digest.digest()
        if self._ok.get(key, 0.0) > time.monotonic():
            return True
        found = self._spool.password_hash(username)
        # An argon2 check on the IO loop stalls it ~50 ms: bounded by the failure cap.
        if found is None or not found[0].enabled or not check_password(found[1], password):
            return False
        self._ok[key] = time.monotonic() + _SUCCESS_TTL
        return True

    def _locked_out(self, ip: str) -> bool:
        window = self._failures[ip]
        horizon = time.monotonic() - self._settings.login_lockout_seconds
        while window and window[0] < horizon:
            window.popleft()
        return len(window) >= self._settings.login_failures_per_ip

    def get_home_dir(self, username: str) -> str:
        return str(self._homes.home(username))

    def has_user(self, username: str) -> bool:
        return safe_account_name(username)

    def has_perm(self, username: str, perm: str, path: str | None = None) -> bool:
        if perm not in PERMS:
            return False
        # results/, reports/, processed/ and rejected/ are the hub's: read and delete only.
        return not (perm in _WRITE_PERMS and perm != "d" and path is not None
                    and self._homes.in_hub_owned(username, Path(path)))

    def get_perms(self, username: str) -> str:
        return PERMS

    def get_msg_login(self, username: str) -> str:
        return "Welcome. Upload CSV files; results/ and reports/ hold the answers."

    def get_msg_quit(self, username: str) -> str:
        return "Goodbye."

    def impersonate_user(self, username: str, password: str) -> None:
        """Every account's files belong to the hub's own OS user."""

    def terminate_impersonation(self, username: str) -> None:
        """Nothing to undo (see impersonate_user)."""


class HomeFS(AbstractedFS):  # type: ignore[misc]
    """The account's home as `/`; pyftpdlib's validpath already resolves symlinks and
    refuses anything outside the root. Hidden names (dot files) are not listed."""

    def listdir(self, path: str) -> list[str]:
        return [n for n in super().listdir(path) if not n.startswith(".")]


@dataclass
class DropContext:
    """What the handler needs from the hub: where to send completed uploads."""

    homes: Homes
    processor: BatchProcessor
    loop: asyncio.AbstractEventLoop
    pending: set[Future[None]]


class DropHandler(FTPHandler):  # type: ignore[misc]
    """The FTP drop's behaviour; `handler_class` makes a configured subclass per server."""

    context: DropContext
    _restart_position: int

    def on_file_received(self, file: str) -> None:
        self._hand_over(Path(file))

    def on_incomplete_file_received(self, file: str) -> None:
        # An aborted or interrupted upload is never processed: remove what arrived.
        Path(file).unlink(missing_ok=True)
        log.info("incomplete upload removed", extra={"action": "ftp-incomplete"})

    def ftp_STOR(self, file: str, mode: str = "w") -> Any:
        if self._restart_position:
            self._restart_position = 0
            self.respond("550 Resuming uploads is not supported; upload the whole file.")
            return None
        return super().ftp_STOR(file, mode)

    def ftp_RNTO(self, path: str) -> Any:
        renamed = super().ftp_RNTO(path)
        if renamed and str(renamed[0]).endswith(PART_SUFFIX):
            self._hand_over(Path(renamed[1]))  # the `name.part` -> `name.csv` convention
        return renamed

    def _hand_over(self, path: Path) -> None:
        ctx, account = self.context, self.username
        if not ctx.homes.is_drop(account, path):
            return
        work = ctx.homes.claim(account, path)
        future = asyncio.run_coroutine_threadsafe(
            ctx.processor.process(account, work, path.name), ctx.loop)
        ctx.pending.add(future)
        future.add_done_callback(ctx.pending.discard)


def handler_class(settings: FtpSection, authorizer: HubAuthorizer,
                  context: DropContext) -> type[FTPHandler]:
    """A handler subclass for one server; FTPHandler itself is never changed."""
    tls = bool(settings.certfile)
    bases: tuple[type, ...] = (DropHandler, TLS_FTPHandler) if tls else (DropHandler,)
    attrs: dict[str, Any] = {
        "authorizer": authorizer, "abstracted_fs": HomeFS, "context": context,
        "banner": "smshub FTP drop ready.", "permit_foreign_addresses": False,
        "permit_privileged_ports": False, "max_login_attempts": settings.max_login_attempts,
        "auth_failed_timeout": settings.failed_login_delay, "timeout": settings.idle_timeout,
        "use_sendfile": False,
    }
    if settings.passive_port_max:
        attrs["passive_ports"] = range(settings.passive_port_min, settings.passive_port_max + 1)
    if settings.masquerade_address:
        attrs["masquerade_address"] = settings.masquerade_address
    if tls:
        attrs.update(certfile=settings.certfile, keyfile=settings.keyfile, ssl_context=None,
                     tls_control_required=settings.tls_required,
                     tls_data_required=settings.tls_required)
    return type("HubFtpHandler", bases, attrs)


class FtpServerThread:
    """Runs one FTPServer on its own IOLoop in a thread; stop() closes every connection."""

    def __init__(self, settings: FtpSection, handler: type[FTPHandler]) -> None:
        self._ioloop = IOLoop()
        self.server = FTPServer((settings.host, settings.port), handler, ioloop=self._ioloop)
        self.server.max_cons = settings.max_connections
        self.server.max_cons_per_ip = settings.max_connections_per_ip
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ftp-drop", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.address[1])

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self.server.serve_forever(timeout=0.1, blocking=False, handle_exit=False)
        finally:
            self.server.close_all()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)


class FtpDrop:
    """The whole FTP drop service: server thread, batch processor and report job."""

    def __init__(self, settings: FtpSection, jobs: JobSettings, intake: Intake,
                 runner: SpoolRunner, data_dir: Path) -> None:
        self._settings = settings
        self._runner = runner
        self.homes = Homes(data_dir)
        self._server: FtpServerThread | None = None
        self._report_task: asyncio.Task[None] | None = None
        self._pending: set[Future[None]] = set()
        self._resuming: set[asyncio.Future[None]] = set()
        self._reports = ReportJob(runner, self.homes, jobs.report_interval)
        self.processor = BatchProcessor(intake, runner, self.homes, jobs, self._reports)

    async def start(self) -> None:
        self.homes.root.mkdir(parents=True, exist_ok=True)
        # Before any upload, so nothing else is processing while batches are settled;
        # the ones cut off part-way then resume beside new uploads.
        for job in await self.processor.recover():
            self._resuming.add(task := asyncio.ensure_future(job))
            task.add_done_callback(self._resuming.discard)
        context = DropContext(self.homes, self.processor, asyncio.get_running_loop(),
                              self._pending)
        authorizer = HubAuthorizer(self._runner.spool, self.homes, self._settings)
        handler = handler_class(self._settings, authorizer, context)
        self._server = FtpServerThread(self._settings, handler)
        self._server.start()
        self._report_task = asyncio.create_task(self._reports.run(), name="ftp-reports")
        log.info("FTP drop listening on %s:%d", self._settings.host, self.port,
                 extra={"action": "listen"})

    @property
    def port(self) -> int:
        return self._server.port if self._server is not None else 0

    async def stop(self) -> None:
        if self._server is not None:
            await asyncio.to_thread(self._server.stop)
        # Files handed over pause after their group in flight (its rows may be committed
        # already) and resume at the next start: a stop takes one group, not one file.
        self.processor.stopping.set()
        for future in list(self._pending):
            await asyncio.wrap_future(future)
        for task in list(self._resuming):
            await task
        await cancel_all([self._report_task])
