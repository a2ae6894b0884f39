"""One Tabbycat site over HTTP: sessions, one GET at a time within its deadlines and size limits,
pagination, and the errors a director reads (never containing the token).

``TabbycatClient`` (importers/tabbycat.py) owns one ``TabbycatHttp`` and turns the answers into
an import; everything about a single request lives here.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection

from tabmail.domain.errors import TabmailError
from tabmail.domain.text import human_size

TOKEN_HELP = "store one with `tabmail secret set tabbycat-token`, or set TABMAIL_TABBYCAT_TOKEN for this run"
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class TabbycatLimits:
    """How long and how much one import may take (docs/limits.md). A real tournament stays far
    below every one; they stop a broken or hostile server from holding the import forever or
    filling the memory."""

    request_seconds: float = 120.0  # one answer, however slowly it trickles in
    import_seconds: float = 600.0  # the whole import (setting tabbycat.import_timeout_seconds)
    max_pages: int = 1_000  # pages of one paginated list
    response_bytes: int = 8 * MIB  # one answer's JSON (a 400-team tournament's teams: ~1.5 MB)
    import_bytes: int = 32 * MIB  # every answer of one import together
    import_values: int = 2_000_000  # JSON values (objects, lists, scalars) of one import


class TabbycatError(TabmailError):
    """The site could not be read. ``status`` is the HTTP status when there was one.

    The message names the URL and never contains the token. ``reason`` is the short cause
    ("HTTP 500", "connection refused"), for problem lines that already name the URL. ``fatal``
    errors (the import's own deadline or size budget) stop the whole import even where a failed
    request would otherwise only be a problem line.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        url: str | None = None,
        reason: str | None = None,
        fatal: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.reason = reason or message  # short, for a problem line that already names the URL
        self.fatal = fatal


def server_detail(raw: bytes) -> str:
    """The server's own one-line explanation (DRF's ``detail``), if any."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return ""
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return " ".join(body["detail"].split())[:200]
    return ""


def network_reason(exc: Exception, timeout: float) -> str:
    text = str(exc)
    if isinstance(exc, requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, requests.exceptions.SSLError):
        return "its TLS certificate could not be verified"
    if "Connection refused" in text or "Errno 111" in text or "WinError 10061" in text:
        return "connection refused"
    if "Name or service not known" in text or "getaddrinfo failed" in text or "nodename nor servname" in text:
        return "the name does not resolve"
    if "Connection reset" in text or "RemoteDisconnected" in text or "Connection aborted" in text:
        return "the connection was dropped"
    return type(exc).__name__


# -- a watchdog for each request ----------------------------------------------------------------
# Requests' timeout applies to each read of the socket, so a server sending its status line and
# headers a byte at a time would never time out. Each request therefore runs under a timer that,
# at its deadline, shuts down the socket the request is using; the connection classes below tell
# the timer which socket that is.
_IN_FLIGHT = threading.local()


class _Watched:
    """The connection one thread's request is using, and the timer's cut of it."""

    __slots__ = ("conn", "cut")

    def __init__(self) -> None:
        self.conn: HTTPConnection | None = None
        self.cut = False

    def use(self, conn: HTTPConnection) -> None:
        self.conn = conn
        if self.cut:  # the deadline passed while connecting
            self.shut()

    def shut(self) -> None:
        self.cut = True
        sock = getattr(self.conn, "sock", None)
        if sock is not None:
            try:  # the plain socket's shutdown: a blocked read (TLS or not) returns at once
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass


def _watch(conn: HTTPConnection) -> None:
    watched: _Watched | None = getattr(_IN_FLIGHT, "watched", None)
    if watched is not None:
        watched.use(conn)


class _WatchedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class TabbycatHttp:
    """Requests to one site (``base_url``, already normalised) with one ``token`` or none.

    Thread-safe: each worker thread gets its own ``requests.Session``. While an import runs
    (between ``begin_import`` and ``end_import``) every request also counts against the
    import's deadline and size budgets."""

    def __init__(self, base_url: str, token: str | None, *, timeout: float, limits: TabbycatLimits) -> None:
        self.base_url = base_url
        self._token = token
        self.timeout = timeout
        self.limits = limits
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._import_deadline: float | None = None  # monotonic time, while an import runs
        self._bytes_read = 0
        self._values_read = 0

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
            self._local = threading.local()
        for session in sessions:
            session.close()

    def begin_import(self) -> None:
        with self._lock:
            self._bytes_read = self._values_read = 0
        self._import_deadline = time.monotonic() + self.limits.import_seconds

    def end_import(self) -> None:
        self._import_deadline = None

    def session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["Accept"] = "application/json"
            if self._token:
                session.headers["Authorization"] = f"Token {self._token}"
            session.mount("http://", _WatchedAdapter(pool_connections=2, pool_maxsize=2))
            session.mount("https://", _WatchedAdapter(pool_connections=2, pool_maxsize=2))
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def error(
        self,
        message: str,
        *,
        status: int | None = None,
        url: str | None = None,
        reason: str | None = None,
        fatal: bool = False,
    ) -> TabbycatError:
        if self._token:  # belt and braces: a server could echo it back in a detail
            message = message.replace(self._token, "[token]")
            reason = reason.replace(self._token, "[token]") if reason else None
        return TabbycatError(message, status=status, url=url, reason=reason, fatal=fatal)

    def _same_origin(self, url: str) -> str:
        """Keep path and query, but always talk to the origin we were given."""
        ours, theirs = urlsplit(self.base_url), urlsplit(url)
        return urlunsplit((ours.scheme, ours.netloc, theirs.path, theirs.query, ""))

    def _get(self, url: str, what: str) -> tuple[Any, requests.Response]:
        """GET and decode JSON. Raises TabbycatError for anything but a 2xx JSON answer that
        arrived within the deadlines and the size limits."""
        deadline, over = self._deadline()
        if time.monotonic() >= deadline:  # queued behind requests that used up the import's time
            raise self._over_time(url, what, over)
        wait = max(0.1, min(self.timeout, deadline - time.monotonic()))
        watched = _IN_FLIGHT.watched = _Watched()
        timer = threading.Timer(max(0.0, deadline - time.monotonic()), watched.shut)
        timer.daemon = True
        timer.start()
        try:
            try:
                resp = self.session().get(url, timeout=wait, stream=True)
            except requests.RequestException as exc:
                raise self._unreachable(exc, url, deadline, over, what) from None
            try:
                status = resp.status_code
                ok = 200 <= status < 300
                # An error's body is only read for its one-line explanation: its start is enough.
                limit = self.limits.response_bytes if ok else 65536
                raw = self._read(resp, url, what, deadline, over, limit, ok)
            finally:
                resp.close()
        finally:
            timer.cancel()
            _IN_FLIGHT.watched = None
        if not ok:
            raise self.status_error(status, raw, url, what)
        return self._decode(raw, resp, url, what), resp

    def _deadline(self) -> tuple[float, str]:
        """(when the current request must be complete, which deadline that is)."""
        request = time.monotonic() + self.limits.request_seconds
        if self._import_deadline is not None and self._import_deadline < request:
            return self._import_deadline, "import"
        return request, "request"

    def _over_time(self, url: str, what: str, over: str) -> TabbycatError:
        if over == "import":
            seconds = self.limits.import_seconds
            return self.error(
                f"the import from {self.base_url} took longer than {seconds:g} s (setting "
                f"tabbycat.import_timeout_seconds) and was stopped while reading {what} from {url}",
                url=url,
                reason=f"the import took longer than {seconds:g} s",
                fatal=True,
            )
        seconds = self.limits.request_seconds
        return self.error(
            f"{url} did not finish answering for {what} within {seconds:g} s; stopped waiting",
            url=url,
            reason=f"no complete answer within {seconds:g} s",
        )

    def _unreachable(self, exc: Exception, url: str, deadline: float, over: str, what: str) -> TabbycatError:
        if time.monotonic() >= deadline:
            return self._over_time(url, what, over)
        reason = network_reason(exc, self.timeout)
        return self.error(f"cannot reach {self.base_url}: {reason}", url=url, reason=reason)

    def _read(
        self,
        resp: requests.Response,
        url: str,
        what: str,
        deadline: float,
        over: str,
        limit: int,
        whole: bool = True,
    ) -> bytes:
        """The body, read as it arrives: stopped at the deadline (a server trickling a byte at a
        time never finishes) and past ``limit`` bytes (after decompression): an error when the
        ``whole`` body is needed, else the first ``limit`` bytes."""
        length = resp.headers.get("Content-Length", "")
        if whole and length.isdigit() and int(length) > limit:
            raise self._too_big(url, what, resp.status_code, limit)
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                if time.monotonic() >= deadline:
                    raise self._over_time(url, what, over)
                chunk = resp.raw.read1(256 * 1024, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                chunks.append(chunk)
                if size > limit:
                    if whole:
                        raise self._too_big(url, what, resp.status_code, limit)
                    return b"".join(chunks)[:limit]
        except (urllib3.exceptions.HTTPError, OSError, requests.RequestException) as exc:
            raise self._unreachable(exc, url, deadline, over, what) from None
        self._spend(url, what, size, 0)
        return b"".join(chunks)

    def _too_big(self, url: str, what: str, status: int, limit: int) -> TabbycatError:
        return self.error(
            f"{url} answered with more than {human_size(limit)} for {what}; tabmail reads at most "
            f"{human_size(limit)} per answer (a whole tournament's largest list is far smaller)",
            status=status,
            url=url,
            reason=f"answer larger than {human_size(limit)}",
        )

    def _spend(self, url: str, what: str, size: int, values: int) -> None:
        """Count an answer against the import's budgets; past one, the import stops."""
        with self._lock:
            self._bytes_read += size
            self._values_read += values
            total_bytes, total_values = self._bytes_read, self._values_read
        if self._import_deadline is None:
            return
        if total_bytes > self.limits.import_bytes:
            budget = human_size(self.limits.import_bytes)
        elif total_values > self.limits.import_values:
            budget = f"{self.limits.import_values:,} JSON values"
        else:
            return
        raise self.error(
            f"{self.base_url} sent more than {budget} for one tournament (stopped at {what}, {url}); "
            "tabmail imports tournaments up to that size (docs/limits.md)",
            url=url,
            reason=f"the import went past {budget}",
            fatal=True,
        )

    def _decode(self, raw: bytes, resp: requests.Response, url: str, what: str) -> Any:
        # An upper bound on the values the text holds, counted before anything is built from it.
        self._spend(url, what, 0, raw.count(b",") + raw.count(b"{") + raw.count(b"[") + 1)
        try:
            return json.loads(raw)
        except RecursionError:
            raise self.error(
                f"{url} answered with JSON nested too deeply to read for {what}",
                status=resp.status_code,
                url=url,
                reason="JSON nested too deeply",
            ) from None
        except ValueError:
            ctype = resp.headers.get("Content-Type", "no content type").split(";")[0]
            raise self.error(
                f"{url} did not answer with JSON ({ctype}) for {what}; is {self.base_url} a Tabbycat site?",
                status=resp.status_code,
                url=url,
                reason=f"not JSON ({ctype})",
            ) from None

    def status_error(self, status: int, raw: bytes, url: str, what: str) -> TabbycatError:
        detail = server_detail(raw)
        said = f" (it said: {detail})" if detail else ""
        if status == 401 and self._token:
            message = (
                f"{self.base_url} refused the Tabbycat token{said}; store a valid one with "
                "`tabmail secret set tabbycat-token`, or set TABMAIL_TABBYCAT_TOKEN for this run "
                "(a site with its API switched off answers the same way)"
            )
        elif status == 401:
            message = f"{self.base_url} needs a Tabbycat API token to show {what}{said}; {TOKEN_HELP}"
        elif status == 403:
            message = (
                f"{self.base_url} does not let this token read {what}{said}; use the token of an admin "
                "(superuser) account, shown under Change Password on the site's home page"
            )
        else:
            message = f"{url} answered HTTP {status} for {what}{said}"
        return self.error(message, status=status, url=url, reason=f"HTTP {status}{said}")

    def get_object(self, url: str, what: str) -> dict[str, Any]:
        body, resp = self._get(url, what)
        if not isinstance(body, dict):
            raise self._shape(url, what, f"a JSON {type(body).__name__} where an object was expected", resp)
        return body

    def get_list(self, url: str, what: str) -> list[Any]:
        """A list endpoint, following ``Link: rel="next"`` pages when the server paginates. Its
        items are checked one by one later (BundleBuilder skips what is not an object)."""
        items: list[Any] = []
        seen: set[str] = set()
        next_url: str | None = url
        while next_url is not None:
            if next_url in seen:
                raise self.error(
                    f"{url} keeps paginating back to {next_url} for {what}; stopped",
                    url=url,
                    reason=f"pagination loops back to {next_url}",
                )
            if len(seen) >= self.limits.max_pages:
                pages = f"{self.limits.max_pages:,}"
                raise self.error(
                    f"{url} still offered another page of {what} after {pages} pages; stopped "
                    f"there and imported none of it (no Tabbycat list has that many pages)",
                    url=url,
                    reason=f"still paginating after {pages} pages",
                )
            seen.add(next_url)
            body, resp = self._get(next_url, what)
            if not isinstance(body, list):
                raise self._shape(
                    next_url, what, f"a JSON {type(body).__name__} where a list was expected", resp
                )
            if body and not any(isinstance(item, dict) for item in body):  # not Tabbycat's at all
                problem = f"item 0 is a {type(body[0]).__name__}, not an object"
                raise self._shape(next_url, what, problem, resp)
            items.extend(body)
            link = resp.links.get("next", {}).get("url")
            next_url = self._same_origin(link) if link else None
        return items

    def _shape(self, url: str, what: str, problem: str, resp: requests.Response) -> TabbycatError:
        return self.error(
            f"{url} answered with an unexpected shape for {what}: {problem}",
            status=resp.status_code,
            url=url,
            reason=f"unexpected shape: {problem}",
        )
