"""A Tabbycat-compatible REST API on 127.0.0.1 that replays recorded responses.

The recordings in ``tests/data/tabbycat-api`` (one JSON file per request) are served with the
host placeholder ``http://tabbycat.test`` rewritten to this server's own origin, in bodies and in
``Link`` headers. Tokens: ``admin`` (superuser), ``nonadmin`` (a plain user); no header is the
public; any other token gets 401 ``{"detail": "Invalid token."}`` like DRF's TokenAuthentication.

A request is answered from, in order: a forced response (``fail``/``respond_with``); the
recording for its caller (``nonadmin``/``public``, under the ``prefs`` the server emulates); for
those callers, the admin recording redacted the way Tabbycat hides fields from non-staff. List
endpoints paginate generically (``?limit=&offset=`` with Link headers, or every list when
``page_size`` is set), after the misbehaviour switches (``set_email``, ``drop_person``) applied.

``generate_tournament`` builds a BP tournament of any size in the recordings' shapes (for the
import benchmark). Usable from a fixture (``with TabbycatServer() as server``) or a script.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from tests.datafiles import DATA_DIR
from tests.servers.web import LoopbackHTTPServer

PLACEHOLDER = "http://tabbycat.test"
RECORDINGS = DATA_DIR / "tabbycat-api"
TOKENS = {"admin": "admin", "nonadmin": "nonadmin"}  # token -> caller

Query = tuple[tuple[str, str], ...]
_PAGINATION = ("limit", "offset")
_PERSON_URL = re.compile(r"/tournaments/[^/]+/(?:speakers|adjudicators)/(\d+)$")
_TOURNAMENT_PATH = re.compile(r"^/api/v1/tournaments/([^/]+)(?:/|$)")
_PERSON_PATH = re.compile(r"^/api/v1/tournaments/([^/]+)/(?:speakers|adjudicators)/(\d+)$")
# What Tabbycat leaves out for callers without the staff permissions (see the README's notes).
_PRIVATE_PERSON = (
    "email", "phone", "url_key", "gender", "pronoun", "barcode", "base_score", "institution_conflicts",
    "team_conflicts", "adjudicator_conflicts", "venue_constraints",
)  # fmt: skip
_STAFF_PAIRING = ("bracket", "room_rank", "importance", "result_status")


@dataclass(frozen=True, slots=True)
class Recorded:
    status: int
    body: Any  # parsed JSON, or text
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: Query
    caller: str  # admin | nonadmin | public | bad
    accept: str | None


def _query(items: Any) -> Query:
    return tuple(sorted((str(k), str(v)) for k, v in items))


class Dataset:
    """Responses keyed by (path, query, caller, prefs); prefs None means "any"."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, Query, str, str | None], Recorded] = {}

    def add(
        self,
        path: str,
        body: Any,
        *,
        status: int = 200,
        query: Query = (),
        caller: str = "admin",
        prefs: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._entries[(path, query, caller, prefs)] = Recorded(status, body, headers or {})

    def get(self, path: str, query: Query, caller: str, prefs: str | None) -> Recorded | None:
        return self._entries.get((path, query, caller, prefs))

    def slugs(self) -> set[str]:
        return {
            m.group(1)
            for (path, _q, caller, _p), rec in self._entries.items()
            if caller == "admin" and rec.status == 200 and (m := _TOURNAMENT_PATH.match(path))
        }

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def from_recordings(cls, root: Path = RECORDINGS) -> Dataset:
        data = cls()
        for file in sorted(root.rglob("*.json")):
            rec = json.loads(file.read_text(encoding="utf-8"))
            req = rec["request"]
            prefs = m.group(1) if (m := re.search(r"__prefs-(default|public)\.json$", file.name)) else None
            headers = {k: v for k, v in rec.get("headers", {}).items() if k in ("Content-Type", "Link")}
            data.add(
                req["path"],
                rec["body"],
                status=int(rec["status"]),
                query=_query(req.get("query", {}).items()),
                caller=req["auth"],
                prefs=prefs,
                headers=headers,
            )
        return data


def link_header(path: str, query: Query, count: int, limit: int, offset: int) -> str:
    """DRF's LinkHeaderLimitOffsetPagination links (offset 0 written without ``offset``)."""
    others = [(k, v) for k, v in query if k not in _PAGINATION]

    def url(off: int) -> str:
        params = [*others, ("limit", str(limit))] + ([("offset", str(off))] if off > 0 else [])
        return f"{PLACEHOLDER}{path}?{urlencode(params)}"

    links = []
    if offset > 0:
        links.append(f'<{url(max(offset - limit, 0))}>; rel="prev"')
    if offset + limit < count:
        links.append(f'<{url(offset + limit)}>; rel="next"')
    links.append(f'<{url(0)}>; rel="first"')
    links.append(f'<{url(max((count - 1) // limit, 0) * limit)}>; rel="last"')
    return ", ".join(links)


class TabbycatServer:
    """The replay server. Switches may be changed while it runs (they are read per request)."""

    def __init__(self, dataset: Dataset | None = None, *, prefs: str = "public") -> None:
        self.dataset = dataset if dataset is not None else Dataset.from_recordings()
        self.prefs = prefs  # which recorded preference set non-admin callers see
        self.page_size: int | None = None  # paginate every list, as a site with PAGE_SIZE does
        self.emails: dict[int, str | None] = {}  # person id -> address served instead
        self.dropped: set[int] = set()  # person ids left out of every list
        self.forced: dict[str, Recorded] = {}  # path -> response, whatever the query or token
        self.link_origin: str | None = None  # origin written in Link headers (a confused proxy)
        self.trickle: dict[str, float] = {}  # path -> seconds between the bytes of its answer
        self.trickle_head: dict[
            str, float
        ] = {}  # path -> seconds between the bytes of its status line and headers
        self.endless: set[str] = set()  # list paths that always offer a next page (?page=N+1)
        self.cut_off: list[str] = []  # paths whose answer the client stopped reading midway
        self.requests: list[Request] = []
        self.patches: list[tuple[str, dict[str, Any]]] = []  # (path, fields) of accepted PATCHes
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._cut = threading.Condition(self._lock)
        self._httpd: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> TabbycatServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle's algorithm and the
                # client's delayed ACK add 40 ms to every small answer.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:
                server._handle(self)

            def do_POST(self) -> None:
                server._handle(self)

            def do_PATCH(self) -> None:
                server._patch(self)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._stopping.clear()
        self._httpd = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="tabbycat-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends trickling answers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> TabbycatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- switches ----------------------------------------------------------------------------
    def respond_with(self, path: str, status: int, body: Any, content_type: str = "application/json") -> None:
        self.forced[path] = Recorded(status, body, {"Content-Type": content_type})

    def fail(self, path: str, status: int = 500) -> None:
        """Answer ``path`` with a Django debug page's first lines, as a crashing view does."""
        text = f"AttributeError at {path}\n'BallotViewSet' object has no attribute 'participant_requester'\n"
        self.respond_with(path, status, text, "text/html; charset=utf-8")

    def set_email(self, person_id: int, email: str | None) -> None:  # as if edited on the site
        self.emails[person_id] = email

    def drop_person(self, person_id: int) -> None:
        self.dropped.add(person_id)

    def respond_raw(self, path: str, body: bytes, status: int = 200) -> None:
        """Answer ``path`` with these exact bytes as JSON (1e400, 200,000 nested lists...)."""
        self.forced[path] = Recorded(status, body, {"Content-Type": "application/json"})

    def wait_cut_off(self, path: str, timeout: float = 10.0) -> bool:
        """True once the client has hung up on a trickling answer of ``path``."""
        with self._cut:
            return self._cut.wait_for(lambda: path in self.cut_off, timeout)

    # -- request counting --------------------------------------------------------------------
    def count(self, path_prefix: str = "") -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path.startswith(path_prefix))

    def paths(self) -> Counter[str]:
        with self._lock:
            return Counter(r.path for r in self.requests)

    # -- answering ---------------------------------------------------------------------------
    def _patch(self, h: BaseHTTPRequestHandler) -> None:
        """PATCH a speaker's or adjudicator's email (what write-back uses); admin only."""
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        caller, header_error = self._caller(h.headers.get("Authorization"))
        with self._lock:
            self.requests.append(Request(h.command, split.path, (), caller, h.headers.get("Accept")))
        match = _PERSON_PATH.match(split.path)
        status: int
        body: Any
        if header_error:
            status, body = 401, {"detail": header_error}
        elif caller != "admin":
            status, body = 403, {"detail": "You do not have permission to perform this action."}
        elif match is None:
            status, body = 405, {"detail": 'Method "PATCH" not allowed.'}
        else:
            try:
                fields = json.loads(raw or b"{}")
            except ValueError:
                fields = None
            if not isinstance(fields, dict) or not isinstance(fields.get("email"), str):
                status, body = 400, {"email": ["Enter a valid email address."]}
            else:
                person_id = int(match.group(2))
                with self._lock:
                    self.emails[person_id] = fields["email"]
                    self.patches.append((split.path, fields))
                status, body = 200, {"id": person_id, "email": fields["email"]}
        payload = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        path, query = split.path, _query(parse_qsl(split.query, keep_blank_values=True))
        caller, header_error = self._caller(h.headers.get("Authorization"))
        with self._lock:
            self.requests.append(Request(h.command, path, query, caller, h.headers.get("Accept")))
        if header_error:
            rec = Recorded(401, {"detail": header_error}, {"WWW-Authenticate": 'Token realm="api"'})
        elif h.command != "GET":
            rec = Recorded(405, {"detail": f'Method "{h.command}" not allowed.'})
        else:
            rec = self._answer(path, query, caller)
        origin = f"http://{h.headers.get('Host') or self.url.removeprefix('http://')}"
        if path in self.endless and h.command == "GET":
            page = _positive(dict(query).get("page")) or 1
            rec = Recorded(200, [], {"Link": f'<{PLACEHOLDER}{path}?page={page + 1}>; rel="next"'})
        if isinstance(rec.body, bytes):
            payload = rec.body
        elif isinstance(rec.body, str) and not rec.headers.get("Content-Type", "").startswith(
            "application/json"
        ):
            payload = rec.body.encode()
        else:
            payload = json.dumps(rec.body, ensure_ascii=False).replace(PLACEHOLDER, origin).encode()
        h.send_response(rec.status)
        h.send_header("Content-Type", rec.headers.get("Content-Type", "application/json"))
        for name, value in rec.headers.items():
            if name != "Content-Type":
                link_origin = self.link_origin if name == "Link" and self.link_origin else origin
                h.send_header(name, value.replace(PLACEHOLDER, link_origin))
        h.send_header("Content-Length", str(len(payload)))
        if path in self.trickle_head:
            self._trickle_head(h, path, payload)
            return
        h.end_headers()
        interval = self.trickle.get(path)
        if interval is None:
            h.wfile.write(payload)
            return
        try:  # one byte at a time, as a stalled proxy or a hostile server does
            for i in range(len(payload)):
                h.wfile.write(payload[i : i + 1])
                h.wfile.flush()
                if self._stopping.wait(interval):
                    return
        except OSError:  # the client hung up before the answer was complete
            with self._cut:
                self.cut_off.append(path)
                self._cut.notify_all()
            h.close_connection = True

    def _trickle_head(self, h: BaseHTTPRequestHandler, path: str, payload: bytes) -> None:
        """The status line and headers one byte at a time (then the body at once): each read is
        quick, the answer never starts."""
        head = b"".join(getattr(h, "_headers_buffer", [])) + b"\r\n"
        h._headers_buffer = []  # type: ignore[attr-defined]  # written here instead of by end_headers
        try:
            for i in range(len(head)):
                h.wfile.write(head[i : i + 1])
                h.wfile.flush()
                if self._stopping.wait(self.trickle_head[path]):
                    return
            h.wfile.write(payload)
        except OSError:
            with self._cut:
                self.cut_off.append(path)
                self._cut.notify_all()
            h.close_connection = True

    @staticmethod
    def _caller(header: str | None) -> tuple[str, str | None]:
        """(caller, 401 detail or None). Like DRF: a non-"Token" scheme is simply anonymous."""
        if not header:
            return "public", None
        scheme, _, key = header.strip().partition(" ")
        if scheme != "Token":
            return "public", None
        key = key.strip()
        if not key:
            return "bad", "Invalid token header. No credentials provided."
        if key not in TOKENS:
            return "bad", "Invalid token."
        return TOKENS[key], None

    def _answer(self, path: str, query: Query, caller: str) -> Recorded:
        if path in self.forced:
            return self.forced[path]
        base_query = tuple((k, v) for k, v in query if k not in (*_PAGINATION, "confirmed", "break"))
        rec, redact = self._lookup(path, base_query, caller)
        if rec is None:
            slug = m.group(1) if (m := _TOURNAMENT_PATH.match(path)) else None
            if slug is not None and slug not in self.dataset.slugs():
                return Recorded(404, {"detail": "No Tournament matches the given query."})
            return Recorded(404, {"detail": "Not found."})
        if rec.status != 200:
            return rec
        body = rec.body
        if redact or self.emails or self.dropped:
            body = self._transform(body, caller if redact else "admin")
        headers = {k: v for k, v in rec.headers.items() if k != "Link"}
        if isinstance(body, list):
            if "confirmed" in dict(query):  # Tabbycat only tests the parameter for presence
                body = [b for b in body if not isinstance(b, dict) or b.get("confirmed")]
            params = dict(query)
            limit = _positive(params.get("limit")) or self.page_size
            if limit:
                offset = _positive(params.get("offset")) or 0
                headers["Link"] = link_header(path, query, len(body), limit, offset)
                body = body[offset : offset + limit]
        return Recorded(200, body, headers)

    def _lookup(self, path: str, query: Query, caller: str) -> tuple[Recorded | None, bool]:
        """The recording for this caller, else (for non-admins) the admin one to be redacted."""
        get = self.dataset.get
        if caller == "admin":
            return get(path, query, "admin", None), False
        for who, prefs in ((caller, self.prefs), (caller, None), ("public", self.prefs), ("public", None)):
            rec = get(path, query, who, prefs)
            if rec is not None and (who == caller or rec.status == 200):
                return rec, False
        return get(path, query, "admin", None), True

    def _transform(self, obj: Any, caller: str) -> Any:
        """Copy of ``obj`` with people overridden/dropped and, for non-admins, fields hidden."""
        if isinstance(obj, list):
            out = [self._transform(x, caller) for x in obj]
            return [x for x in out if x is not _DROP]
        if not isinstance(obj, dict):
            return obj
        url = obj.get("url")
        person = _PERSON_URL.search(url) if isinstance(url, str) and "name" in obj else None
        if person is not None and int(person.group(1)) in self.dropped:
            return _DROP
        is_ballot = "result" in obj and "confirmed" in obj
        if caller != "admin" and is_ballot and (not obj.get("confirmed") or obj.get("discarded")):
            return _DROP  # the public sees confirmed ballots only
        new = {k: self._transform(v, caller) for k, v in obj.items()}
        if person is not None:
            pid = int(person.group(1))
            if pid in self.emails and "email" in new:
                new["email"] = self.emails[pid]
            if caller == "nonadmin" and "url_key" in new:
                new["url_key"] = None
            elif caller == "public":
                for key in _PRIVATE_PERSON:
                    new.pop(key, None)
        if caller != "admin" and "_links" in new and "ballots" in new.get("_links", {}):
            for key in _STAFF_PAIRING:
                new.pop(key, None)
        return new


_DROP = object()


def _positive(value: str | None) -> int | None:
    try:
        number = int(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and number >= 0 else None


# -- a generated tournament -------------------------------------------------------------------
_SIDES = ("og", "oo", "cg", "co")
_FIRST = (
    "Aron",
    "Sovbika",
    "Laila",
    "Sancho",
    "Mira",
    "Tomas",
    "Ines",
    "Kofi",
    "Yuki",
    "Priya",
    "Lena",
    "Omar",
)
_LAST = ("Dang", "Gairbekov", "Filemonsen", "Gamgee", "Okafor", "Novak", "Silva", "Tanaka", "Rao", "Berg")


@dataclass(slots=True)
class GeneratedTournament:
    dataset: Dataset
    slug: str
    teams: int
    speakers: int
    adjudicators: int
    rounds: int
    debates_per_round: int
    ballots: int


def generate_tournament(
    teams: int = 400, adjudicators: int = 350, rounds: int = 9, slug: str = "gen", seed: int = 1
) -> GeneratedTournament:
    """A BP tournament (2 speakers a team, consensus ballots, every round released and confirmed)."""
    if teams % 4:
        raise ValueError("a BP tournament needs a multiple of 4 teams")
    rng = random.Random(seed)
    base = f"{PLACEHOLDER}/api/v1/tournaments/{slug}"
    data = Dataset()
    n_debates = teams // 4
    n_inst = max(1, teams // 4)

    def name(i: int) -> str:
        return f"{_FIRST[i % len(_FIRST)]} {_LAST[(i // len(_FIRST)) % len(_LAST)]} {i}"

    def person(pid: int, kind: str) -> dict[str, Any]:
        full = name(pid)
        return {
            "id": pid,
            "url": f"{base}/{kind}/{pid}",
            "name": full,
            "_links": {"checkin": f"{base}/{kind}/{pid}/checkin"},
            "barcode": None,
            "email": full.replace(" ", "") + "@example.com",
            "phone": "",
            "anonymous": False,
            "code_name": "",
            "url_key": f"{pid:08x}"[-8:],
            "gender": "",
            "pronoun": "",
        }

    institutions: list[dict[str, Any]] = [
        {
            "id": i,
            "url": f"{PLACEHOLDER}/api/v1/institutions/{i}",
            "region": "Region",
            "venue_constraints": [],
            "teams": [],
            "adjudicators": [],
            "name": f"University {i}",
            "code": f"U{i}",
        }
        for i in range(1, n_inst + 1)
    ]
    team_objs: list[dict[str, Any]] = []
    for t in range(1, teams + 1):
        inst = (t - 1) % n_inst + 1
        speakers = []
        for s in (2 * t - 1, 2 * t):
            sp = person(s, "speakers")
            sp["categories"] = []
            speakers.append(sp)
        team_objs.append(
            {
                "id": t,
                "url": f"{base}/teams/{t}",
                "institution": f"{PLACEHOLDER}/api/v1/institutions/{inst}",
                "break_categories": [],
                "institution_conflicts": [f"{PLACEHOLDER}/api/v1/institutions/{inst}"],
                "venue_constraints": [],
                "reference": str(t),
                "short_reference": str(t),
                "code_name": "",
                "short_name": f"U{inst} {t}",
                "long_name": f"University {inst} {t}",
                "use_institution_prefix": True,
                "seed": None,
                "emoji": "",
                "speakers": speakers,
            }
        )
    first_adj = 2 * teams + 1
    adj_ids = list(range(first_adj, first_adj + adjudicators))
    adj_objs: list[dict[str, Any]] = []
    for a in adj_ids:
        obj = person(a, "adjudicators")
        inst = (a - first_adj) % n_inst + 1
        obj.update(
            {
                "institution": f"{PLACEHOLDER}/api/v1/institutions/{inst}",
                "institution_conflicts": [],
                "team_conflicts": [],
                "adjudicator_conflicts": [],
                "venue_constraints": [],
                "base_score": 5.0,
                "trainee": (a - first_adj) % 7 == 6,
                "breaking": False,
                "independent": False,
                "adj_core": False,
            }
        )
        adj_objs.append(obj)
    venues: list[dict[str, Any]] = [
        {
            "id": v,
            "url": f"{base}/venues/{v}",
            "categories": [],
            "display_name": f"Room {v}",
            "external_url": "",
            "barcode": None,
            "_links": {"checkin": f"{base}/venues/{v}/checkin"},
            "name": f"Room {v}",
            "priority": 100,
        }
        for v in range(1, n_debates + 1)
    ]
    round_objs: list[dict[str, Any]] = []
    debate_id = 0
    ballots = 0
    for seq in range(1, rounds + 1):
        motion = {
            "id": seq,
            "url": f"{base}/motions/{seq}",
            "text": f"This House would adopt motion number {seq}",
            "reference": f"Motion {seq}",
            "info_slide": "",
            "info_slide_plain": "",
            "seq": 1,
        }
        round_objs.append(
            {
                "id": seq,
                "url": f"{base}/rounds/{seq}",
                "break_category": None,
                "motions": [motion],
                "starts_at": None,
                "_links": {"pairing": f"{base}/rounds/{seq}/pairings"},
                "seq": seq,
                "completed": True,
                "name": f"Round {seq}",
                "abbreviation": f"R{seq}",
                "stage": "P",
                "draw_type": "R",
                "draw_status": "R",
                "feedback_weight": 0.3,
                "silent": False,
                "motions_released": True,
                "weight": 1,
            }
        )
        order = list(range(1, teams + 1))
        rng.shuffle(order)
        adjs = [a["id"] for a in adj_objs if not a["trainee"]]
        trainees = [a["id"] for a in adj_objs if a["trainee"]]
        rng.shuffle(adjs)
        pairings: list[dict[str, Any]] = []
        for d in range(n_debates):
            debate_id += 1
            four = order[4 * d : 4 * d + 4]
            chair = adjs[d] if d < len(adjs) else None
            panel = adjs[n_debates + d :: n_debates]
            pairings.append(
                {
                    "id": debate_id,
                    "url": f"{base}/rounds/{seq}/pairings/{debate_id}",
                    "venue": f"{base}/venues/{d + 1}",
                    "teams": [
                        {"team": f"{base}/teams/{t}", "side": s} for t, s in zip(four, _SIDES, strict=True)
                    ],
                    "adjudicators": {
                        "chair": f"{base}/adjudicators/{chair}" if chair else None,
                        "panellists": [f"{base}/adjudicators/{p}" for p in panel],
                        "trainees": [f"{base}/adjudicators/{t}" for t in trainees[d::n_debates]],
                    },
                    "barcode": None,
                    "_links": {"ballots": f"{base}/rounds/{seq}/pairings/{debate_id}/ballots"},
                    "bracket": 0.0,
                    "room_rank": 0,
                    "importance": 0,
                    "result_status": "C",
                    "sides_confirmed": True,
                }
            )
            sheet_teams: list[dict[str, Any]] = []
            for t, side in zip(four, _SIDES, strict=True):
                scores = [float(rng.randint(65, 85)) for _ in range(2)]
                sheet_teams.append(
                    {
                        "side": side,
                        "points": 0,
                        "win": False,
                        "score": sum(scores),
                        "team": f"{base}/teams/{t}",
                        "speeches": [
                            {"ghost": False, "score": sc, "speaker": f"{base}/speakers/{2 * t - 1 + i}"}
                            for i, sc in enumerate(scores)
                        ],
                    }
                )
            for points, st in enumerate(sorted(sheet_teams, key=lambda x: x["score"])):
                st["points"] = points
            ballot_url = f"{base}/rounds/{seq}/pairings/{debate_id}/ballots"
            data.add(
                f"/api/v1/tournaments/{slug}/rounds/{seq}/pairings/{debate_id}/ballots",
                [
                    {
                        "id": debate_id,
                        "result": {"sheets": [{"teams": sheet_teams, "adjudicator": None}]},
                        "motion": motion["url"],
                        "url": f"{ballot_url}/{debate_id}",
                        "vetos": [],
                        "version": 1,
                        "submitter_type": "T",
                        "confirmed": True,
                        "discarded": False,
                        "single_adj": False,
                    }
                ],
            )
            ballots += 1
        data.add(f"/api/v1/tournaments/{slug}/rounds/{seq}/pairings", pairings)

    tournament = {
        "id": 1,
        "url": f"{base}/me",
        "current_rounds": [f"{base}/rounds/{rounds}"],
        "_links": {"rounds": f"{base}/rounds", "teams": f"{base}/teams"},
        "name": f"Generated {teams}",
        "short_name": f"Gen{teams}",
        "seq": None,
        "slug": slug,
        "active": True,
    }
    data.add("/api", {"_links": {"v1": f"{PLACEHOLDER}/api/v1"}, "timezone": "UTC", "version": "2.10.0-dev"})
    data.add("/api/v1/tournaments", [tournament])
    tpath = f"/api/v1/tournaments/{slug}"
    data.add(tpath, tournament)
    data.add(f"{tpath}/institutions", institutions)
    data.add(f"{tpath}/venues", venues)
    data.add(f"{tpath}/teams", team_objs)
    data.add(f"{tpath}/speakers", [{**s, "team": t["url"]} for t in team_objs for s in t["speakers"]])
    data.add(f"{tpath}/adjudicators", adj_objs)
    data.add(f"{tpath}/rounds", round_objs)
    return GeneratedTournament(data, slug, teams, 2 * teams, adjudicators, rounds, n_debates, ballots)


def main() -> None:  # pragma: no cover - manual use: serve the recordings until interrupted
    with TabbycatServer() as server:
        print(f"serving the Tabbycat recordings at {server.url} (tokens: admin, nonadmin)")
        threading.Event().wait()


if __name__ == "__main__":  # pragma: no cover
    main()
