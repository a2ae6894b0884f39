"""Reading the tab room's mailbox over IMAP (imapclient); blocking, so callers use a thread.

What is read: only messages above the last UID seen (kept by the caller with the folder's
UIDVALIDITY). For each batch, the sizes and INTERNALDATEs come first; a message under
``whole_cap`` is then fetched whole; for a bigger one, its header and BODYSTRUCTURE, then only
the parts a classifier needs (text parts up to ``part_cap`` each, delivery-status / feedback-report parts, the headers
of a returned original), reassembled into one parseable message. A 20 MB attachment is never
downloaded. Nothing is deleted, moved or flagged (the folder is opened read-only, so not even
\\Seen changes) unless a ``processed_folder`` is configured.

Errors: ``ImapOffline`` when the server cannot be reached or the connection drops (a state for
the caller to report), ``ImapProblem`` for what the director must fix (login refused, folder
missing, certificate not trusted, plain text to another machine), each one sentence, never with
the password in it.
"""

from __future__ import annotations

import imaplib
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from tabmail.domain.config import is_loopback_host
from tabmail.domain.errors import TabmailError

WHOLE_CAP = 512 * 1024  # a message up to this size is fetched whole
PART_CAP = 64 * 1024  # otherwise each needed part, up to this many bytes
MAX_TEXT_PARTS = 2
CHUNK = 200  # messages per FETCH
IDLE_SLICE = 0.5  # seconds an IDLE wait listens before it looks at stop() again


class ImapProblem(TabmailError):
    """Something the director must fix; the message says what (never the password)."""


class ImapOffline(Exception):
    """The server could not be reached, or the connection dropped: try again later."""


@dataclass(frozen=True, slots=True)
class ImapSettings:
    host: str
    port: int
    security: str  # ssl | starttls | none
    username: str
    password: str
    folder: str = "INBOX"
    ca_file: str | None = None
    timeout: float = 30.0
    processed_folder: str | None = None  # opt-in: move processed messages here

    def __repr__(self) -> str:  # the password never shows in a log or traceback
        return f"ImapSettings({self.username}@{self.host}:{self.port}, {self.security}, {self.folder!r})"


@dataclass(frozen=True, slots=True)
class FolderStatus:
    uidvalidity: int
    uidnext: int | None
    exists: int
    idle: bool  # the server offers IDLE


@dataclass(frozen=True, slots=True)
class FetchedMessage:
    uid: int
    size: int  # the message's full size on the server
    raw: bytes  # what was fetched: the whole message, or its needed parts reassembled
    truncated: bool
    internal_date: datetime | None


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verification always on; a custom CA file (institutions run their own) when given."""
    try:
        return ssl.create_default_context(cafile=ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ImapProblem(f"the CA file {ca_file} cannot be used: {exc}") from None


ClientFactory = Callable[..., IMAPClient]


class ImapMailbox:
    """One connection to one folder. Use as a context manager; blocking."""

    def __init__(self, settings: ImapSettings, *, client_factory: ClientFactory = IMAPClient) -> None:
        self.settings = settings
        self._factory = client_factory
        self._client: IMAPClient | None = None
        self.bytes_fetched = 0

    # -- connection -----------------------------------------------------------------------------
    def open(self) -> FolderStatus:
        s = self.settings
        if s.security not in ("ssl", "starttls", "none"):
            raise ImapProblem(f"imap.security must be ssl, starttls or none, not {s.security!r}")
        if s.security == "none" and not is_loopback_host(s.host):
            raise ImapProblem(
                f"imap.security is none but {s.host} is another machine: the password would travel "
                "unencrypted (use ssl or starttls)"
            )
        if not s.host:
            raise ImapProblem("no IMAP server is set (tabmail config set imap.host ...)")
        where = f"{s.host}:{s.port}"
        try:
            context = tls_context(s.ca_file) if s.security != "none" else None
            client = self._factory(
                s.host, port=s.port, ssl=s.security == "ssl", ssl_context=context, timeout=s.timeout
            )
            self._client = client
            if s.security == "starttls":
                client.starttls(context)
            client.login(s.username, s.password)
            caps = client.capabilities()
            info = client.select_folder(s.folder, readonly=not s.processed_folder)
        except ssl.SSLCertVerificationError as exc:
            self.close()
            raise ImapProblem(
                f"the certificate of {where} is not trusted ({exc.verify_message}); "
                "set tls.ca_file to your institution's CA if it runs its own"
            ) from None
        except LoginError:
            self.close()
            raise ImapProblem(
                f"{where} refused the login for {s.username!r} (check imap.username and imap-password)"
            ) from None
        except IMAPClientError as exc:
            self.close()
            text = _clean(exc)
            if "select" in text.lower() or "mailbox" in text.lower() or "folder" in text.lower():
                raise ImapProblem(f"the folder {s.folder!r} cannot be opened on {where}: {text}") from None
            raise ImapProblem(f"{where} refused: {text}") from None
        except (OSError, imaplib.IMAP4.abort, ssl.SSLError) as exc:
            self.close()
            raise ImapOffline(f"{where} cannot be reached ({type(exc).__name__}: {_clean(exc)})") from None
        uidvalidity = int(info.get(b"UIDVALIDITY", 0) or 0)
        uidnext = info.get(b"UIDNEXT")
        return FolderStatus(
            uidvalidity=uidvalidity,
            uidnext=int(uidnext) if uidnext is not None else None,
            exists=int(info.get(b"EXISTS", 0) or 0),
            idle=b"IDLE" in caps,
        )

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # a dropped connection cannot log out; nothing to keep
            try:
                client.shutdown()
            except Exception:
                pass

    def __enter__(self) -> ImapMailbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise ImapOffline("not connected")
        return self._client

    def _call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except (OSError, imaplib.IMAP4.abort, ssl.SSLError) as exc:
            raise ImapOffline(
                f"the connection to {self.settings.host} dropped ({type(exc).__name__})"
            ) from None
        except IMAPClientError as exc:
            if "abort" in type(exc).__name__.lower() or "bye" in str(exc).lower():
                raise ImapOffline(f"the connection to {self.settings.host} dropped ({_clean(exc)})") from None
            raise ImapProblem(f"{self.settings.host} refused: {_clean(exc)}") from None

    # -- reading --------------------------------------------------------------------------------
    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs above ``last_uid``, ascending ("n:*" also names the last message when nothing is
        newer, so the answer is filtered)."""
        found = self._call(self.client.search, ["UID", f"{last_uid + 1}:*"])
        return sorted(int(u) for u in found if int(u) > last_uid)

    def fetch(
        self, uids: Sequence[int], *, whole_cap: int = WHOLE_CAP, part_cap: int = PART_CAP
    ) -> Iterator[FetchedMessage]:
        """The messages, in UID order, CHUNK at a time. Raises ImapOffline if the connection drops
        (what was yielded before stays valid)."""
        for start in range(0, len(uids), CHUNK):
            chunk = list(uids[start : start + CHUNK])
            meta = self._call(self.client.fetch, chunk, ["RFC822.SIZE", "INTERNALDATE"])
            small = [u for u in chunk if u in meta and int(meta[u].get(b"RFC822.SIZE", 0)) <= whole_cap]
            big = [u for u in chunk if u in meta and u not in small]
            bodies = self._call(self.client.fetch, small, ["BODY.PEEK[]"]) if small else {}
            # big ones: the header and the structure first, then only the parts a classifier reads
            shapes = self._call(self.client.fetch, big, ["BODYSTRUCTURE", "BODY.PEEK[HEADER]"]) if big else {}
            for uid in chunk:
                data = meta.get(uid)
                if data is None:  # expunged meanwhile
                    continue
                size = int(data.get(b"RFC822.SIZE", 0))
                when = data.get(b"INTERNALDATE")
                when = (
                    when.astimezone(UTC)
                    if isinstance(when, datetime) and when.tzinfo
                    else (when.replace(tzinfo=UTC) if isinstance(when, datetime) else None)
                )
                if uid in bodies and b"BODY[]" in bodies[uid]:
                    raw = bytes(bodies[uid][b"BODY[]"])
                    truncated = False
                else:
                    shape = shapes.get(uid, {})
                    raw = self._parts(
                        uid, bytes(shape.get(b"BODY[HEADER]", b"")), shape.get(b"BODYSTRUCTURE"), part_cap
                    )
                    truncated = True
                self.bytes_fetched += len(raw)
                yield FetchedMessage(uid, size, raw, truncated, when)

    def _parts(self, uid: int, header: bytes, structure: Any, cap: int) -> bytes:
        """A big message rebuilt from its header and the parts a classifier reads."""
        if structure is None or not getattr(structure, "is_multipart", False):
            got = self._call(self.client.fetch, [uid], [f"BODY.PEEK[TEXT]<0.{cap}>"])
            text = _first_body(got.get(uid, {}))
            return header + text
        boundary = _param(structure, b"boundary") or b"tabmail-part"
        wanted = list(_needed_parts(structure))
        if not wanted:
            return header + b"--" + boundary + b"--\r\n"
        items: list[str] = []
        for number, kind in wanted:
            items.append(f"BODY.PEEK[{number}.MIME]")
            items.append(
                f"BODY.PEEK[{number}.HEADER]" if kind == "rfc822" else f"BODY.PEEK[{number}]<0.{cap}>"
            )
        got = self._call(self.client.fetch, [uid], items).get(uid, {})
        out = [header]
        for number, kind in wanted:
            mime = bytes(got.get(f"BODY[{number}.MIME]".encode(), b""))
            if kind == "rfc822":
                body = bytes(got.get(f"BODY[{number}.HEADER]".encode(), b""))
            else:
                body = bytes(got.get(f"BODY[{number}]<0>".encode(), got.get(f"BODY[{number}]".encode(), b"")))
            out.append(b"--" + boundary + b"\r\n" + mime + body + b"\r\n")
        out.append(b"--" + boundary + b"--\r\n")
        return b"".join(out)

    # -- waiting and moving ----------------------------------------------------------------------
    def idle_wait(
        self,
        seconds: float,
        stop: Callable[[], bool] | None = None,
        started: Callable[[], bool] | None = None,
    ) -> bool:
        """IDLE for up to ``seconds``; True when the server announced new mail. Listens in
        slices of half a second so ``stop()`` (the app closing) ends the wait promptly.

        ``started`` is called once IDLE runs; True ends the wait as news. It is for mail that
        reached the server just before IDLE started: the server announces it together with its
        "+ idling" answer, the announcement lands in the connection's read buffer with that
        answer, and a poll of the socket never sees it (imapclient's ``idle_check`` looks only
        at the socket). The caller looks for such mail another way (a connection of its own).

        Raises ImapOffline as soon as the connection is gone: the server said BYE (a restart,
        an administrator's kick, its own timeout) or hung up. imapclient's ``idle_check``
        answers an empty list at once for a closed connection, which looks like "nothing new";
        an empty answer that came early is therefore checked by ending IDLE (DONE): a live
        server answers, and IDLE starts again; a closed connection fails."""
        client = self.client
        deadline = time.monotonic() + seconds
        self._call(client.idle)
        idling = True
        try:
            if started is not None and started():
                return True
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or (stop is not None and stop()):
                    return False
                slice_ = min(left, IDLE_SLICE)
                began = time.monotonic()
                responses = self._call(client.idle_check, timeout=slice_)
                if _news(responses):
                    return True
                _raise_on_bye(responses, self.settings.host)
                if responses or time.monotonic() - began >= slice_ / 2:
                    continue
                # the socket was readable but held no whole response: a closed connection
                # (or a response still arriving): DONE tells which
                idling = False
                _text, pending = self._call(client.idle_done)
                if _news(pending):
                    return True
                _raise_on_bye(pending, self.settings.host)
                self._call(client.idle)
                idling = True
        finally:
            if idling:
                try:
                    self._call(client.idle_done)
                except (ImapOffline, ImapProblem):
                    pass

    def noop(self) -> None:
        self._call(self.client.noop)

    def move(self, uids: Sequence[int], folder: str) -> None:
        """Only with an opted-in processed folder (the folder was opened read-write for it)."""
        if not uids:
            return
        client = self.client
        if not self._call(client.folder_exists, folder):
            self._call(client.create_folder, folder)
        if client.has_capability("MOVE"):
            self._call(client.move, list(uids), folder)
        else:
            self._call(client.copy, list(uids), folder)
            self._call(client.delete_messages, list(uids))
            self._call(client.uid_expunge, list(uids))


def _news(responses: Sequence[Any]) -> bool:
    """Did IDLE announce new mail (EXISTS, or RECENT on older servers)?"""
    return any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses)


def _raise_on_bye(responses: Sequence[Any], host: str) -> None:
    for r in responses:
        if r and r[0] == b"BYE":
            said = " ".join(_text(part) for part in r[1:])[:200] or "no reason given"
            raise ImapOffline(f"{host} closed the connection ({said})")


def _needed_parts(structure: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(part number, "text" | "report" | "rfc822") for the parts a classifier reads."""
    texts = 0
    parts = structure[0]
    for i, part in enumerate(parts, start=1):
        number = f"{prefix}{i}"
        if getattr(part, "is_multipart", False):
            yield from _needed_parts(part, number + ".")
            continue
        ctype = (_text(part[0]) + "/" + _text(part[1])).lower()
        if ctype in (
            "message/delivery-status",
            "message/global-delivery-status",
            "message/feedback-report",
            "text/rfc822-headers",
        ):
            yield number, "report"
        elif ctype in ("message/rfc822", "message/global"):
            yield number, "rfc822"
        elif ctype in ("text/plain", "text/html") and texts < MAX_TEXT_PARTS:
            texts += 1
            yield number, "text"


def _param(structure: Any, name: bytes) -> bytes | None:
    """A parameter of a multipart's Content-Type from BODYSTRUCTURE (params follow the subtype)."""
    try:
        params = structure[2]
    except (IndexError, TypeError):
        return None
    if not isinstance(params, tuple):
        return None
    for key, value in zip(params[::2], params[1::2], strict=False):
        if isinstance(key, bytes) and key.lower() == name and isinstance(value, bytes):
            return value
    return None


def _text(value: Any) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value or "")


def _first_body(data: dict[bytes, Any]) -> bytes:
    for key, value in data.items():
        if key.startswith(b"BODY[") and isinstance(value, bytes):
            return value
    return b""


def _clean(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, socket.timeout):
        return "timed out"
    return " ".join(text.split())[:300] or type(exc).__name__
