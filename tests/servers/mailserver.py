"""A real Postfix and Dovecot on loopback, in a temporary folder, without systemd.

Postfix accepts mail for ``tab.example`` and delivers it into Maildirs (virtual delivery, one
folder per mailbox, owned by ``nobody``); nothing ever leaves the machine (every other transport
is ``error``). Two SMTP listeners behave like the two kinds of servers tabmail meets:

- ``smtp_port``: unknown recipients are refused at RCPT (``550 5.1.1``), like a recipient's MX;
- ``relay_port``: every recipient is accepted and the virtual delivery agent bounces unknown ones
  later, with a DSN (RFC 3464) to the envelope sender's mailbox: like a university relay or
  Gmail, which do not know the recipients. This is the case the inbox reader handles.

Dovecot serves the same Maildirs over IMAP (``imap_port``: STARTTLS or plain text;
``imaps_port``: implicit TLS) with one throwaway user per mailbox and ``password``; its
certificate comes from a test CA made here with trustme (``ca_file``).

Both daemons need root (Postfix's master refuses to run otherwise). ``unavailable_reason()``
says why they cannot run here; the fixture fails with it under CI=true and skips otherwise.
The recipe follows the Postfix and Dovecot documentation, adapted (virtual instead of local delivery,
so no system users are created).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import trustme

DOMAIN = "tab.example"
PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/sbin"])
BINARIES = ("postfix", "postconf", "dovecot", "doveadm")

MASTER_CF = """\
127.0.0.1:{smtp_port} inet n - n - - smtpd
127.0.0.1:{relay_port} inet n - n - - smtpd -o smtpd_reject_unlisted_recipient=no
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/postfix/queue
data_directory = {root}/postfix/data
maillog_file = {root}/postfix/postfix.log
maillog_file_prefixes = {root}
myhostname = mail.{domain}
mydomain = {domain}
myorigin = {domain}
mydestination = localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
default_transport = error
relay_transport = error
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = texthash:{root}/postfix/conf/mailboxes
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
recipient_delimiter = +
alias_maps =
alias_database =
smtpd_banner = $myhostname ESMTP
biff = no
append_dot_mydomain = no
readme_directory = no
# deferred mail is retried within seconds and warned about after 2 s (a delayed DSN), so a test
# can see Postfix's "delayed" report without waiting hours
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = 2s
"""

DOVECOT_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/dovecot/run
state_dir = {root}/dovecot/state
log_path = {root}/dovecot/dovecot.log
info_log_path = {root}/dovecot/dovecot.log
ssl = yes
ssl_cert = <{root}/tls/server.pem
ssl_key = <{root}/tls/server.key
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%n/Maildir
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {root}/dovecot/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
"""


def unavailable_reason() -> str | None:
    """Why a real Postfix + Dovecot cannot run here (None: they can)."""
    missing = [b for b in BINARIES if shutil.which(b, path=PATH) is None]
    if missing:
        return (
            f"Postfix/Dovecot binaries missing ({', '.join(missing)}): install postfix, dovecot-imapd "
            "and dovecot-core (tools/system-deps.sh does, as root)"
        )
    if os.geteuid() != 0:
        return "a real Postfix and Dovecot need root (Postfix's master refuses to run otherwise)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MailServerError(RuntimeError):
    pass


class MailServers:
    """Postfix + Dovecot for ``DOMAIN``. ``mailboxes``: local parts that exist (the rest are
    unknown users); each is also an IMAP login with ``password``."""

    def __init__(self, mailboxes: Iterable[str] = ("tab",), password: str = "imap-test-pw") -> None:
        self.domain = DOMAIN
        self.mailboxes = list(dict.fromkeys(mailboxes))
        self.password = password
        self.root = Path(tempfile.mkdtemp(prefix="tabmail-mail-"))
        self.smtp_port = free_port()
        self.relay_port = free_port()
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.ca_file = self.root / "tls" / "ca.pem"
        nobody = pwd.getpwnam("nobody")
        self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
        self._started: list[str] = []

    # -- addresses ----------------------------------------------------------------------------
    def address(self, local: str) -> str:
        return f"{local}@{self.domain}"

    def maildir(self, local: str) -> Path:
        return self.root / "mail" / local / "Maildir"

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> MailServers:
        reason = unavailable_reason()
        if reason:
            raise MailServerError(reason)
        self.root.chmod(0o755)  # Postfix's daemons run as postfix and nobody: they must get in
        for sub in ("postfix/conf", "postfix/queue", "postfix/data", "mail", "dovecot/run", "tls"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._tls()
        for local in self.mailboxes:
            self._make_maildir(local)
        values = {
            "root": str(self.root),
            "domain": self.domain,
            "uid": self.uid,
            "gid": self.gid,
            "smtp_port": self.smtp_port,
            "relay_port": self.relay_port,
            "imap_port": self.imap_port,
            "imaps_port": self.imaps_port,
        }
        conf = self.root / "postfix" / "conf"
        (conf / "main.cf").write_text(MAIN_CF.format(**values))
        (conf / "master.cf").write_text(MASTER_CF.format(**values))
        (conf / "mailboxes").write_text("".join(f"{self.address(m)} {m}/Maildir/\n" for m in self.mailboxes))
        shutil.chown(self.root / "postfix" / "data", user="postfix")
        (self.root / "dovecot" / "dovecot.conf").write_text(DOVECOT_CONF.format(**values))
        (self.root / "dovecot" / "users").write_text(
            "".join(f"{m}:{{PLAIN}}{self.password}\n" for m in self.mailboxes)
        )
        try:
            self._run("postfix", "-c", str(conf), "check")
            self._run("postfix", "-c", str(conf), "start")
            self._started.append("postfix")
            self._run("dovecot", "-c", str(self.root / "dovecot" / "dovecot.conf"))
            self._started.append("dovecot")
            for port in (self.smtp_port, self.relay_port, self.imap_port, self.imaps_port):
                self._wait_listening(port)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if "dovecot" in self._started:
            self._run("doveadm", "-c", str(self.root / "dovecot" / "dovecot.conf"), "stop", check=False)
        if "postfix" in self._started:
            self._run("postfix", "-c", str(self.root / "postfix" / "conf"), "stop", check=False)
        self._started.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> MailServers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for tests --------------------------------------------------------------------
    def message_count(self, local: str) -> int:
        box = self.maildir(local)
        return sum(1 for sub in ("new", "cur") for p in (box / sub).iterdir() if p.is_file())

    def wait_for_messages(self, local: str, count: int, timeout: float = 20.0) -> int:
        """Wait until ``local``'s Maildir holds at least ``count`` messages; says what it waited
        for (and the tail of Postfix's log) when the deadline passes."""
        deadline = time.monotonic() + timeout
        while True:
            have = self.message_count(local)
            if have >= count:
                return have
            if time.monotonic() > deadline:
                raise MailServerError(
                    f"waited {timeout:.0f} s for {count} message(s) in {self.address(local)}'s "
                    f"Maildir, have {have}; Postfix log tail:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def queue_empty(self) -> bool:
        queue = self.root / "postfix" / "queue"
        return not any(
            p.is_file()
            for sub in ("incoming", "active", "deferred", "maildrop")
            for p in (queue / sub).rglob("*")
        )

    def wait_queue_empty(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.queue_empty():
            if time.monotonic() > deadline:
                raise MailServerError(
                    f"Postfix's queue still not empty after {timeout:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        path = self.root / "postfix" / "postfix.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def empty_mailboxes(self) -> None:
        """Remove every message from every mailbox (through Dovecot, so its indexes agree)."""
        for local in self.mailboxes:
            self.doveadm("expunge", "-u", local, "mailbox", "*", "all")

    def doveadm(self, *args: str) -> str:
        return self._run("doveadm", "-c", str(self.root / "dovecot" / "dovecot.conf"), *args)

    def make_undeliverable(self, local: str) -> None:
        """``local``'s Maildir can no longer be written: deliveries to it are deferred (4.2.0)
        until ``purge_queue``."""
        box = self.maildir(local)
        os.chown(box, 0, 0)
        box.chmod(0o700)

    def make_deliverable(self, local: str) -> None:
        box = self.maildir(local)
        os.chown(box, self.uid, self.gid)
        box.chmod(0o755)

    def purge_queue(self) -> None:
        """Delete every message waiting in Postfix's queue."""
        self._run("postsuper", "-c", str(self.root / "postfix" / "conf"), "-d", "ALL", check=False)

    def kick(self, local: str, *, none_ok: bool = False) -> None:
        """Drop every IMAP connection of ``local`` (a server-side disconnect). ``none_ok``: it
        may have none at the moment (doveadm then exits 68)."""
        conf = str(self.root / "dovecot" / "dovecot.conf")
        self._run("doveadm", "-c", conf, "kick", local, check=not none_ok)

    def kill_imap(self, local: str) -> int:
        """SIGKILL every IMAP process serving ``local``: the connection ends without a BYE, as
        when a server crashes. Returns how many were killed."""
        pids = [
            int(pid)
            for line in self.doveadm("who", "-1", local).splitlines()[1:]
            for pid in line.split()[2:3]
            if pid.isdigit()
        ]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def stop_dovecot(self) -> None:
        """Stop Dovecot as a restart does: every IMAP connection gets a BYE and is closed (the
        processes serving them outlive ``doveadm stop`` otherwise); wait until it is gone."""
        for local in self.mailboxes:
            self._run(
                "doveadm", "-c", str(self.root / "dovecot" / "dovecot.conf"), "kick", local, check=False
            )
        self._run("doveadm", "-c", str(self.root / "dovecot" / "dovecot.conf"), "stop", check=False)
        deadline = time.monotonic() + 20
        while (self.root / "dovecot" / "run" / "master.pid").exists():
            if time.monotonic() > deadline:
                raise MailServerError("Dovecot did not stop within 20 s")
            time.sleep(0.05)

    def start_dovecot(self) -> None:
        """Start Dovecot again after ``stop_dovecot`` (same ports, same mailboxes)."""
        self._run("dovecot", "-c", str(self.root / "dovecot" / "dovecot.conf"))
        for port in (self.imap_port, self.imaps_port):
            self._wait_listening(port)

    def set_uidvalidity(self, local: str, folder: str, value: int) -> None:
        self.doveadm("mailbox", "update", "-u", local, "--uid-validity", str(value), folder)

    def append(self, local: str, raw: bytes) -> None:
        """Put a message straight into a mailbox (a Maildir file, as a delivery agent would)."""
        box = self.maildir(local)
        name = f"{time.time_ns()}.tabmail{os.getpid()}.{self.domain}"
        tmp = box / "tmp" / name
        tmp.write_bytes(raw)
        os.chown(tmp, self.uid, self.gid)
        tmp.rename(box / "new" / name)

    # -- internals ----------------------------------------------------------------------------
    def _tls(self) -> None:
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1")
        ca.cert_pem.write_to_path(str(self.ca_file))
        cert.cert_chain_pems[0].write_to_path(str(self.root / "tls" / "server.pem"))
        cert.private_key_pem.write_to_path(str(self.root / "tls" / "server.key"))
        (self.root / "tls" / "server.key").chmod(0o600)

    def _make_maildir(self, local: str) -> None:
        box = self.maildir(local)
        for sub in ("cur", "new", "tmp"):
            (box / sub).mkdir(parents=True, exist_ok=True)
        for path in (box.parent, box, box / "cur", box / "new", box / "tmp"):
            os.chown(path, self.uid, self.gid)

    def _run(self, *argv: str, check: bool = True) -> str:
        exe = shutil.which(argv[0], path=PATH) or argv[0]
        # Daemons inherit our pipes unless told otherwise: stdin/out to DEVNULL for the starters
        proc = subprocess.run(
            [exe, *argv[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if argv[0] == "doveadm" else subprocess.DEVNULL,
            stderr=subprocess.PIPE if argv[0] == "doveadm" else subprocess.DEVNULL,
            timeout=60,
            env={**os.environ, "PATH": PATH},
            check=False,
        )
        if check and proc.returncode != 0:
            err = (proc.stderr or b"").decode(errors="replace").strip()
            raise MailServerError(
                f"{' '.join(argv)} exited {proc.returncode}: {err}\nPostfix log tail:\n{self.log_tail()}"
            )
        return (proc.stdout or b"").decode(errors="replace")

    def _wait_listening(self, port: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise MailServerError(
                        f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.05)
