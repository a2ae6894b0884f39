"""Read a whole tournament from a Tabbycat site's REST API (v1, Tabbycat 2.9 to 2.11).

Blocking (requests): the services run it off the event loop. The per-round and per-debate
requests go through a small thread pool, each worker thread with its own ``requests.Session``.
Relations arrive as absolute URLs; only their trailing ids are used, and every request goes to
the origin the director typed, so a proxy's wrong host in a ``Link`` header never receives the
token. Every field is treated as optional: a non-admin token hides contact details and private
URL keys, which the bundle marks as unknown so the store keeps what it had.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from tabmail.domain.config import is_loopback_host
from tabmail.domain.errors import TabmailError
from tabmail.domain.imported import (
    BallotData,
    DebateData,
    ImportBundle,
    ImportProblem,
    InstitutionData,
    PersonData,
    RoundData,
    SheetData,
    SheetTeamData,
    SpeechData,
    TeamData,
    TournamentData,
    VenueData,
)
from tabmail.domain.text import clean_name
from tabmail.domain.tournament import Position, Role

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
T = TypeVar("T")

TOKEN_HELP = "store one with `tabmail secret set tabbycat-token`, or set TABMAIL_TABBYCAT_TOKEN for this run"
_MAX_PAGES = 10_000


class TabbycatError(TabmailError):
    """The site could not be read. ``status`` is the HTTP status when there was one.

    The message names the URL and never contains the token. ``reason`` is the short cause
    ("HTTP 500", "connection refused"), for problem lines that already name the URL.
    """

    def __init__(
        self, message: str, *, status: int | None = None, url: str | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.reason = reason or message  # short, for a problem line that already names the URL


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


def _detail(resp: requests.Response) -> str:
    """The server's own one-line explanation (DRF's ``detail``), if any."""
    try:
        body = resp.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return " ".join(body["detail"].split())[:200]
    return ""


def _network_reason(exc: requests.RequestException, timeout: float) -> str:
    text = str(exc)
    if isinstance(exc, requests.Timeout):
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
        self, message: str, *, status: int | None = None, url: str | None = None, reason: str | None = None
    ) -> TabbycatError:
        if self._token:  # belt and braces: a server could echo it back in a detail
            message = message.replace(self._token, "[token]")
            reason = reason.replace(self._token, "[token]") if reason else None
        return TabbycatError(message, status=status, url=url, reason=reason)

    def _same_origin(self, url: str) -> str:
        """Keep path and query, but always talk to the origin we were given."""
        ours, theirs = urlsplit(self.base_url), urlsplit(url)
        return urlunsplit((ours.scheme, ours.netloc, theirs.path, theirs.query, ""))

    def _get(self, url: str, what: str) -> tuple[Any, requests.Response]:
        """GET and decode JSON. Raises TabbycatError for anything but a 2xx JSON answer."""
        try:
            resp = self._session().get(url, timeout=self._timeout)
        except requests.RequestException as exc:
            reason = _network_reason(exc, self._timeout)
            raise self._error(f"cannot reach {self.base_url}: {reason}", url=url, reason=reason) from None
        status = resp.status_code
        if not 200 <= status < 300:
            raise self._status_error(resp, url, what)
        try:
            body = resp.json()
        except ValueError:
            ctype = resp.headers.get("Content-Type", "no content type").split(";")[0]
            raise self._error(
                f"{url} did not answer with JSON ({ctype}) for {what}; is {self.base_url} a Tabbycat site?",
                status=status,
                url=url,
                reason=f"not JSON ({ctype})",
            ) from None
        return body, resp

    def _status_error(self, resp: requests.Response, url: str, what: str) -> TabbycatError:
        status, detail = resp.status_code, _detail(resp)
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

    def _list(self, url: str, what: str) -> list[dict[str, Any]]:
        """A list endpoint, following ``Link: rel="next"`` pages when the server paginates."""
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        next_url: str | None = url
        while next_url is not None:
            if next_url in seen or len(seen) >= _MAX_PAGES:
                raise self._error(f"{url} keeps paginating back to {next_url} for {what}", url=url)
            seen.add(next_url)
            body, resp = self._get(next_url, what)
            if not isinstance(body, list):
                raise self._shape(
                    next_url, what, f"a JSON {type(body).__name__} where a list was expected", resp
                )
            for i, item in enumerate(body):
                if not isinstance(item, dict):
                    raise self._shape(
                        next_url, what, f"item {i} is a {type(item).__name__}, not an object", resp
                    )
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
            detail = _detail(resp)
            said = f" (it said: {detail})" if detail else ""
            raise self._error(
                f"{self.base_url} does not let this token change addresses{said}; write-back needs an "
                "admin (superuser) token",
                status=403,
                url=url,
                reason=f"HTTP 403{said}",
            )
        if not 200 <= resp.status_code < 300:
            raise self._status_error(resp, url, what)

    def fetch_tournament(self, slug: str, progress: Progress | None = None) -> ImportBundle:
        """Everything tabmail keeps about one tournament, as an ImportBundle.

        Raises TabbycatError when the site, the token or the tournament cannot be used. Ballots,
        motions, venues, institutions and single rounds are best-effort: a failure there becomes
        an ImportProblem in the bundle (naming the URL) and the rest is imported.
        """
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
        builder = _BundleBuilder(slug, tournament, self.base_url)
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
                    if name not in ("institutions", "venues") or exc.status in (None, 401):
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
                    builder.add_motions(self._list(f"{tpath}/motions", "the motions"))
                except TabbycatError as exc:
                    if exc.status in (None, 401):
                        raise
                    builder.problem(f"{tpath}/motions", f"motions not imported: {exc.reason}")

            drawn = [r for r in rounds if _text(r.get("draw_status")) not in ("", "N")]
            pairings = self._each(
                pool,
                report,
                "draws",
                [(r, f"{tpath}/rounds/{r['seq']}/pairings") for r in drawn],
                lambda item: self._list(
                    item[1], f"the draw of {_text(item[0].get('name')) or item[0]['seq']}"
                ),
            )
            debates: list[tuple[int, str, str]] = []
            for (rnd, url), result in pairings:
                seq = int(rnd["seq"])
                if isinstance(result, TabbycatError):
                    if result.status in (None, 401):
                        raise result
                    builder.problem(
                        url, f"draw of {_text(rnd.get('name')) or seq} not imported: {result.reason}"
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
                    builder.problem(
                        url, f"ballots of debate {key} (round {seq}) not imported: {result.reason}"
                    )
                else:
                    builder.add_ballots(key, result, url)
        return builder.bundle

    def _tournament(self, tpath: str, slug: str) -> dict[str, Any]:
        try:
            return self._object(tpath, f"tournament {slug}")
        except TabbycatError as exc:
            if exc.status != 404:
                raise
        try:
            known = [str(t.get("slug")) for t in self._list(f"{self._api}/v1/tournaments", "the tournaments")]
        except TabbycatError:
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


def parse_time(value: Any) -> datetime | None:
    """An ISO time from Tabbycat as aware UTC; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def tail_id(value: Any) -> str | None:
    """The id at the end of a Tabbycat hyperlink (or an object's ``id``/``url``), as text."""
    if isinstance(value, dict):
        ident = value.get("id")
        if isinstance(ident, int) and not isinstance(ident, bool):
            return str(ident)
        value = value.get("url")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        last = urlsplit(value).path.rstrip("/").rsplit("/", 1)[-1]
        if last.isdigit():
            return last
    return None


def _side(value: Any) -> str:
    """og/oo/cg/co, aff/neg, or a numbered side as text; Tabbycat's -1 is a bye."""
    if isinstance(value, int) and not isinstance(value, bool):
        return "bye" if value == -1 else str(value)
    return "" if value is None else str(value)


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _name(value: Any) -> str:
    """A name as stored: no control characters (domain.text.clean_name)."""
    return clean_name(value) if isinstance(value, str) else _text(value)


def _motions_released(rnd: dict[str, Any]) -> bool | None:
    """Whether the round's motions are public; None when the site does not say."""
    if "motions_released" in rnd:
        return bool(rnd["motions_released"])
    if "motions_status" in rnd:  # 2.11: info slides can be released before the motions
        status = rnd["motions_status"]
        if isinstance(status, bool):
            return status
        return _text(status).upper() in {"R", "M", "RELEASED", "MOTIONS", "MOTIONS_RELEASED"}
    return None


class _BundleBuilder:
    """Turns Tabbycat's JSON into an ImportBundle, noting each thing it had to skip."""

    def __init__(self, slug: str, tournament: dict[str, Any], base_url: str) -> None:
        name = _name(tournament.get("name")) or slug
        self.bundle = ImportBundle(
            TournamentData(
                slug=_text(tournament.get("slug")) or slug,
                name=name,
                short_name=_name(tournament.get("short_name")) or name,
                source="tabbycat",
                source_url=base_url,
            )
        )
        self._rounds: dict[int, RoundData] = {}
        self._released: dict[int, bool | None] = {}
        self._motion_texts: dict[str, str] = {}
        self.rounds_missing_motions: set[int] = set()

    def problem(self, where: str, message: str) -> None:
        self.bundle.problems.append(ImportProblem(where, message))

    def _key(self, obj: dict[str, Any], what: str, where: str) -> str | None:
        key = tail_id(obj)
        if key is None:
            self.problem(where, f"skipped a {what} without an id ({_text(obj.get('name')) or 'no name'})")
        return key

    def add_institutions(self, items: list[dict[str, Any]], where: str) -> None:
        for obj in items:
            if (key := self._key(obj, "institution", where)) is not None:
                self.bundle.institutions.append(
                    InstitutionData(
                        key,
                        _name(obj.get("name")) or _name(obj.get("code")) or f"Institution {key}",
                        _name(obj.get("code")),
                        _text(obj.get("region")),
                    )
                )

    def add_venues(self, items: list[dict[str, Any]], where: str) -> None:
        for obj in items:
            if (key := self._key(obj, "room", where)) is not None:
                name = _name(obj.get("display_name")) or _name(obj.get("name")) or f"Room {key}"
                self.bundle.venues.append(VenueData(key, name))

    def add_teams(self, items: list[dict[str, Any]], where: str) -> None:
        for obj in items:
            key = self._key(obj, "team", where)
            if key is None:
                continue
            institution = tail_id(obj.get("institution"))
            short = _name(obj.get("short_name")) or _name(obj.get("reference")) or f"Team {key}"
            self.bundle.teams.append(
                TeamData(
                    key=key,
                    name=_name(obj.get("long_name")) or short,
                    short_name=short,
                    code_name=_name(obj.get("code_name")),
                    institution_key=institution,
                    emoji=_name(obj.get("emoji")),
                )
            )
            for speaker in obj.get("speakers") or []:
                if isinstance(speaker, dict):
                    self._person(speaker, Role.SPEAKER, where, key, institution)

    def add_adjudicators(self, items: list[dict[str, Any]], where: str) -> None:
        for obj in items:
            self._person(obj, Role.ADJUDICATOR, where, None, tail_id(obj.get("institution")))

    def _person(
        self, obj: dict[str, Any], role: Role, where: str, team_key: str | None, institution_key: str | None
    ) -> None:
        key = self._key(obj, role.value, where)
        if key is None:
            return
        email = _text(obj.get("email")) or None
        # Tabbycat drops contact fields for callers who may not see them, and sends a null
        # url_key to those who may not see private URLs: unknown, so the store keeps its own.
        url_key = _text(obj.get("url_key")) or None
        phone = obj.get("phone")
        self.bundle.people.append(
            PersonData(
                key=key,
                name=_name(obj.get("name")) or f"({role.value} {key})",
                role=role,
                email=email,
                team_key=team_key,
                institution_key=institution_key,
                url_key=url_key,
                phone=phone if isinstance(phone, str) else None,
                email_known="email" in obj,
                url_key_known=url_key is not None,
            )
        )

    def add_rounds(self, items: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
        """Adds the rounds; returns the usable round objects (with an integer ``seq``)."""
        usable: list[dict[str, Any]] = []
        for obj in items:
            seq = _int(obj.get("seq"))
            if seq is None:
                self.problem(
                    where, f"skipped a round without a number ({_text(obj.get('name')) or 'no name'})"
                )
                continue
            released = _motions_released(obj)
            motions: list[tuple[int, str, str]] = []
            for i, m in enumerate(obj.get("motions") or [], 1):
                if not isinstance(m, dict):
                    continue
                if (mid := tail_id(m)) is not None:
                    self._motion_texts[mid] = _text(m.get("text"))
                motions.append((_int(m.get("seq")) or i, _text(m.get("text")), _text(m.get("reference"))))
            if "motions" not in obj and released is not False:
                self.rounds_missing_motions.add(seq)
            # Unreleased motions stay out of tabmail, so no email can leak them early.
            rnd = RoundData(
                seq=seq,
                name=_name(obj.get("name")) or f"Round {seq}",
                abbreviation=_name(obj.get("abbreviation")),
                stage=_text(obj.get("stage")) or "P",
                draw_status=_text(obj.get("draw_status")) or "N",
                starts_at=parse_time(obj.get("starts_at")),
                motions=motions if released is not False else [],
            )
            self._rounds[seq] = rnd
            self._released[seq] = released
            self.bundle.rounds.append(rnd)
            obj = {**obj, "seq": seq}
            usable.append(obj)
        return usable

    def add_motions(self, items: list[dict[str, Any]]) -> None:
        """Motions from the tournament's motion list, for rounds that did not nest them."""
        for m in items:
            if (mid := tail_id(m)) is not None:
                self._motion_texts[mid] = _text(m.get("text"))
            for link in m.get("rounds") or []:
                seq = _int(tail_id(link.get("round"))) if isinstance(link, dict) else None
                if seq in self.rounds_missing_motions and self._released.get(seq) is not False:
                    rnd = self._rounds[seq]
                    mseq = _int(link.get("seq")) or len(rnd.motions) + 1
                    rnd.motions.append((mseq, _text(m.get("text")), _text(m.get("reference"))))

    def add_pairings(self, seq: int, items: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
        """Adds one round's debates (its draw is now complete); returns those with an id."""
        self.bundle.complete_rounds.add(seq)
        usable: list[dict[str, Any]] = []
        for obj in items:
            key = self._key(obj, "debate", where)
            if key is None:
                continue
            teams = [
                (team, _side(t.get("side")))
                for t in obj.get("teams") or []
                if isinstance(t, dict) and (team := tail_id(t.get("team"))) is not None
            ]
            panel: list[tuple[str, Position]] = []
            adjs = obj.get("adjudicators")  # absent while only the team draw is released (2.11)
            if isinstance(adjs, dict):
                if (chair := tail_id(adjs.get("chair"))) is not None:
                    panel.append((chair, Position.CHAIR))
                for group, position in (("panellists", Position.PANELLIST), ("trainees", Position.TRAINEE)):
                    panel.extend(
                        (k, position) for u in adjs.get(group) or [] if (k := tail_id(u)) is not None
                    )
            self.bundle.debates.append(
                DebateData(
                    key, seq, tail_id(obj.get("venue")), teams, panel, bool(obj.get("sides_confirmed", True))
                )
            )
            usable.append(obj)
        return usable

    def add_ballots(self, debate_key: str, items: list[dict[str, Any]], where: str) -> None:
        """All of a debate's ballots with their flags: the store picks the current one."""
        for obj in items:
            key = self._key(obj, "ballot", where)
            if key is None:
                continue
            result = obj.get("result")
            sheets: list[SheetData] = []
            for sheet in (result.get("sheets") if isinstance(result, dict) else None) or []:
                if not isinstance(sheet, dict):
                    continue
                teams: list[SheetTeamData] = []
                for t in sheet.get("teams") or []:
                    if not isinstance(t, dict):
                        continue
                    speeches = [
                        SpeechData(
                            tail_id(sp.get("speaker")), _float(sp.get("score")), bool(sp.get("ghost", False))
                        )
                        for sp in t.get("speeches") or []
                        if isinstance(sp, dict)
                    ]
                    win = t.get("win")
                    teams.append(
                        SheetTeamData(
                            team_key=tail_id(t.get("team")),
                            side=_side(t.get("side")),
                            points=_int(t.get("points")),
                            win=win if isinstance(win, bool) else None,
                            score=_float(t.get("score")),
                            speeches=speeches,
                        )
                    )
                sheets.append(SheetData(tail_id(sheet.get("adjudicator")), teams))
            motion = tail_id(obj.get("motion"))
            self.bundle.ballots.append(
                BallotData(
                    key=key,
                    debate_key=debate_key,
                    confirmed=bool(obj.get("confirmed", False)),
                    discarded=bool(obj.get("discarded", False)),
                    version=_int(obj.get("version")) or 1,
                    motion_text=self._motion_texts.get(motion) if motion is not None else None,
                    sheets=sheets,
                )
            )
