"""Read a whole tournament from a Tabbycat site's REST API (v1, Tabbycat 2.9 to 2.11).

Blocking (requests): the services run it off the event loop. The per-round and per-debate
requests go through a small thread pool, each worker thread with its own ``requests.Session``.
Relations arrive as absolute URLs; only their trailing ids are used, and every request goes to
the origin the director typed, so a proxy's wrong host in a ``Link`` header never receives the
token. Every field is treated as optional: a non-admin token hides contact details and private
URL keys, which the bundle marks as unknown so the store keeps what it had.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from tabmail.domain.config import is_loopback_host
from tabmail.domain.errors import TabmailError
from tabmail.domain.imported import ImportBundle
from tabmail.domain.text import human_size
from tabmail.importers.tabbycat_bundle import BundleBuilder, tail_id, text_of

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
T = TypeVar("T")

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


def normalise_base_url(url: str) -> str:
    """The site's origin (plus any path prefix) without a trailing ``/api`` or slash."""
    text = url.strip()
    if not text:
        raise TabbycatError("no Tabbycat address given")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TabbycatError(f"{url!r} is not a web address (expected e.g. https://mytourney.herokuapp.com)")
    path = parts.path.rstrip("/")
    for suffix in ("/api/v1", "/api"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def refuse_plain_http(base_url: str, *, insecure: bool) -> None:
    """Plain http:// only to this machine, or when the director accepts it (``insecure``): the
    API token (and every participant's address) would otherwise cross the network in clear."""
    parts = urlsplit(base_url)
    if parts.scheme == "http" and not insecure and not is_loopback_host(parts.netloc):
        raise TabbycatError(
            f"refusing {base_url}: over plain http:// the Tabbycat token and the participants' "
            "addresses would travel in clear; use https://, or pass --insecure to accept that"
        )


def _detail(raw: bytes) -> str:
    """The server's own one-line explanation (DRF's ``detail``), if any."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return ""
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return " ".join(body["detail"].split())[:200]
    return ""


def _network_reason(exc: Exception, timeout: float) -> str:
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


class TabbycatClient:
    """One Tabbycat site. ``token`` is an API token (admin for contact details), or None."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        insecure: bool = False,
        timeout: float = 30.0,
        workers: int = 8,
        limits: TabbycatLimits | None = None,
    ) -> None:
        self.base_url = normalise_base_url(base_url)
        refuse_plain_http(self.base_url, insecure=insecure)
        self._api = f"{self.base_url}/api"
        token = (token or "").strip()  # a pasted token often brings a newline along
        if token and not (token.isascii() and token.isprintable() and " " not in token):
            raise TabbycatError(
                "the Tabbycat token contains spaces or unusual characters; copy it again from the "
                f"site and {TOKEN_HELP}"
            )
        self._token = token or None
        self._timeout = timeout
        self._workers = max(1, workers)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self.limits = limits or TabbycatLimits()
        self._import_deadline: float | None = None  # monotonic time, while an import runs
        self._bytes_read = 0
        self._values_read = 0
        self.version: str | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
            self._local = threading.local()
        for session in sessions:
            session.close()

    def __enter__(self) -> TabbycatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["Accept"] = "application/json"
            if self._token:
                session.headers["Authorization"] = f"Token {self._token}"
            session.mount("http://", HTTPAdapter(pool_connections=2, pool_maxsize=2))
            session.mount("https://", HTTPAdapter(pool_connections=2, pool_maxsize=2))
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    # -- one request -----------------------------------------------------------------------
    def _error(
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
        wait = max(0.1, min(self._timeout, deadline - time.monotonic()))
        try:
            resp = self._session().get(url, timeout=wait, stream=True)
        except requests.RequestException as exc:
            raise self._unreachable(exc, url, deadline, over, what) from None
        try:
            status = resp.status_code
            ok = 200 <= status < 300
            # An error's body is only read for its one-line explanation: its start is enough.
            raw = self._read(resp, url, what, deadline, over, self.limits.response_bytes if ok else 65536, ok)
        finally:
            resp.close()
        if not ok:
            raise self._status_error(status, raw, url, what)
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
            return self._error(
                f"the import from {self.base_url} took longer than {seconds:g} s (setting "
                f"tabbycat.import_timeout_seconds) and was stopped while reading {what} from {url}",
                url=url,
                reason=f"the import took longer than {seconds:g} s",
                fatal=True,
            )
        seconds = self.limits.request_seconds
        return self._error(
            f"{url} did not finish answering for {what} within {seconds:g} s; stopped waiting",
            url=url,
            reason=f"no complete answer within {seconds:g} s",
        )

    def _unreachable(self, exc: Exception, url: str, deadline: float, over: str, what: str) -> TabbycatError:
        if time.monotonic() >= deadline:
            return self._over_time(url, what, over)
        reason = _network_reason(exc, self._timeout)
        return self._error(f"cannot reach {self.base_url}: {reason}", url=url, reason=reason)

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
        return self._error(
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
        raise self._error(
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
            raise self._error(
                f"{url} answered with JSON nested too deeply to read for {what}",
                status=resp.status_code,
                url=url,
                reason="JSON nested too deeply",
            ) from None
        except ValueError:
            ctype = resp.headers.get("Content-Type", "no content type").split(";")[0]
            raise self._error(
                f"{url} did not answer with JSON ({ctype}) for {what}; is {self.base_url} a Tabbycat site?",
                status=resp.status_code,
                url=url,
                reason=f"not JSON ({ctype})",
            ) from None

    def _status_error(self, status: int, raw: bytes, url: str, what: str) -> TabbycatError:
        detail = _detail(raw)
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
        return self._error(message, status=status, url=url, reason=f"HTTP {status}{said}")

    def _object(self, url: str, what: str) -> dict[str, Any]:
        body, resp = self._get(url, what)
        if not isinstance(body, dict):
            raise self._shape(url, what, f"a JSON {type(body).__name__} where an object was expected", resp)
        return body

    def _list(self, url: str, what: str) -> list[Any]:
        """A list endpoint, following ``Link: rel="next"`` pages when the server paginates. Its
        items are checked one by one later (BundleBuilder skips what is not an object)."""
        items: list[Any] = []
        seen: set[str] = set()
        next_url: str | None = url
        while next_url is not None:
            if next_url in seen:
                raise self._error(
                    f"{url} keeps paginating back to {next_url} for {what}; stopped",
                    url=url,
                    reason=f"pagination loops back to {next_url}",
                )
            if len(seen) >= self.limits.max_pages:
                pages = f"{self.limits.max_pages:,}"
                raise self._error(
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
        return self._error(
            f"{url} answered with an unexpected shape for {what}: {problem}",
            status=resp.status_code,
            url=url,
            reason=f"unexpected shape: {problem}",
        )

    # -- the import ------------------------------------------------------------------------
    def set_email(self, slug: str, role: str, person_id: str, email: str) -> None:
        """Write a corrected address back to Tabbycat (PATCH the speaker or adjudicator).

        ``role`` is "speaker" or "adjudicator"; ``person_id`` Tabbycat's id. Raises TabbycatError
        with the site's own words when it refuses (a token without write permission: 403)."""
        kind = {"speaker": "speakers", "adjudicator": "adjudicators"}.get(role)
        if kind is None or not person_id.isdigit():
            raise self._error(f"cannot write back to Tabbycat: no Tabbycat {role} with id {person_id!r}")
        url = f"{self.base_url}/api/v1/tournaments/{quote(slug, safe='')}/{kind}/{person_id}"
        what = f"the address of {role} {person_id}"
        try:
            resp = self._session().patch(url, json={"email": email}, timeout=self._timeout)
        except requests.RequestException as exc:
            reason = _network_reason(exc, self._timeout)
            raise self._error(f"cannot reach {self.base_url}: {reason}", url=url, reason=reason) from None
        if resp.status_code == 403:
            detail = _detail(resp.content)
            said = f" (it said: {detail})" if detail else ""
            raise self._error(
                f"{self.base_url} does not let this token change addresses{said}; write-back needs an "
                "admin (superuser) token",
                status=403,
                url=url,
                reason=f"HTTP 403{said}",
            )
        if not 200 <= resp.status_code < 300:
            raise self._status_error(resp.status_code, resp.content, url, what)

    def fetch_tournament(self, slug: str, progress: Progress | None = None) -> ImportBundle:
        """Everything tabmail keeps about one tournament, as an ImportBundle.

        Raises TabbycatError when the site, the token or the tournament cannot be used. Ballots,
        motions, venues, institutions and single rounds are best-effort: a failure there becomes
        an ImportProblem in the bundle (naming the URL) and the rest is imported; so is a record
        whose data cannot be read. The whole import stops at ``limits.import_seconds`` and past
        the size budgets (TabbycatLimits), naming the request it was reading.
        """
        with self._lock:
            self._bytes_read = self._values_read = 0
        self._import_deadline = time.monotonic() + self.limits.import_seconds
        try:
            return self._fetch(slug, progress)
        finally:
            self._import_deadline = None

    def _fetch(self, slug: str, progress: Progress | None) -> ImportBundle:
        report: Progress = progress or (lambda _stage, _done, _total: None)
        slug = slug.strip().strip("/")
        tpath = f"{self._api}/v1/tournaments/{quote(slug, safe='')}"

        report("connecting", 0, 1)
        try:
            root = self._object(self._api, "the API root")
        except TabbycatError as exc:
            if exc.status != 404:
                raise
            raise self._error(
                f"{self.base_url} has no Tabbycat API (GET /api answered HTTP 404); check the address",
                status=404,
                url=self._api,
            ) from None
        self.version = str(root.get("version")) if root.get("version") is not None else None
        log.info("Tabbycat %s at %s", self.version or "(unknown version)", self.base_url)
        report("connecting", 1, 1)

        tournament = self._tournament(tpath, slug)
        builder = BundleBuilder(slug, tournament, self.base_url)
        urls = {
            name: f"{tpath}/{name}" for name in ("teams", "adjudicators", "rounds", "institutions", "venues")
        }
        with self._pool() as pool:
            futures = {pool.submit(self._list, url, f"the {name}"): name for name, url in urls.items()}
            lists: dict[str, list[dict[str, Any]]] = {}
            for done, future in enumerate(as_completed(futures), 1):
                name = futures[future]
                try:
                    lists[name] = future.result()
                except TabbycatError as exc:
                    # Rooms and institutions are nice to have; people and rounds are not.
                    if name not in ("institutions", "venues") or exc.status in (None, 401) or exc.fatal:
                        raise
                    builder.problem(urls[name], f"{name} not imported: {exc.reason}")
                    lists[name] = []
                report("participants", done, len(futures))

            builder.add_institutions(lists["institutions"], urls["institutions"])
            builder.add_venues(lists["venues"], urls["venues"])
            builder.add_teams(lists["teams"], urls["teams"])
            builder.add_adjudicators(lists["adjudicators"], urls["adjudicators"])
            rounds = builder.add_rounds(lists["rounds"], urls["rounds"])
            if builder.rounds_missing_motions:
                try:
                    builder.add_motions(self._list(f"{tpath}/motions", "the motions"), f"{tpath}/motions")
                except TabbycatError as exc:
                    if exc.status in (None, 401) or exc.fatal:
                        raise
                    builder.problem(f"{tpath}/motions", f"motions not imported: {exc.reason}")

            self._extras(pool, builder, tpath)
            drawn = [r for r in rounds if text_of(r.get("draw_status")) not in ("", "N")]
            availabilities = self._each(
                pool,
                report,
                "availabilities",
                [(r, f"{tpath}/rounds/{r['seq']}/availabilities") for r in drawn],
                lambda item: self._list(item[1], f"the availabilities of round {item[0]['seq']}"),
            )
            for (rnd, url), avail in availabilities:
                if isinstance(avail, TabbycatError):
                    self._optional_failed(builder, url, "availabilities", avail)
                else:
                    builder.add_availabilities(int(rnd["seq"]), avail)
            pairings = self._each(
                pool,
                report,
                "draws",
                [(r, f"{tpath}/rounds/{r['seq']}/pairings") for r in drawn],
                lambda item: self._list(
                    item[1], f"the draw of {text_of(item[0].get('name')) or item[0]['seq']}"
                ),
            )
            debates: list[tuple[int, str, str]] = []
            for (rnd, url), result in pairings:
                seq = int(rnd["seq"])
                if isinstance(result, TabbycatError):
                    if result.status in (None, 401) or result.fatal:
                        raise result
                    builder.problem(
                        url, f"draw of {text_of(rnd.get('name')) or seq} not imported: {result.reason}"
                    )
                    continue
                for pairing in builder.add_pairings(seq, result, url):
                    # A debate whose result status is "none" never had a ballot entered.
                    if pairing.get("result_status") != "N":
                        key = str(tail_id(pairing))
                        debates.append((seq, key, f"{tpath}/rounds/{seq}/pairings/{key}/ballots"))

            ballots = self._each(
                pool,
                report,
                "ballots",
                debates,
                lambda item: self._list(item[2], f"the ballots of debate {item[1]}"),
            )
            for (seq, key, url), result in ballots:
                if isinstance(result, TabbycatError):
                    if result.fatal:
                        raise result
                    builder.problem(
                        url, f"ballots of debate {key} (round {seq}) not imported: {result.reason}"
                    )
                else:
                    builder.add_ballots(key, result, url)
        return builder.finish()

    def _extras(self, pool: ThreadPoolExecutor, builder: BundleBuilder, tpath: str) -> None:
        """Break categories, the publicity preference and the team standings: nice to have for
        registrations and team points; a site or token that refuses them imports without."""
        extras = {
            "break-categories": builder.add_break_categories,
            "preferences": builder.add_preferences,
            "teams/standings": builder.add_team_standings,
        }
        futures = {pool.submit(self._list, f"{tpath}/{name}", f"the {name}"): name for name in extras}
        for future in as_completed(futures):
            name = futures[future]
            try:
                extras[name](future.result())
            except TabbycatError as exc:
                self._optional_failed(builder, f"{tpath}/{name}", name, exc)

    @staticmethod
    def _optional_failed(builder: BundleBuilder, url: str, what: str, exc: TabbycatError) -> None:
        if exc.fatal or exc.status == 401:
            raise exc
        if exc.status in (403, 404):  # not shown to this token, or an older site: fine
            log.info("%s not imported from %s: %s", what, url, exc.reason)
            return
        builder.problem(url, f"{what} not imported: {exc.reason}")

    def _tournament(self, tpath: str, slug: str) -> dict[str, Any]:
        try:
            return self._object(tpath, f"tournament {slug}")
        except TabbycatError as exc:
            if exc.status != 404:
                raise
        try:
            listed = self._list(f"{self._api}/v1/tournaments", "the tournaments")
            known = [text_of(t.get("slug")) for t in listed if isinstance(t, dict)]
        except TabbycatError as exc:
            if exc.fatal:
                raise
            known = []
        listing = f"; the site has: {', '.join(known)}" if known else ""
        raise self._error(f"no tournament {slug!r} at {self.base_url}{listing}", status=404, url=tpath)

    @contextmanager
    def _pool(self) -> Iterator[ThreadPoolExecutor]:
        pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="tabbycat")
        try:
            yield pool
        finally:
            # On an error (or a progress callback cancelling), queued requests are dropped.
            pool.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _each(
        pool: ThreadPoolExecutor,
        report: Progress,
        stage: str,
        items: list[T],
        fetch: Callable[[T], list[dict[str, Any]]],
    ) -> list[tuple[T, list[dict[str, Any]] | TabbycatError]]:
        """Fetch one list per item in the pool; results in the items' order, errors as values."""
        futures: dict[Future[list[dict[str, Any]]], int] = {
            pool.submit(fetch, item): i for i, item in enumerate(items)
        }
        results: list[list[dict[str, Any]] | TabbycatError | None] = [None] * len(items)
        report(stage, 0, len(items))
        for done, future in enumerate(as_completed(futures), 1):
            try:
                results[futures[future]] = future.result()
            except TabbycatError as exc:
                results[futures[future]] = exc
            report(stage, done, len(items))
        return [(item, result) for item, result in zip(items, results, strict=True) if result is not None]
