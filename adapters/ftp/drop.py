"""The FTP drop server: pyftpdlib in its own thread, accounts logging in with their hub
password into their own home, and every completed upload handed to the hub's event loop
(`jobs.BatchProcessor`), answered 226 once the spool has recorded it. Nothing slow runs on
pyftpdlib's IO loop: uploads are parsed on the hub's loop, and a login's spool lookup and
argon2 check run on a worker thread."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import hmac
import logging
import queue
import secrets
import socket
import sys
import threading
import time
import warnings
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # On Python 3.11 pyftpdlib uses the stdlib asyncore/asynchat, which warn on import;
    # 3.12+ gets them from pyasynchat. The warning is about pyftpdlib, not about us.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="asyn")
    warnings.filterwarnings("ignore", "The (asyncore|asynchat) module", DeprecationWarning)
    from pyftpdlib.authorizers import AuthenticationFailed
    from pyftpdlib.exceptions import _FileReadWriteError
    from pyftpdlib.filesystems import AbstractedFS
    from pyftpdlib.handlers import DTPHandler, FTPHandler, TLS_DTPHandler, TLS_FTPHandler
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import FTPServer

from adapters.ftp.homes import PART_SUFFIX, Homes, safe_account_name
from adapters.ftp.jobs import BatchProcessor, JobSettings, Lease
from adapters.ftp.reports import ReportJob
from adapters.ftp.retention import FiledRetention
from adapters.ftp.store import FtpStore
from hub.accounts import check_password
from hub.errors import TemporaryFailure
from hub.faultlog import FaultLog
from hub.intake import Intake
from hub.ports import AccountStore
from hub.sections import FtpSection, PrivacySection
from hub.spoolcall import SpoolThreads
from hub.tasks import cancel_all

log = logging.getLogger(__name__)

# e list, l retrieve, r read, d delete, f rename, w store, m mkdir. No "a": no APPE onto
# a file, no SITE CHMOD ("M") and no "T" (MFMT).
PERMS = "elrdfwm"
_WRITE_PERMS = frozenset("adfwmMT")
_SUCCESS_TTL = 60.0
# The IO loop's longest poll. Every call from another thread wakes it (Mailbox), so this
# bounds only what nothing wakes it for.
MAX_POLL = 1.0


class HubAuthorizer:
    """pyftpdlib's authorizer interface over the spool's argon2 password hashes, with a
    brief cache of successful logins and a per-IP cap on failures.

    DropHandler logs in in two steps so the IO loop never waits: `precheck` (IO loop:
    lock-out, cached success), then `verify` on a worker thread (spool and argon2), then
    `settle` (IO loop again: the bookkeeping, kept to one thread)."""

    def __init__(self, runner: SpoolThreads[AccountStore], homes: Homes,
                 settings: FtpSection) -> None:
        self._runner = runner
        self._homes = homes
        self._settings = settings
        self._salt = secrets.token_bytes(16)
        self._ok: dict[bytes, float] = {}
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self.home_faults = FaultLog(log, "FTP homes cannot be made", "ftp-home")
        self.login_faults = FaultLog(log, "FTP logins cannot be checked", "ftp-login")

    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        """pyftpdlib's one-step interface (DropHandler uses the three steps instead)."""
        ip = str(getattr(handler, "remote_ip", ""))
        quick = self.precheck(username, password, ip)
        self.settle(username, password, ip, quick if quick is not None
                    else self.verify(username, password))

    def precheck(self, username: str, password: str, ip: str) -> bool | None:
        """True or False when decided without the spool, None when `verify` must run;
        raises AuthenticationFailed while the address is locked out."""
        if self._locked_out(ip):
            raise AuthenticationFailed("too many failed logins from this address; try later")
        if not safe_account_name(username):
            return False
        if self._ok.get(self._key(username, password), 0.0) > time.monotonic():
            return True
        return None

    def verify(self, username: str, password: str) -> bool:
        """The spool lookup and the argon2 check (~50 ms): on a worker thread. A
        successful login's home is made here too (file-system work; OSError if it
        cannot be)."""
        found = self._runner.spool.password_hash(username)
        if found is None or not found[0].enabled or not check_password(found[1], password):
            return False
        self._homes.ensure(username)
        return True

    def settle(self, username: str, password: str, ip: str, ok: bool) -> None:
        """Record the outcome; raises AuthenticationFailed for a failed login."""
        if not ok:
            self._failures[ip].append(time.monotonic())
            raise AuthenticationFailed("authentication failed")
        self._ok[self._key(username, password)] = time.monotonic() + _SUCCESS_TTL

    def _key(self, username: str, password: str) -> bytes:
        return hmac.new(self._salt, f"{username}\0{password}".encode(), hashlib.sha256).digest()

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
        if perm == "f" and path is not None and self._homes.is_own_folder(username, Path(path)):
            return True  # DropHandler refuses it, saying why
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


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class FileErrors:
    """A transfer the hub's disk fails is answered in FTP's own terms: 452 (insufficient
    storage, RFC 959) for a full disk, 451 (local error) for any other, both transient,
    where pyftpdlib says `426 None; transfer aborted.` (it reads the errno of its own
    wrapper, which has none). The partial upload is removed as any aborted one is."""

    _resp: tuple[str, Any]

    def handle_error(self) -> None:
        failed = sys.exc_info()[1]
        cause = failed.__cause__ if isinstance(failed, _FileReadWriteError) else None
        if not isinstance(cause, OSError):
            super().handle_error()  # type: ignore[misc]
            return
        if cause.errno in _NO_SPACE:
            reply = ("452 Insufficient storage space: the hub's FTP area is full; "
                     "try again later.")
        else:
            reply = (f"451 The hub could not write the file ({cause.strerror}); "
                     "try again later.")
        self._resp = (reply, logging.getLogger("pyftpdlib").warning)
        self.close()  # type: ignore[attr-defined]


class HubDTPHandler(FileErrors, DTPHandler):  # type: ignore[misc]
    pass


class HubTLSDTPHandler(FileErrors, TLS_DTPHandler):  # type: ignore[misc]
    pass


class Mailbox:
    """Calls handed to pyftpdlib's IO loop from other threads (its own scheduler is not
    thread-safe). A post also writes a byte to a socket the loop polls beside its
    clients', so the call runs at once: between polls, the answer to a login checked on
    a thread, or an upload's 226 held for its commit, waited up to the poll's timeout
    (0.1 s, every upload)."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._fileno = self._reader.fileno()  # pyftpdlib's IOLoop.close() sorts by it
        self._lock = threading.Lock()  # a post racing close() must not write a closed fd
        self._closed = False

    def fileno(self) -> int:
        return self._fileno

    def post(self, call: Callable[[], None]) -> None:
        self._calls.put(call)
        self.wake()

    def wake(self) -> None:
        with self._lock:
            if self._closed:
                return  # the loop has ended: what is posted now is never run
            with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending
                self._writer.send(b"\0")

    def run_posted(self) -> None:
        while True:
            try:
                call = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                call()
            except Exception:  # one connection's error must not end the server loop
                log.exception("FTP callback failed", extra={"action": "ftp-error"})

    # The IO loop polls the socket as one of its channels (asyncore's dispatcher calls).

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def handle_read_event(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._reader.recv(4096):
                pass
        self.run_posted()

    def handle_close(self) -> None:
        pass  # only close() ends it, with the loop

    def handle_error(self) -> None:
        log.exception("FTP callback failed", extra={"action": "ftp-error"})

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._reader.close()
            self._writer.close()


@dataclass
class DropContext:
    """What the handler needs from the hub: where to send completed uploads, and where
    slow login checks run and report back."""

    homes: Homes
    processor: BatchProcessor
    loop: asyncio.AbstractEventLoop
    pending: set[Future[None]]
    logins: ThreadPoolExecutor
    mailbox: Mailbox
    # Files being uploaded, by path, with the session writing each (IO loop only). A second
    # STOR of one name would write into the same file, which the hub may already be
    # processing: one batch made of two clients' uploads, and the other upload lost.
    uploading: dict[str, object] = field(default_factory=dict)


class DropHandler(FTPHandler):  # type: ignore[misc]
    """The FTP drop's behaviour; `handler_class` makes a configured subclass per server."""

    context: DropContext
    _restart_position: int
    _rnfr: str | None
    _held_reply: tuple[str, tuple[Any, ...], dict[str, Any]] | None = None
    _recording: Future[None] | None = None  # the upload being recorded before its 226
    _renaming = False  # the 250 of a `name.part` rename waits like a 226

    def ftp_PASS(self, line: str) -> None:
        """pyftpdlib's PASS, with the slow part of the check off the IO loop: the
        connection stops reading until the worker thread's answer is back."""
        if self.authenticated:
            self.respond("503 User already authenticated.")
            return
        if not self.username:
            self.respond("503 Login with USER first.")
            return
        authorizer: HubAuthorizer = self.authorizer
        username, ip = self.username, str(self.remote_ip)
        try:
            quick = authorizer.precheck(username, line, ip)
        except AuthenticationFailed as err:
            self.handle_auth_failed(str(err), line)
            return
        if quick is not None:
            self._logged_in(username, line, ip, quick)
            return
        self.del_channel()  # like pyftpdlib's own failed-login delay: read nothing meanwhile
        future = self.context.logins.submit(authorizer.verify, username, line)
        future.add_done_callback(lambda done: self.context.mailbox.post(
            lambda: self._verified(username, line, ip, done)))

    def _verified(self, username: str, password: str, ip: str, done: Future[bool]) -> None:
        if getattr(self, "_closed", False):
            return  # the client went away while its password was checked
        self.add_channel()
        try:
            ok = done.result()
        except OSError as exc:  # the home could not be made: a read-only or full disk
            self.authorizer.home_faults.failed(f"{exc.strerror} ({exc.filename})")
            self.respond("421 The hub cannot write its FTP area at the moment (its data "
                         "directory is read-only or full); try again later.")
            self.close_when_done()
            return
        except TemporaryFailure as exc:  # the spool is away: say so, once in the log
            self.authorizer.login_faults.failed(str(exc))
            self.respond(f"421 The hub cannot check logins at the moment ({exc.reason}); "
                         "try again later.")
            self.close_when_done()
            return
        except Exception:
            log.exception("FTP login check failed", extra={"action": "ftp-login-error"})
            self.respond("421 Service not available, try again later.")
            self.close_when_done()
            return
        self.authorizer.login_faults.cleared()
        if ok:
            self.authorizer.home_faults.cleared()
        self._logged_in(username, password, ip, ok)

    def _logged_in(self, username: str, password: str, ip: str, ok: bool) -> None:
        authorizer: HubAuthorizer = self.authorizer
        try:
            authorizer.settle(username, password, ip, ok)
        except AuthenticationFailed as err:
            self.handle_auth_failed(str(err), password)
            return
        self.handle_auth_success(authorizer.get_home_dir(username), password,
                                 authorizer.get_msg_login(username))

    def on_file_received(self, file: str) -> None:
        self._upload_ended(file)
        self._recording = self._hand_over(Path(file))

    def respond(self, resp: str, *args: Any, **kwargs: Any) -> None:
        # pyftpdlib answers a completed upload 226 before on_file_received: a hub killed
        # in between left an acknowledged file in the home, never processed. The 226
        # waits for the claim (made in on_file_received) and for the spool to record the
        # upload (any node can then finish it), and is sent from _on_dtp_close on.
        dtp = self.data_channel
        if (resp.startswith("226") and dtp is not None and dtp.receive
                and dtp.transfer_finished) or (self._renaming and resp.startswith("250")):
            self._held_reply = (resp, args, kwargs)
            return
        super().respond(resp, *args, **kwargs)

    def _on_dtp_close(self) -> None:
        held, self._held_reply = self._held_reply, None
        recording, self._recording = self._recording, None
        if held is not None and recording is not None:
            self._answer_when_recorded(recording, held, super()._on_dtp_close)
            return
        if held is not None:
            super().respond(held[0], *held[1], **held[2])
        super()._on_dtp_close()

    def _answer_when_recorded(self, recording: Future[None],
                              held: tuple[str, tuple[Any, ...], dict[str, Any]],
                              then: Callable[[], None] | None = None) -> None:
        """Send the held answer once the upload is recorded (451 if it could not be: the
        file is gone, the client sends it again); meanwhile read no command."""
        self.del_channel()
        recording.add_done_callback(lambda done: self.context.mailbox.post(
            lambda: self._recorded(done, held, then)))

    def _recorded(self, done: Future[None],
                  held: tuple[str, tuple[Any, ...], dict[str, Any]],
                  then: Callable[[], None] | None) -> None:
        if getattr(self, "_closed", False):
            return  # the client went away meanwhile; the upload is processed all the same
        self.add_channel()
        failed = done.exception()
        if failed is None:
            super().respond(held[0], *held[1], **held[2])
        else:
            reason = failed.reason if isinstance(failed, TemporaryFailure) else "internal error"
            log.warning("upload not recorded: %s", failed, extra={"action": "ftp-upload"})
            super().respond(f"451 The hub could not record the upload ({reason}); "
                            "send it again.")
        if then is not None:
            then()

    def on_incomplete_file_received(self, file: str) -> None:
        self._upload_ended(file)
        # An aborted or interrupted upload is never processed: remove what arrived.
        Path(file).unlink(missing_ok=True)
        log.info("incomplete upload removed", extra={"action": "ftp-incomplete"})

    def ftp_STOR(self, file: str, mode: str = "w") -> Any:
        if self._restart_position:
            self._restart_position = 0
            self.respond("550 Resuming uploads is not supported; upload the whole file.")
            return None
        if self._refused_busy(file):
            return None
        self.context.uploading[file] = self
        stored = super().ftp_STOR(file, mode)
        if stored is None:  # refused (the file could not be opened): no upload under way
            self._upload_ended(file)
        return stored

    def _upload_ended(self, file: str) -> None:
        if self.context.uploading.get(file) is self:
            del self.context.uploading[file]

    def _refused_busy(self, path: str) -> bool:
        """A file another session is uploading cannot be written, renamed or deleted."""
        if path not in self.context.uploading:
            return False
        self.respond(f"550 {Path(path).name} is being uploaded by another session; try "
                     "again once that upload is complete.")
        return True

    def close(self) -> None:
        for path, session in list(self.context.uploading.items()):
            if session is self:  # a session gone before its transfer ended
                del self.context.uploading[path]
        super().close()

    def ftp_RMD(self, path: str) -> Any:
        return None if self._refused_own_folder(path) else super().ftp_RMD(path)

    def ftp_DELE(self, path: str) -> Any:
        if self._refused_own_folder(path) or self._refused_busy(path):
            return None
        return super().ftp_DELE(path)

    def ftp_RNFR(self, path: str) -> Any:
        if self._refused_own_folder(path) or self._refused_busy(path):
            return None
        return super().ftp_RNFR(path)

    def _refused_own_folder(self, path: str) -> bool:
        """The home's folders are the hub's: removed or renamed, batches could not
        answer. Files inside may still be deleted (pyftpdlib's perms decide)."""
        if not self.context.homes.is_own_folder(self.username, Path(path)):
            return False
        self.respond(f"550 {Path(path).name}/ is one of the hub's own folders; it cannot "
                     "be removed, renamed or replaced.")
        return True

    def ftp_RNTO(self, path: str) -> Any:
        if self._refused_own_folder(path) or self._refused_busy(path):
            self._rnfr = None
            return None
        self._renaming = True
        try:
            renamed = super().ftp_RNTO(path)
        finally:
            self._renaming = False
        held, self._held_reply = self._held_reply, None
        recording = None
        if renamed and str(renamed[0]).endswith(PART_SUFFIX):
            recording = self._hand_over(Path(renamed[1]))  # `name.part` -> `name.csv`
        if held is not None and recording is not None:
            self._answer_when_recorded(recording, held)
        elif held is not None:
            super().respond(held[0], *held[1], **held[2])
        return renamed

    def _hand_over(self, path: Path) -> Future[None] | None:
        """Claim an upload and hand it to the hub's loop; the future resolves once the
        spool has recorded it (None: nothing to process)."""
        ctx, account = self.context, self.username
        if not ctx.homes.is_drop(account, path):
            return None
        try:
            work = ctx.homes.claim(account, path)
        except FileNotFoundError:  # gone before the IO loop got to it: nothing to process
            log.warning("upload %s vanished before it was processed", path.name,
                        extra={"action": "ftp-upload"})
            return None
        recorded: Future[None] = Future()
        future = asyncio.run_coroutine_threadsafe(
            ctx.processor.process(account, work, path.name, recorded), ctx.loop)
        ctx.pending.add(future)
        future.add_done_callback(ctx.pending.discard)
        future.add_done_callback(lambda _: _give_up(recorded))
        return recorded


async def _ended(jobs: list[asyncio.Future[None]]) -> None:
    """Wait for the batch jobs to end. Each answers for its own errors; one that died of
    anything else (it can only be a BaseException) is logged here and does not end the
    stop: the others still pause, and the leases are still let go."""
    if not jobs:
        return
    done, _ = await asyncio.wait(jobs)
    for job in done:
        if not job.cancelled() and (error := job.exception()) is not None:
            log.error("an FTP batch job ended with %r", error, extra={"action": "ftp-error"})


def _give_up(recorded: Future[None]) -> None:
    """The job ended without a word on the recording (cancelled at a stop): answer 451."""
    if not recorded.done():
        with contextlib.suppress(InvalidStateError):
            recorded.set_exception(TemporaryFailure("the hub is stopping"))


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
        "use_sendfile": False, "dtp_handler": HubTLSDTPHandler if tls else HubDTPHandler,
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

    def __init__(self, settings: FtpSection, handler: type[FTPHandler],
                 mailbox: Mailbox) -> None:
        self._mailbox = mailbox
        self._ioloop = IOLoop()
        try:
            self.server = FTPServer((settings.host, settings.port), handler,
                                    ioloop=self._ioloop)
        except OSError:  # the address is taken: no loop will run to close these
            mailbox.close()
            self._ioloop.close()
            raise
        self.server.max_cons = settings.max_connections
        self.server.max_cons_per_ip = settings.max_connections_per_ip
        self._ioloop.register(mailbox.fileno(), mailbox, self._ioloop.READ)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ftp-drop", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.address[1])

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            # The IO loop itself, once per turn: serve_forever() would log its
            # ">>> starting FTP server" line on every call. A poll waits for a client, a
            # posted call or stop() (the mailbox wakes it), or the next of pyftpdlib's
            # scheduled calls (idle timeouts), and at most a second.
            wait = 0.0
            while not self._stopping.is_set():
                soonest = self._ioloop.loop(timeout=wait, blocking=False)
                wait = MAX_POLL if soonest is None else max(0.0, min(soonest, MAX_POLL))
        finally:
            self.server.close_all()

    def stop(self) -> None:
        self._stopping.set()
        self._mailbox.wake()
        self._thread.join(10)


class FtpDrop:
    """The whole FTP drop service: server thread, batch processor, report job, and the
    leases on this node's batches (renewed; others' lapsed ones taken over)."""

    name = "ftp"

    def __init__(self, settings: FtpSection, jobs: JobSettings, intake: Intake,
                 runner: SpoolThreads[FtpStore], data_dir: Path, lease: Lease,
                 retention: PrivacySection | None = None) -> None:
        self._settings = settings
        self._runner = runner
        self.homes = Homes(data_dir)
        self._server: FtpServerThread | None = None
        self._report_task: asyncio.Task[None] | None = None
        self._lease_task: asyncio.Task[None] | None = None
        # The filed originals hold every row's text: purged on every node serving the
        # (shared) FTP area, since upkeep may run on a node that has none.
        privacy = retention or PrivacySection()
        self.retention = FiledRetention(runner, self.homes, privacy.retention_days,
                                        privacy.purge_interval)
        self._retention_task: asyncio.Task[None] | None = None
        self._pending: set[Future[None]] = set()
        self._resuming: set[asyncio.Future[None]] = set()
        self._reports = ReportJob(runner, self.homes, jobs.report_interval)
        self._reports.held = set()
        self._logins = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ftp-login")
        self.processor = BatchProcessor(intake, runner, self.homes, jobs, self._reports,
                                        lease)
        self._lease_faults = FaultLog(log, "FTP batch leases not renewed", "ftp-leases")

    async def start(self) -> None:
        self.homes.root.mkdir(parents=True, exist_ok=True)
        # Before any upload, so nothing else is processing while batches are settled;
        # the ones cut off part-way then resume beside new uploads.
        self._resume(await self.processor.recover())
        mailbox = Mailbox()
        context = DropContext(self.homes, self.processor, asyncio.get_running_loop(),
                              self._pending, self._logins, mailbox)
        authorizer = HubAuthorizer(self._runner, self.homes, self._settings)
        handler = handler_class(self._settings, authorizer, context)
        self._server = FtpServerThread(self._settings, handler, mailbox)
        self._server.start()
        self._report_task = asyncio.create_task(self._reports.run(), name="ftp-reports")
        self._lease_task = asyncio.create_task(self._keep_leases(), name="ftp-leases")
        self._retention_task = asyncio.create_task(self.retention.run(), name="ftp-retention")
        log.info("FTP drop listening on %s:%d", self._settings.host, self.port,
                 extra={"action": "listen"})

    def _resume(self, jobs: list[Awaitable[None]]) -> None:
        for job in jobs:
            self._resuming.add(task := asyncio.ensure_future(job))
            task.add_done_callback(self._resuming.discard)

    async def _keep_leases(self) -> None:
        """Every third of a lease: renew this node's leases, and take the batches whose
        node stopped or died (their leases lapsed or were let go)."""
        lease = self.processor.lease
        while True:
            await asyncio.sleep(lease.seconds / 3)
            try:
                held = await self._runner.call(self._runner.spool.renew_batch_leases,
                                               lease.node, lease.until())
                self._reports.held = set(held)
                self._resume(await self.processor.take_over())
            except (TemporaryFailure, OSError) as exc:
                self._lease_faults.failed(str(exc))
                continue
            self._lease_faults.cleared()

    @property
    def port(self) -> int:
        return self._server.port if self._server is not None else 0

    async def stop(self) -> None:
        if self._server is not None:
            await asyncio.to_thread(self._server.stop)
        await asyncio.to_thread(self._logins.shutdown, wait=True, cancel_futures=True)
        # Files handed over pause after their group in flight (its rows may be committed
        # already) and resume at the next start: a stop takes one group, not one file.
        self.processor.stopping.set()
        await _ended([*map(asyncio.wrap_future, self._pending), *self._resuming])
        await self.processor.waits_ended()
        await cancel_all([self._report_task, self._lease_task, self._retention_task])
        try:  # another node takes the paused batches at once, not once the leases lapse
            await self._runner.call(self._runner.spool.release_batch_leases,
                                    self.processor.lease.node)
        except TemporaryFailure as exc:
            log.warning("FTP batch leases not let go (%s); they lapse", exc,
                        extra={"action": "ftp-leases"})
