"""tabmail config set KEY VALUE | show"""

from __future__ import annotations

import argparse
from typing import Any

from tabmail.cli.common import open_context, print_json
from tabmail.domain.actor import describe
from tabmail.domain.secret_names import SECRET_NAMES


def register(sub: Any) -> None:
    p = sub.add_parser("config", help="show or change settings (secrets: tabmail secret set)")
    csub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = csub.add_parser("set", help="change a setting")
    s.add_argument("key", metavar="KEY")
    s.add_argument("value", metavar="VALUE")
    s.set_defaults(handler=_set)
    sh = csub.add_parser("show", help="show every setting and where each secret comes from")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(handler=_show)


def _set(args: argparse.Namespace) -> int:
    ctx = open_context(args, writes=True)
    try:
        value = ctx.settings.set_text(args.key, args.value)
        print(f"{args.key} = {value}")
        if args.key == "backend":
            from tabmail.domain.practice import LABEL
            from tabmail.services.practice import forget_practice_flags

            if value == "practice":
                print(LABEL)
            cleared = forget_practice_flags(ctx)
            if cleared:
                print(f"cleared {len(cleared)} address flag(s) set in practice mode")
        return 0
    finally:
        ctx.close()


def _show(args: argparse.Namespace) -> int:
    from tabmail.domain.config import SETTINGS

    ctx = open_context(args)
    try:
        values = ctx.settings.all()
        changes = ctx.settings.changes()
        secrets = {name: ctx.secrets.source_of(name) for name in SECRET_NAMES}
        if args.json:
            changed = {
                key: {"by": by, "on": on, "at": at.isoformat() if at else None}
                for key, (by, on, at) in sorted(changes.items())
            }
            print_json(
                {
                    "settings": values,
                    "changed": changed,
                    "secrets": secrets,
                    "database": ctx.db.describe(),
                    "you": {"who": ctx.user, "machine": ctx.machine},
                }
            )
            return 0
        print(f"database: {ctx.db.describe()}")
        print(f"you: {describe(ctx.user, ctx.machine)}")
        for key in sorted(values):
            by, on, at = changes.get(key, (None, None, None))
            made = describe(by, on)
            when = f" {at.astimezone():%d %b %H:%M}" if at else ""
            changed_words = f" (changed by {made}{when})" if made else ""
            print(f"{key:<30} {values[key]!s:<30} # {SETTINGS[key].help}{changed_words}")
        if ctx.secrets.unavailable_reason:
            print(ctx.secrets.unavailable_reason)
        for name, source in secrets.items():
            print(f"secret {name:<23} {source}")
        return 0
    finally:
        ctx.close()
