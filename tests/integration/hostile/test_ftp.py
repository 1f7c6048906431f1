"""Hostile FTP and CSV against the real FTP drop with ftplib and raw commands: path and
symlink escapes, PORT bounce and FXP, login spraying and hostile user names, aborted,
resumed and spliced uploads, hostile file names, encodings, delimiters, huge fields, and
spreadsheet formulas that the result and report files must neutralise (P21, P22, P23).
Each gets its FTP reply or its result file's reason row, opens no file outside the home
and no socket the attacker named, stays within the memory bound, and the drop still
processes a normal file afterwards."""

from __future__ import annotations

import ftplib
import io
import itertools
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub import accounts
from tests.ftpdrop import FTP_DEFAULTS, PASSWORD, Drop, read_csv, stem, wait_for
from tests.integration.hostile.conftest import running_hub
from tests.integration.hostile.watch import (
    MEMORY_BUDGET,
    MIB,
    Peak,
    Traps,
    healthz_answers,
    traps_at,
)

ARGON2_MEMORY = 64 * MIB
# What a spreadsheet runs when a cell starts with it (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")


@pytest.fixture(scope="module")
def drop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drop]:
    with running_hub(tmp_path_factory.mktemp("ftp"), ftp=dict(FTP_DEFAULTS)) as hub:
        hub.account("acme", credits="10000")
        hub.spool.set_password_hash("acme", accounts.hash_password(PASSWORD))
        made = Drop(hub)
        client(made).quit()  # the first login makes the home
        yield made


_files = itertools.count()


def still_serves(drop: Drop, source: str = "127.0.0.1") -> None:
    """/healthz at once, and a normal file is still processed row for row."""
    healthz_answers(drop.hub)
    name = f"normal-{next(_files)}.csv"
    ftp = client(drop, source)
    try:
        drop.upload(name, f"to,text\n0821234567,still here {name}\n", ftp)
    finally:
        ftp.quit()
    assert drop.result(name)[1][3] == "accepted"


def client(drop: Drop, source: str = "127.0.0.1", user: str = "acme",
           password: str = PASSWORD) -> ftplib.FTP:
    ftp = ftplib.FTP(source_address=(source, 0))
    ftp.connect("127.0.0.1", drop.port, timeout=10)
    try:
        ftp.login(user, password)
    except BaseException:
        ftp.close()
        raise
    return ftp


def outside_home(drop: Drop, before: set[Path]) -> set[Path]:
    """Files in the hub's data directory that are new and outside the account's home and
    the hub's own work area."""
    data = drop.hub.config.data_dir.resolve()
    now = {p for p in data.rglob("*") if p.is_file()}
    return {p for p in now - before
            if not p.is_relative_to(drop.home) and "ftp-work" not in p.parts
            and not p.name.startswith("spool.db")}


def files(drop: Drop) -> set[Path]:
    return {p for p in drop.hub.config.data_dir.resolve().rglob("*") if p.is_file()}


# --- the file system: escapes from the home ------------------------------------------


@dataclass(frozen=True)
class Escape:
    commands: Callable[[Traps], list[str]]
    reply: str  # the start of the last command's reply


def _links(drop: Drop, traps: Traps) -> None:
    """Symlinks planted in the home (by another local user, say) pointing outside it."""
    for name, target in (("to-fifo", traps.fifo), ("to-dir", traps.fifo.parent),
                         ("to-root", Path("/"))):
        link = drop.home / name
        if link.is_symlink():
            link.unlink()
        link.symlink_to(target)


ESCAPES = {
    "RETR climbing out": Escape(lambda t: [f"RETR ../../../../../..{t.fifo}"], "550"),
    "RETR an absolute path": Escape(lambda t: [f"RETR {t.fifo}"], "550"),
    "RETR through a symlink to a FIFO": Escape(lambda t: ["RETR to-fifo"], "550"),
    "RETR through a symlink to a folder": Escape(lambda t: [f"RETR to-dir/{t.fifo.name}"],
                                                 "550"),
    "CWD through a symlink": Escape(lambda t: ["CWD to-root"], "550"),
    "CWD climbing out": Escape(lambda t: ["CWD ../../../..", "PWD"], '257 "/"'),
    "STOR climbing out": Escape(lambda t: ["TYPE I", "STOR ../../../escape.csv"], "226"),
    "STOR through a symlink": Escape(lambda t: ["TYPE I", "STOR to-dir/planted.csv"], "550"),
    "SIZE of a file outside": Escape(lambda t: [f"SIZE ../../../../../..{t.fifo}"], "550"),
    "MDTM through a symlink": Escape(lambda t: ["MDTM to-fifo"], "550"),
    "RNFR through a symlink": Escape(lambda t: ["RNFR to-dir"], "550"),
    "DELE through a symlink": Escape(lambda t: [f"DELE to-dir/{t.fifo.name}"], "550"),
    "MKD climbing out": Escape(lambda t: ["MKD ../../../../made-outside", "RMD /made-outside"],
                               "250"),
    "SITE CHMOD": Escape(lambda t: ["SITE CHMOD 777 results"], "550"),
    "a NUL in a path": Escape(lambda t: ["RETR results\0/../../x"], "5"),
    "STOR into the hub's results folder": Escape(lambda t: ["TYPE I", "STOR results/x.csv"],
                                                 "550"),
}


def _reply(ftp: ftplib.FTP, command: str) -> str:
    try:
        if command.startswith(("STOR", "RETR", "LIST")):
            with ftp.transfercmd(command) as conn:
                if command.startswith("STOR"):
                    conn.sendall(b"to,text\n0821234567,planted\n")
            return ftp.voidresp()
        return ftp.sendcmd(command)
    except ftplib.Error as exc:
        return str(exc)


@pytest.mark.parametrize("name", list(ESCAPES))
def test_ftp_path_and_symlink_escapes_stay_in_the_home(drop: Drop, traps: Traps,
                                                       name: str) -> None:
    _links(drop, traps)
    before = files(drop)
    with Peak() as peak:
        ftp = client(drop)
        try:
            answers = [_reply(ftp, command) for command in ESCAPES[name].commands(traps)]
        finally:
            ftp.close()
    assert answers[-1].startswith(ESCAPES[name].reply), answers
    assert not (traps.fifo.parent / "planted.csv").exists()
    assert outside_home(drop, before) == set()
    traps.assert_untouched()
    peak.assert_within()
    still_serves(drop)


# --- data connections to someone else: PORT bounce and FXP ----------------------------


@pytest.fixture
def bounce_target(tmp_path: Path) -> Iterator[Traps]:
    """A listener on another loopback address than the client's (127.0.0.1): the victim."""
    with traps_at(tmp_path, host="127.0.0.2") as made:
        yield made


def _port(host: str, port: int) -> str:
    return f"PORT {host.replace('.', ',')},{port >> 8},{port & 255}"


BOUNCES: dict[str, Callable[[Traps], str]] = {
    "PORT to another address": lambda t: _port(t.host, t.port),
    "EPRT to another address": lambda t: f"EPRT |1|{t.host}|{t.port}|",
    "PORT to a privileged port": lambda t: _port("127.0.0.1", 25),
    "EPRT to a privileged port": lambda t: "EPRT |1|127.0.0.1|25|",
    "PORT to a public address": lambda t: _port("8.8.8.8", 53),
    "EPRT in IPv6 to another address": lambda t: f"EPRT |2|::ffff:{t.host}|{t.port}|",
}


@pytest.mark.parametrize("name", list(BOUNCES))
def test_ftp_port_bounce_is_refused_and_nothing_connects(drop: Drop, bounce_target: Traps,
                                                         name: str) -> None:
    ftp = client(drop)
    try:
        answer = _reply(ftp, BOUNCES[name](bounce_target))
        try:  # sent as is (ftplib would open its own data connection first)
            listing = ftp.sendcmd("LIST")  # would connect to the victim if PORT were taken
        except ftplib.Error as exc:
            listing = str(exc)
    finally:
        ftp.close()
    assert answer[:3] in ("501", "500", "522"), answer
    # pyftpdlib waits for a data connection (150) or says there is none (425).
    assert listing[:3] in ("150", "425"), listing
    time.sleep(0.1)  # a connection to the victim would be made at once
    bounce_target.assert_untouched()
    still_serves(drop)


# --- logins: spraying and hostile names -----------------------------------------------


HOSTILE_USERS = ["../../etc", "acme/../other", "acme\0", "a" * 300, "*", ".", "..",
                 "acme' OR '1'='1", "%s%s%s%n", "\u202eemca"]


def test_ftp_login_spraying_locks_the_address_out_and_no_one_else(tmp_path: Path) -> None:
    ftp_section = {**FTP_DEFAULTS, "login_failures_per_ip": 6, "max_login_attempts": 1}
    with running_hub(tmp_path / "hub", ftp=ftp_section) as hub:
        hub.account("acme", credits="100")
        hub.spool.set_password_hash("acme", accounts.hash_password(PASSWORD))
        drop = Drop(hub)
        ftp_root = hub.config.data_dir.resolve() / "ftp"
        with Peak() as peak:
            refusals = []
            for user in [*HOSTILE_USERS[:4], "acme", "nobody"]:
                with pytest.raises(ftplib.error_perm) as refused:
                    client(drop, user=user, password="Winter2025!")
                refusals.append(str(refused.value)[:3])
            # The address is locked out: even the right password is not checked.
            with pytest.raises(ftplib.error_perm, match=r"(?i)too many failed logins"):
                client(drop)
            for user in HOSTILE_USERS[4:]:
                with pytest.raises(ftplib.error_perm):
                    client(drop, user=user, password="x")
        assert refusals == ["530"] * 6
        assert {p.name for p in ftp_root.iterdir()} <= {"acme"}  # no home for a name
        # Each argon2 check takes 64 MiB (argon2-cffi's default memory cost), at most two
        # at a time (the drop's login pool): a flood of logins cannot take more.
        peak.assert_within(2 * ARGON2_MEMORY + MEMORY_BUDGET // 2)
        still_serves(drop, source="127.0.0.2")  # another address is served as ever


# --- uploads cut off, resumed, appended or spliced --------------------------------------


def _abor(drop: Drop, ftp: ftplib.FTP, name: str) -> str:
    conn = ftp.transfercmd(f"STOR {name}")
    conn.sendall(b"to,text\n" + b"0821234567,partial\n" * 100)
    wait_for(drop.home / name)
    ftp.putcmd("ABOR")
    # The data connection closes only after the answer: in stream mode its EOF is how a
    # client says the file is complete.
    aborted = ftp.getmultiline()
    conn.close()
    # 426 and then 226 if bytes had arrived; 225 alone if none had yet.
    return aborted + (" / " + ftp.getmultiline() if aborted.startswith("426") else "")


def _rest(drop: Drop, ftp: ftplib.FTP, name: str) -> str:
    ftp.sendcmd("TYPE I")
    ftp.sendcmd("REST 10")
    return _reply(ftp, f"STOR {name}")


def _appe(drop: Drop, ftp: ftplib.FTP, name: str) -> str:
    drop.upload(name, "to,text\n0821234567,first\n", ftp)
    drop.result(name)
    return _reply(ftp, f"APPE {name}")


UPLOADS: dict[str, tuple[Callable[[Drop, ftplib.FTP, str], str], str | tuple[str, ...]]] = {
    "aborted with ABOR": (_abor, ("426", "225")),
    "resumed with REST": (_rest, "550"),
    "appended with APPE": (_appe, "550"),
}


@pytest.mark.parametrize("how", list(UPLOADS))
def test_ftp_uploads_cut_off_or_resumed_are_never_processed(drop: Drop, how: str) -> None:
    name = f"cut-{next(_files)}.csv"
    batches = len(drop.hub.spool.list_batches(None, 1000))
    attack, reply = UPLOADS[how]
    ftp = client(drop)
    try:
        answer = attack(drop, ftp, name)
    finally:
        ftp.close()
    assert answer.startswith(reply), answer
    wait_for(drop.home, check=lambda home: not (home / name).exists() or how == "appended "
             "with APPE")
    expected = batches + (1 if how == "appended with APPE" else 0)
    assert len(drop.hub.spool.list_batches(None, 1000)) == expected
    still_serves(drop)


def test_ftp_file_being_uploaded_cannot_be_written_renamed_or_deleted_by_another_session(
    drop: Drop,
) -> None:
    """A second STOR of a name being uploaded once wrote into the same file, which the hub
    then processed (its batch: one client's head on the other's tail) and filed away
    while the first session went on writing into it; the first upload, answered 226,
    was never processed. Now the other session is refused until the upload is complete."""
    name = f"spliced-{next(_files)}.csv"
    first, second = client(drop), client(drop)
    try:
        first.sendcmd("TYPE I")
        conn = first.transfercmd(f"STOR {name}")
        conn.sendall(b"to,text\n" + b"0821234567,from the first\n" * 50)
        wait_for(drop.home / name)
        second.storbinary("STOR other.part", io.BytesIO(b"to,text\n0821234568,second\n"))
        refusals = [_reply(second, command) for command in (
            f"STOR {name}", f"APPE {name}", f"DELE {name}", f"RNFR {name}")]
        second.sendcmd("RNFR other.part")
        refusals.append(_reply(second, f"RNTO {name}"))
        conn.sendall(b"0821234567,from the first\n" * 50)
        conn.close()
        assert first.voidresp().startswith("226")
    finally:
        first.close()
        second.close()
    assert all(r.startswith("550") for r in refusals), refusals
    assert sum("another session" in r for r in refusals) == 4, refusals
    rows = drop.result(name)
    assert _statuses(rows) == ["accepted"] * 100
    texts = {drop.hub.spool.get_message(r[4]).text  # type: ignore[union-attr]
             for r in rows[1:] if r[3] == "accepted"}
    assert texts == {"from the first"}
    still_serves(drop)


# --- files: names, encodings, delimiters, sizes and formulas ---------------------------


@dataclass(frozen=True)
class Batch:
    content: bytes
    statuses: list[str]  # the status column of each row of the result file
    reason: str = ""  # in the last row's reason, when it is a refusal


def _csv(text: str, encoding: str = "utf-8") -> bytes:
    return text.encode(encoding)


BATCHES = {
    "UTF-16 with a BOM": Batch(_csv("to,text\n0821234567,Zoë\n", "utf-16"), ["accepted"]),
    "UTF-16LE without a BOM": Batch(_csv("to,text\n0821234567,Zoë\n", "utf-16-le"),
                                    ["accepted"]),
    "UTF-8 with a BOM": Batch(_csv("to,text\n0821234567,Zoë\n", "utf-8-sig"), ["accepted"]),
    "Windows-1252": Batch(_csv("to,text\n0821234567,Zoë \u2013 ok\n", "cp1252"), ["accepted"]),
    "UTF-8 broken far down": Batch(b"to,text\n" + b"0821234567,fine\n" * 5000
                                   + b"0821234567,caf\xe9\n", ["accepted"] * 5001),
    "bytes undefined in Windows-1252": Batch(b"to,text\n0821234567,\x81\x8d\x8f\x90\x9d\n",
                                             ["accepted"]),
    "NUL bytes that are no UTF-16": Batch(b"to,text\n\x00\x01\x02" * 40, ["unreadable"],
                                          "NUL"),
    "binary": Batch(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20, ["unreadable"]),
    "empty": Batch(b"", ["unreadable"], "empty"),
    "blank lines only": Batch(b"\r\n\n \n", ["unreadable"]),
    "semicolons": Batch(b"to;text\n0821234567;semi, colon\n", ["accepted"]),
    "tabs": Batch(b"to\ttext\n0821234567\ttab\n", ["accepted"]),
    "pipes (no delimiter we know)": Batch(b"to|text\n0821234567|pipe\n",
                                          ["rejected", "rejected"]),
    "mixed delimiters": Batch(b"to,text\n0821234567;text;more\n0821234568,ok\n",
                              ["rejected", "accepted"]),
    "a line of 20,000 characters": Batch(b"to,text\n0821234567," + b"x" * 20_000 + b"\n",
                                         ["not_processed"], "longer than"),
    "a quote never closed": Batch(b'to,text\n0821234567,"open\n' + b"0821234568,x\n" * 20_000,
                                  ["not_processed"]),
    "200 columns": Batch(b"to,text" + b",c" * 200 + b"\n0821234567,hi" + b",v" * 200 + b"\n",
                         ["unreadable"], "columns"),
    "a text of 10,000 characters": Batch(b"to,text\n0821234567," + b"y" * 10_000 + b"\n",
                                         ["rejected"], "too_long"),
}


def _upload(drop: Drop, name: str, content: bytes) -> list[list[str]]:
    with Peak() as peak:
        drop.upload(name, content)
        rows = drop.result(name)
    peak.assert_within()
    return rows


def _statuses(rows: list[list[str]]) -> list[str]:
    return [r[3] for r in rows[1:] if r[0] != "summary"]


@pytest.mark.parametrize("name", list(BATCHES))
def test_ftp_hostile_file_contents_get_a_result_row_each(drop: Drop, traps: Traps,
                                                         name: str) -> None:
    case = BATCHES[name]
    file_name = f"contents-{next(_files)}.csv"
    rows = _upload(drop, file_name, case.content)
    assert _statuses(rows) == case.statuses, rows[:4]
    answered = "\n".join(",".join(row) for row in rows)
    assert "Traceback" not in answered and str(drop.hub.config.data_dir) not in answered
    _no_formula_cells(rows)
    if case.reason:
        assert case.reason in rows[-2][7] or case.reason in rows[-1][7], rows[-2:]
    traps.assert_untouched()
    still_serves(drop)


NAMES = ["=cmd|' -c calc'!A1.csv", "+1+2.csv", "-rf.csv", "@SUM(A1).csv",
         "name with spaces, commas; and quotes\".csv", "ünïcödé \u2013 naïve.csv",
         "\u202etxt.csv", "x" * 200 + ".csv", "report.result.csv", "a..csv", "CON.csv",
         "semi;colon.txt", "%n%s%x.csv"]


@pytest.mark.parametrize("file_name", NAMES)
def test_ftp_hostile_file_names_are_answered_inside_results(drop: Drop, file_name: str,
                                                            ) -> None:
    before = files(drop)
    rows = _upload(drop, file_name, f"to,text\n0821234567,hostile name {next(_files)}\n"
                   .encode())
    assert _statuses(rows) == ["accepted"]
    assert (drop.home / "results" / f"{stem(file_name)}.result.csv").exists()
    assert outside_home(drop, before) == set()
    _no_formula_cells(rows)
    still_serves(drop)


def test_ftp_hidden_files_are_not_processed(drop: Drop) -> None:
    drop.upload(".hidden.csv", "to,text\n0821234567,hidden\n")
    time.sleep(0.3)
    assert not (drop.home / "results" / ".hidden.result.csv").exists()
    still_serves(drop)


FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+27821234567+cmd", "-2+3",
            "@SUM(1,1)", "\t=1+1", "\r=1+1", "=cmd|' /C calc'!A0", "=1+1;", " =1"]


def _no_formula_cells(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), f"a cell a spreadsheet runs: {cell!r}"


def test_ftp_formulas_in_every_field_are_neutralised_in_result_and_report_files(
    drop: Drop,
) -> None:
    lines = ["to,text,client_ref,name"]
    for i, formula in enumerate(FORMULAS):
        quoted = '"' + formula.replace('"', '""') + '"'
        lines.append(f"0821234{500 + i},Hello {{name}} {i},{quoted},{quoted}")  # accepted
        lines.append(f"{quoted},text {i},,")  # the formula as the number: rejected
    name = f"formulas-{next(_files)}.csv"
    rows = _upload(drop, name, ("\n".join(lines) + "\n").encode())
    statuses = _statuses(rows)
    assert statuses.count("accepted") >= len(FORMULAS) - 1  # "\r=1+1" may end a line
    _no_formula_cells(rows)
    assert any(cell.startswith("'=") for row in rows for cell in row)  # shown, not run
    report = wait_for(drop.report(name), check=lambda p: read_csv(p)[-1][2] == "final")
    _no_formula_cells(read_csv(report))
    still_serves(drop)


# --- the hub's own files are never followed out of the home ----------------------------


def test_ftp_symlink_planted_where_the_hub_writes_is_not_followed(drop: Drop, traps: Traps
                                                                  ) -> None:
    """A result file name that is a symlink to a file outside: the hub replaces the link,
    it never writes through it (results are published by rename)."""
    name = f"planted-{next(_files)}.csv"
    outside = traps.fifo.parent / "outside.txt"
    outside.write_text("untouched\n", "utf-8")
    (drop.home / "results" / f"{stem(name)}.result.csv").symlink_to(outside)
    drop.upload(name, f"to,text\n0821234567,{name}\n")
    result = wait_for(drop.home / "results" / f"{stem(name)}.result.csv",
                      check=lambda p: not p.is_symlink())
    assert _statuses(read_csv(result)) == ["accepted"]
    assert outside.read_text("utf-8") == "untouched\n"
    traps.assert_untouched()
    still_serves(drop)


def test_ftp_data_connection_from_another_address_is_refused(drop: Drop) -> None:
    """FXP: a third party connects to the port a client's PASV opened, to read or write
    the client's transfer. Only the client's own address may connect."""
    ftp = client(drop)
    try:
        host, port = ftplib.parse227(ftp.sendcmd("PASV"))
        ftp.putcmd("LIST")
        with socket.create_connection((host, port), timeout=5,
                                      source_address=("127.0.0.2", 0)) as intruder:
            intruder.settimeout(5)
            assert intruder.recv(65536) == b""  # closed without a byte of the listing
        waiting, refused = ftp.getmultiline(), ftp.getmultiline()
    finally:
        ftp.close()
    assert waiting.startswith("150") and refused.startswith("425"), (waiting, refused)
    assert "foreign address" in refused
    still_serves(drop)
