"""Read a whole tournament from a Tabbycat site's REST API (v1, Tabbycat 2.9 to 2.11).

Blocking (requests): the services run it off the event loop. The per-round and per-debate
requests go through a small thread pool, each worker thread with its own ``requests.Session``
(importers/tabbycat_http.py: one request, its deadlines, limits and errors). Relations arrive as
absolute URLs; only their trailing ids are used, and every request goes to the origin the
director typed, so a proxy's wrong host in a ``Link`` header never receives the token. Every
field is treated as optional: a non-admin token hides contact details and private URL keys,
which the bundle marks as unknown so the store keeps what it had.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from tabmail.domain.config import is_loopback_host
from tabmail.domain.imported import ImportBundle
from tabmail.importers.tabbycat_bundle import BundleBuilder, tail_id, text_of
from tabmail.importers.tabbycat_http import (
    TOKEN_HELP,
    TabbycatError,
    TabbycatHttp,
    TabbycatLimits,
    network_reason,
    server_detail,
)

__all__ = ["TabbycatClient", "TabbycatError", "TabbycatLimits", "normalise_base_url", "refuse_plain_http"]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
T = TypeVar("T")


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
        self._workers = max(1, workers)
        self.limits = limits or TabbycatLimits()
        self._http = TabbycatHttp(self.base_url, token or None, timeout=timeout, limits=self.limits)
        self.version: str | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TabbycatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the import ------------------------------------------------------------------------
    def set_email(self, slug: str, role: str, person_id: str, email: str) -> None:
        """Write a corrected address back to Tabbycat (PATCH the speaker or adjudicator).

        ``role`` is "speaker" or "adjudicator"; ``person_id`` Tabbycat's id. Raises TabbycatError
        with the site's own words when it refuses (a token without write permission: 403)."""
        kind = {"speaker": "speakers", "adjudicator": "adjudicators"}.get(role)
        if kind is None or not person_id.isdigit():
            raise self._http.error(f"cannot write back to Tabbycat: no Tabbycat {role} with id {person_id!r}")
        url = f"{self.base_url}/api/v1/tournaments/{quote(slug, safe='')}/{kind}/{person_id}"
        what = f"the address of {role} {person_id}"
        try:
            resp = self._http.session().patch(url, json={"email": email}, timeout=self._http.timeout)
        except requests.RequestException as exc:
            reason = network_reason(exc, self._http.timeout)
            raise self._http.error(
                f"cannot reach {self.base_url}: {reason}", url=url, reason=reason
            ) from None
        if resp.status_code == 403:
            detail = server_detail(resp.content)
            said = f" (it said: {detail})" if detail else ""
            raise self._http.error(
                f"{self.base_url} does not let this token change addresses{said}; write-back needs an "
                "admin (superuser) token",
                status=403,
                url=url,
                reason=f"HTTP 403{said}",
            )
        if not 200 <= resp.status_code < 300:
            raise self._http.status_error(resp.status_code, resp.content, url, what)

    def fetch_tournament(self, slug: str, progress: Progress | None = None) -> ImportBundle:
        """Everything tabmail keeps about one tournament, as an ImportBundle.

        Raises TabbycatError when the site, the token or the tournament cannot be used. Ballots,
        motions, venues, institutions and single rounds are best-effort: a failure there becomes
        an ImportProblem in the bundle (naming the URL) and the rest is imported; so is a record
        whose data cannot be read. The whole import stops at ``limits.import_seconds`` and past
        the size budgets (TabbycatLimits), naming the request it was reading.
        """
        self._http.begin_import()
        try:
            return self._fetch(slug, progress)
        finally:
            self._http.end_import()

    def _fetch(self, slug: str, progress: Progress | None) -> ImportBundle:
        report: Progress = progress or (lambda _stage, _done, _total: None)
        slug = slug.strip().strip("/")
        tpath = f"{self._api}/v1/tournaments/{quote(slug, safe='')}"

        report("connecting", 0, 1)
        try:
            root = self._http.get_object(self._api, "the API root")
        except TabbycatError as exc:
            if exc.status != 404:
                raise
            raise self._http.error(
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
            futures = {
                pool.submit(self._http.get_list, url, f"the {name}"): name for name, url in urls.items()
            }
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
                    builder.add_motions(
                        self._http.get_list(f"{tpath}/motions", "the motions"), f"{tpath}/motions"
                    )
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
                lambda item: self._http.get_list(item[1], f"the availabilities of round {item[0]['seq']}"),
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
                lambda item: self._http.get_list(
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
                lambda item: self._http.get_list(item[2], f"the ballots of debate {item[1]}"),
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
        futures = {
            pool.submit(self._http.get_list, f"{tpath}/{name}", f"the {name}"): name for name in extras
        }
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
            return self._http.get_object(tpath, f"tournament {slug}")
        except TabbycatError as exc:
            if exc.status != 404:
                raise
        try:
            listed = self._http.get_list(f"{self._api}/v1/tournaments", "the tournaments")
            known = [text_of(t.get("slug")) for t in listed if isinstance(t, dict)]
        except TabbycatError as exc:
            if exc.fatal:
                raise
            known = []
        listing = f"; the site has: {', '.join(known)}" if known else ""
        raise self._http.error(f"no tournament {slug!r} at {self.base_url}{listing}", status=404, url=tpath)

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
