"""tabmail tournaments | people | draw"""

from __future__ import annotations

import argparse
from typing import Any

from tabmail.cli.common import open_context, print_json
from tabmail.domain.actor import describe
from tabmail.domain.addresses import unusual_domain


def register(sub: Any) -> None:
    t = sub.add_parser("tournaments", help="list imported tournaments")
    t.add_argument("--json", action="store_true")
    t.set_defaults(handler=_tournaments)
    p = sub.add_parser("people", help="list a tournament's speakers and adjudicators")
    p.add_argument("--tournament", required=True, metavar="SLUG")
    p.add_argument(
        "--history", action="store_true", help="each address change too: when, what, who, on which machine"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_people)
    d = sub.add_parser("draw", help="show a round's draw")
    d.add_argument("--tournament", required=True, metavar="SLUG")
    d.add_argument("--round", required=True, type=int, metavar="N")
    d.add_argument("--json", action="store_true")
    d.set_defaults(handler=_draw)


def _tournaments(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    try:
        rows = []
        for t in ctx.tournaments.list_all():
            rounds = ctx.tournaments.rounds(t.id)
            rows.append(
                {
                    "id": t.id,
                    "slug": t.slug,
                    "name": t.name,
                    "short_name": t.short_name,
                    "source": t.source,
                    "source_url": t.source_url,
                    "rounds": len(rounds),
                    "people": len(ctx.tournaments.people(t.id)),
                }
            )
        if args.json:
            print_json(rows)
        else:
            for r in rows:
                print(f"{r['slug']:<20} {r['name']:<40} {r['rounds']:>3} rounds {r['people']:>5} people")
        return 0
    finally:
        ctx.close()


def _people(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    try:
        t = ctx.tournaments.get(args.tournament)
        rows: list[dict[str, Any]] = [
            {
                "id": p.id,
                "name": p.name,
                "role": p.role.value,
                "team": p.team_name,
                "institution": p.institution_name,
                "email": p.email,
                "email_valid": p.email_valid,
                # A special-use or private domain (.test, .local, .internal...): accepted, unusual.
                "email_note": unusual_domain(p.email) if p.email_valid else None,
                "active": p.active,
            }
            for p in ctx.tournaments.people(t.id)
        ]
        if args.history:
            for r in rows:
                r["address_history"] = [
                    {
                        "at": c.when.isoformat(),
                        "old": c.old,
                        "new": c.new,
                        "source": c.source,
                        "by": c.by,
                        "on": c.machine,
                    }
                    for c in ctx.tournaments.address_history(int(r["id"]))
                ]
        if args.json:
            print_json(rows)
        else:
            for r in rows:
                mark = "  (invalid address)" if r["email"] else "  (no address)"
                if r["email_valid"]:
                    mark = "  (unusual domain)" if r["email_note"] else ""
                print(f"{r['id']:>6} {r['role']:<12} {r['name']:<30} {r['email'] or '':<40}{mark}")
                for c in r.get("address_history", []):
                    made = describe(c["by"], c["on"])
                    print(
                        f"{'':>6}   {c['at'][:16]} {c['source']}: {c['old'] or '-'} -> {c['new'] or '-'}"
                        + (f" (by {made})" if made else "")
                    )
        return 0
    finally:
        ctx.close()


def _draw(args: argparse.Namespace) -> int:
    from tabmail.domain.tournament import Position

    ctx = open_context(args)
    try:
        t = ctx.tournaments.get(args.tournament)
        draw = ctx.tournaments.draw(t.id, args.round)
        debates: list[dict[str, object]] = []
        for d in draw.debates:
            venue = draw.venues[d.venue_id].name if d.venue_id in draw.venues else None
            debates.append(
                {
                    "id": d.id,
                    "venue": venue,
                    "teams": [{"team": draw.teams[dt.team_id].name, "side": dt.side} for dt in d.teams],
                    "panel": [
                        {
                            "name": draw.people[a.person_id].name,
                            "position": a.position.value,
                            "person_id": a.person_id,
                        }
                        for a in d.adjudicators
                    ],
                }
            )
        if args.json:
            print_json(
                {"tournament": t.slug, "round": draw.round.seq, "name": draw.round.name, "debates": debates}
            )
        else:
            print(f"{t.name} — {draw.round.name}")
            for d in draw.debates:
                venue = draw.venues[d.venue_id].name if d.venue_id in draw.venues else "(no venue)"
                teams = " vs ".join(f"{draw.teams[x.team_id].name} ({x.side})" for x in d.teams)
                chair = [
                    draw.people[a.person_id].name for a in d.adjudicators if a.position is Position.CHAIR
                ]
                print(f"  {venue:<20} {teams}  chair: {', '.join(chair) or '-'}")
        return 0
    finally:
        ctx.close()
