"""Render tabmail's main screens to PNGs at 1440×900, offscreen, for the README.

    python tools/screenshots.py OUTDIR

Writes main.png (a round's notifications, a bounced message being corrected),
message.png (a resent message and its delivery timeline), resolved.png (the bounced original of
that resend, shown resolved), problems.png (the Problems view across every tournament),
compose.png (the compose dialog), compose-urls.png and compose-points.png (the composer on
private URLs, keys given as a Tabbycat site would have them, and on team points after round 1),
participants.png, import.png, settings.png, replies.png (the navigator's unread-reply badges and
a message with a new reply), unmatched-mail.png (the mail that matched none of our messages), settings-test.png (the SMTP Test button's result
against a loopback server, values typed but not saved), and main-dark.png / settings-dark.png
(Settings → Appearance → Dark). Uses the demo tournament (services/demo.py) in a
temporary database, or a small built-in sample when the demo loader is not available; the sent
round is seeded with the real enqueue and resend services and made-up provider events.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import qasync
from PySide6.QtCore import QPoint, QRect, QSettings
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import QApplication, QLineEdit, QWidget
from sqlalchemy import select, update

from tabmail.app import configure_application, load_demo
from tabmail.domain.imported import (
    DebateData,
    ImportBundle,
    InstitutionData,
    PersonData,
    RoundData,
    TeamData,
    TournamentData,
    VenueData,
)
from tabmail.domain.notification import Audience, DeliveryStatus, Event, FlagKind, MessageState
from tabmail.domain.tournament import Position, Role
from tabmail.gui.importer import ImportDialog
from tabmail.gui.main_window import MainWindow
from tabmail.gui.settings import SettingsDialog
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.resend import resend
from tabmail.status.events import ProviderEvent, derive_status, stable_event_id
from tabmail.store.models import PersonRow, TournamentRow
from tests.inbox_support import add_inbox
from tests.keyrings import MemoryKeyring
from tests.servers.smtp import SmtpTestServer

SIZE = (1440, 900)

INSTITUTIONS = [
    ("ARN", "University of Arnor"),
    ("BRE", "University of Bree"),
    ("DAL", "University of Dale"),
    ("ERE", "Erebor Institute"),
    ("GON", "Gondor College"),
    ("ROH", "Royal Institute of Rohan"),
]
SPEAKERS = [
    "Aino Virtanen",
    "Bahiyy al Din Awad",
    "Chisom Iheatu",
    "Deodato Iadanza",
    "Durar Almasi",
    "Eun-ji Park",
    "Farida Haddad",
    "Giulia Conti",
    "Hamid Rezaei",
    "Ingrid Solberg",
    "Jonas Weber",
    "Kosa Rošic",
    "Laila Filemonsen",
    "Milton Lindholm",
    "Niamh Johannes",
    "Oskar Nowak",
    "Priya Raman",
    "Quentin Moreau",
    "Rikard Csizmadia",
    "Sakura Ito",
    "Tomás Herrera",
    "Ulla Berg",
    "Vera Kuznetsova",
    "Wanjiru Kamau",
]
ADJUDICATORS = [
    "Jana Fuchs",
    "Sonny Björk",
    "Urszula Grabowska",
    "Christophe Salois",
    "Czesława Kucharska",
    "Tellervo Hyssälä",
    "Reyna Chavez",
    "Isak Jensen",
]
MOTIONS = [
    ("World maps", "This House would require all world maps to be drawn using equal-area projections"),
    ("Tomatoes", "This House believes that tomatoes are a fruit"),
    ("Harry Potter", "This House believes that Harry Potter should have married Luna Lovegood"),
    ("Valentine's Day", "This House regrets the existence of Valentine's Day"),
]


def _address(name: str) -> str:
    return name.lower().replace(" ", ".").replace("š", "s").replace("ø", "o") + "@example.org"


def sample_bundle() -> ImportBundle:
    """A small BP tournament with one invalid and one missing address."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    teams, people = [], []
    for i in range(12):
        code, _ = INSTITUTIONS[i % len(INSTITUTIONS)]
        key = f"t{i}"
        teams.append(TeamData(key, f"{code} {chr(65 + i // len(INSTITUTIONS))}", institution_key=code))
        for s in (0, 1):
            name = SPEAKERS[2 * i + s]
            email: str | None = _address(name)
            if name == "Hamid Rezaei":
                email = "hamid.rezaei@example"  # a typo: no top-level domain
            if name == "Ulla Berg":
                email = None
            people.append(PersonData(f"s{2 * i + s}", name, Role.SPEAKER, email, key, code))
    for i, name in enumerate(ADJUDICATORS):
        people.append(
            PersonData(f"a{i}", name, Role.ADJUDICATOR, _address(name), None, INSTITUTIONS[i % 6][0])
        )
    rounds = [
        RoundData(
            n + 1,
            f"Round {n + 1}",
            f"R{n + 1}",
            draw_status="R" if n == 0 else ("C" if n == 1 else "N"),
            starts_at=start + timedelta(hours=2 * n),
            motions=[(1, MOTIONS[n][1], MOTIONS[n][0])],
        )
        for n in range(4)
    ]
    debates = [
        DebateData(
            f"d{j}",
            1,
            f"v{j}",
            [(f"t{4 * j + k}", side) for k, side in enumerate(("og", "oo", "cg", "co"))],
            [(f"a{2 * j}", Position.CHAIR), (f"a{2 * j + 1}", Position.PANELLIST)],
        )
        for j in range(3)
    ]
    return ImportBundle(
        tournament=TournamentData("meo2025", "Middle-earth Open 2025", "MEO", source="demo"),
        institutions=[InstitutionData(code, name, code) for code, name in INSTITUTIONS],
        venues=[VenueData(f"v{j}", f"Room {101 + j}") for j in range(3)],
        teams=teams,
        people=people,
        rounds=rounds,
        debates=debates,
        complete_rounds={1},
    )


# What happens to the seeded draw release's messages, by position in the batch.
BOUNCES = {
    3: "550 5.1.1 <{}>: Recipient address rejected: User unknown in virtual mailbox table",
    11: "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
    19: "552 5.2.2 The email account that you tried to reach is over quota",
    27: "550 5.1.1 The email account that you tried to reach does not exist",
}
BLOCKED = {8: "554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org"}
DEFERRED = {23: "421 4.7.0 Try again later, closing connection (greylisted)"}
FAILED = {15: "550 5.7.1 Relaying denied: sender domain not verified"}
UNCERTAIN = {31: "uncertain: the connection dropped after the message was handed over"}
CORRECTED = 3  # resent to a corrected address, then delivered and opened


def _event(
    mid: str,
    name: str,
    status: DeliveryStatus,
    at: datetime,
    reason: str | None = None,
    flag: FlagKind | None = None,
    address: str | None = None,
) -> ProviderEvent:
    return ProviderEvent(
        provider_event_id=stable_event_id(name, mid, at.isoformat()),
        name=name,
        status=status,
        event_time=at,
        tabmail_id=mid,
        reason=reason,
        flag=flag,
        address=address,
        source="activity",
        raw={"event": name},
    )


def _sent(ctx: AppContext, batch_id: int, at: datetime) -> list[str]:
    ids = [m.id for m in ctx.notifications.messages(batch_id=batch_id)]
    for i, mid in enumerate(ids):
        if i in FAILED:
            ctx.notifications.mark_unsent(mid, MessageState.FAILED, FAILED[i])
        elif i in UNCERTAIN:
            ctx.notifications.mark_unsent(mid, MessageState.UNCERTAIN, UNCERTAIN[i])
        else:
            ctx.notifications.mark_sent(
                mid, f"sg{i:04d}x{batch_id}", "250 Ok: queued", at + timedelta(seconds=i)
            )
    return ids


def seed_sent_round(ctx: AppContext, loop: asyncio.AbstractEventLoop) -> dict[str, str]:
    """Round 1 of the first tournament: a test send to adjudicators, then the real draw release
    with bounces, a block, a deferral, a failure, an uncertain send and a corrected resend."""
    tournament = ctx.tournaments.list_all()[0]
    now = datetime.now(UTC).replace(microsecond=0)
    ctx.settings.set_text("test_mode.reroute_to", "tab.director@example.org")
    plan = notify.plan(ctx, tournament.slug, Event.DRAW, round_seq=1, audience=Audience.ADJUDICATORS)
    test_batch = notify.enqueue(ctx, plan).batch_id
    events = []
    for mid in [m.id for m in ctx.notifications.messages(batch_id=test_batch)]:
        ctx.notifications.mark_sent(mid, None, "250 Ok", now - timedelta(minutes=52))
        events.append(_event(mid, "delivered", DeliveryStatus.DELIVERED, now - timedelta(minutes=51)))
    ctx.settings.set_text("test_mode.reroute_to", "")

    plan = notify.plan(ctx, tournament.slug, Event.DRAW, round_seq=1, audience=Audience.ALL)
    batch = notify.enqueue(ctx, plan).batch_id
    sent_at = now - timedelta(minutes=24)
    ids = _sent(ctx, batch, sent_at)
    for i, mid in enumerate(ids):
        if i in FAILED or i in UNCERTAIN:
            continue
        at = sent_at + timedelta(seconds=20 + i)
        events.append(_event(mid, "processed", DeliveryStatus.PROCESSED, at))
        address = ctx.notifications.get(mid).address
        if i in BOUNCES:
            reason = BOUNCES[i].format(address)
            bounced_at = at + timedelta(seconds=40)
            events.append(
                _event(mid, "bounce", DeliveryStatus.BOUNCED, bounced_at, reason, FlagKind.HARD, address)
            )
        elif i in BLOCKED:
            blocked_at = at + timedelta(seconds=35)
            events.append(
                _event(
                    mid, "blocked", DeliveryStatus.BLOCKED, blocked_at, BLOCKED[i], FlagKind.BLOCKED, address
                )
            )
        elif i in DEFERRED:
            events.append(
                _event(mid, "deferred", DeliveryStatus.DEFERRED, at + timedelta(minutes=2), DEFERRED[i])
            )
        else:
            events.append(_event(mid, "delivered", DeliveryStatus.DELIVERED, at + timedelta(seconds=25)))
            if i % 3 == 0:
                events.append(_event(mid, "open", DeliveryStatus.OPENED, at + timedelta(minutes=3 + i % 7)))
    ctx.tracking.ingest(events, derive=derive_status, now=now)

    original = ids[CORRECTED]
    wrong = ctx.notifications.get(original).address
    fixed = wrong.split("@")[0].replace(".", "") + "@example.org"
    result = loop.run_until_complete(resend(ctx, original, fixed))
    new_id = result.new_message_id or ""
    resent_at = now - timedelta(minutes=9)
    ctx.notifications.mark_sent(new_id, "sgresend", "250 Ok: queued", resent_at)
    ctx.tracking.ingest(
        [
            _event(new_id, "processed", DeliveryStatus.PROCESSED, resent_at + timedelta(seconds=4)),
            _event(new_id, "delivered", DeliveryStatus.DELIVERED, resent_at + timedelta(seconds=9)),
            _event(new_id, "open", DeliveryStatus.OPENED, resent_at + timedelta(minutes=4)),
        ],
        derive=derive_status,
        now=now,
    )
    return {"bounced": ids[11], "resend": new_id, "original": original, "batch": str(batch)}


def seed_inbox(ctx: AppContext, seeded: dict[str, str]) -> dict[str, str]:
    """What the tab room's mailbox held: two unread replies and a read one to round 1's draw,
    and a reply and a bounce that matched none of our messages."""
    now = datetime.now(UTC).replace(microsecond=0)
    sent = [
        m for m in ctx.notifications.messages(batch_id=int(seeded["batch"])) if m.state is MessageState.SENT
    ]
    answers = (
        (2, "Re: Round 1 draw", "My partner is ill. Can we still compete as a swing team?", False, 8),
        (5, "Re: Round 1 draw", "I judged this team last round. Could someone else chair?", False, 5),
        (7, "Re: Round 1 draw", "Thanks, see you in Hall B.", True, 15),
    )
    for i, subject, text, read, minutes in answers:
        m = sent[i % len(sent)]
        add_inbox(
            ctx,
            m.id,
            sender=m.address,
            from_name=m.recipient_name,
            subject=subject,
            text=text,
            read=read,
            at=now - timedelta(minutes=minutes),
        )
    stranger = add_inbox(
        ctx,
        None,
        sender="coach@school.example",
        from_name="A Coach",
        subject="Re: Round 1 draw",
        text="Is the venue wheelchair accessible? One of our speakers needs step-free access.",
        at=now - timedelta(minutes=3),
    )
    add_inbox(
        ctx,
        None,
        kind="dsn",
        sender="MAILER-DAEMON@mx.school.example",
        subject="Undelivered Mail Returned to Sender",
        at=now - timedelta(minutes=40),
        detail={
            "recipients": [
                {
                    "address": "old.captain@school.example",
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnostic": "550 5.1.1 <old.captain@school.example>: Recipient address rejected",
                }
            ]
        },
    )
    return {"replied": sent[2 % len(sent)].id, "stranger": str(stranger)}


def run_until(loop: asyncio.AbstractEventLoop, done: Callable[[], bool], timeout: float = 10.0) -> None:
    """Spin the Qt+asyncio loop until ``done()`` (the dialogs do their loading as async ops)."""

    async def wait() -> None:
        waited = 0.0
        while not done() and waited < timeout:
            await asyncio.sleep(0.02)
            waited += 0.02

    loop.run_until_complete(wait())


def settle(app: QApplication) -> None:
    """Let posted layout requests (and the ones they cause) run before grabbing."""
    for _ in range(5):
        app.sendPostedEvents()
        app.processEvents()


def over_window(window: QPixmap, dialog: QWidget) -> QPixmap:
    """The main window, dimmed, with the dialog centred on it (as the director sees it)."""
    canvas = QPixmap(window)
    shot = dialog.grab()
    p = QPainter(canvas)
    p.fillRect(canvas.rect(), QColor(0, 0, 0, 70))
    x = (canvas.width() - shot.width()) // 2
    y = max(40, (canvas.height() - shot.height()) // 2)
    for spread in range(10, 0, -2):  # a soft shadow
        p.fillRect(
            QRect(x - spread // 2, y + spread // 2, shot.width() + spread, shot.height()), QColor(0, 0, 0, 12)
        )
    p.drawPixmap(QPoint(x, y), shot)
    p.setPen(QColor(0, 0, 0, 90))
    p.drawRect(QRect(x, y, shot.width() - 1, shot.height() - 1))
    p.end()
    return canvas


def type_in(dialog: SettingsDialog, key: str, text: str) -> None:
    editor = dialog.fields[key].editor
    assert isinstance(editor, QLineEdit)
    editor.setText(text)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    configure_application(app)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = AppContext.open(Path(tmp) / "screens.sqlite3", keyring_backend=MemoryKeyring())
        try:
            load_demo(ctx)
            if not ctx.tournaments.list_all():
                ctx.tournaments.apply_import(sample_bundle())
            # SMTP through SendGrid's relay: plain SMTP sending, with delivery tracking.
            ctx.settings.set_text("backend", "smtp")
            ctx.settings.set_text("smtp.host", "smtp.sendgrid.net")
            ctx.settings.set_text("smtp.username", "apikey")
            loop = qasync.QEventLoop(app)
            asyncio.set_event_loop(loop)
            seeded = seed_sent_round(ctx, loop)
            inbox = seed_inbox(ctx, seeded)
            ctx.secrets.set("smtp-password", "not-a-real-password")
            ctx.settings.set_text("test_mode.reroute_to", "tab.director@example.org")
            qsettings = QSettings(str(Path(tmp) / "qt.ini"), QSettings.Format.IniFormat)
            window = MainWindow(ctx, qsettings=qsettings)
            window.resize(*SIZE)
            window.show()
            window.status.set_poll_result(
                datetime.now(UTC), True, "14 new events, 9 messages changed status, 5 addresses newly flagged"
            )
            window.status.set_online(True)
            tournament = ctx.tournaments.list_all()[0]
            rounds = ctx.tournaments.rounds(tournament.id)
            window.select_round(rounds[0].id)
            view = window.round_view
            bounced = view.model.message(seeded["bounced"])
            if bounced is not None:
                view.model.set_draft(bounced.id, bounced.address.replace("@", ".ie@", 1))
                view.select_message(bounced.id)
            settle(app)
            main_shot = window.grab()
            main_shot.save(str(out / "main.png"))

            view.select_message(seeded["resend"])
            view.message_view.tabs.setCurrentIndex(4)  # the timeline
            settle(app)
            window.grab().save(str(out / "message.png"))
            view.message_view.tabs.setCurrentIndex(0)

            # the original of that resend: resolved, not red, with a link to the resend
            view.select_message(seeded["original"])
            settle(app)
            window.grab().save(str(out / "resolved.png"))

            window.problems_hub.recount()
            window.select_problems(None)
            settle(app)
            window.grab().save(str(out / "problems.png"))

            # replies: the navigator's badges, a message with a new reply, then the reply read
            window.replies_hub.recount()
            window.select_round(rounds[0].id)
            view.select_message(inbox["replied"])
            view.message_view.tabs.setCurrentWidget(view.message_view.replies)  # seen: read
            window.replies_hub.recount()  # what the badges show a moment later
            settle(app)
            window.grab().save(str(out / "replies.png"))
            view.message_view.tabs.setCurrentIndex(0)

            mail = window.open_unmatched_mail()
            mail.select_entry(int(inbox["stranger"]))
            mail.resize(1100, 640)
            settle(app)
            over_window(window.grab(), mail).save(str(out / "unmatched-mail.png"))
            mail.close()

            window.select_round(rounds[1].id if len(rounds) > 1 else rounds[0].id)
            composer = window.open_composer()
            assert composer is not None
            run_until(loop, lambda: composer.plan is not None)
            composer.resize(1300, 800)
            composer.table.selectRow(2)
            composer.update_preview()
            settle(app)
            over_window(main_shot, composer).save(str(out / "compose.png"))
            composer.close()

            # Private URLs: give everyone but two a key, as a Tabbycat site would.
            with ctx.db.session() as s:
                s.execute(
                    update(TournamentRow)
                    .where(TournamentRow.id == tournament.id)
                    .values(source_url="https://meo2025.calicotab.com")
                )
                rows = s.scalars(select(PersonRow).where(PersonRow.tournament_id == tournament.id))
                for i, row in enumerate(sorted(rows, key=lambda r: r.name)):
                    row.url_key = None if i in (4, 9) else f"{(i * 7919) % 99991:05d}x{i:02d}q"
            window.select_round(rounds[0].id)
            for kind, name, row in (
                ((Event.URLS, None), "compose-urls", 1),
                ((Event.POINTS, None), "compose-points", 3),
            ):
                composer = window.open_composer(kind=kind)
                assert composer is not None
                run_until(loop, lambda c=composer: c.plan is not None)
                composer.resize(1300, 800)
                composer.table.selectRow(row)
                composer.update_preview()
                run_until(loop, lambda c=composer: c._preview_op is None or not c._preview_op.is_running())
                settle(app)
                over_window(main_shot, composer).save(str(out / f"{name}.png"))
                composer.close()
            window.select_round(rounds[0].id)
            settle(app)

            window.select_tournament(tournament.id)
            page = window.participants_page
            invalid = next((p for p in page.model.people if p.email and not p.email_valid), None)
            if invalid is not None:
                page.select_person(invalid.id)
            settle(app)
            window.grab().save(str(out / "participants.png"))

            dialog = ImportDialog(ctx, window)
            dialog.url.setText("https://meo2025.calicotab.com")
            dialog.slug.setText("meo2025")
            dialog.show()
            dialog.adjustSize()
            settle(app)
            over_window(main_shot, dialog).save(str(out / "import.png"))
            dialog.close()

            settings = SettingsDialog(ctx, window)
            settings.show()
            settings.adjustSize()
            settle(app)
            over_window(main_shot, settings).save(str(out / "settings.png"))
            settings.close()

            with SmtpTestServer() as smtp:
                settings = SettingsDialog(ctx, window)
                type_in(settings, "smtp.host", smtp.host)
                type_in(settings, "smtp.port", str(smtp.port))
                security = settings.fields["smtp.security"].editor
                security.setCurrentIndex(security.findData("none"))  # type: ignore[union-attr]
                type_in(settings, "smtp.username", "")
                settings.show()
                op = settings.test_backend("smtp")
                assert op is not None
                run_until(loop, lambda: not op.is_running())
                settings.adjustSize()
                settle(app)
                over_window(main_shot, settings).save(str(out / "settings-test.png"))
                settings.close()

            window.appearance.apply("dark")
            window.select_round(rounds[0].id)
            if bounced is not None:
                view.select_message(bounced.id)
            settle(app)
            dark_shot = window.grab()
            dark_shot.save(str(out / "main-dark.png"))
            settings = SettingsDialog(ctx, window)
            settings.show()
            settings.adjustSize()
            settle(app)
            over_window(dark_shot, settings).save(str(out / "settings-dark.png"))
            settings.close()
            window.appearance.apply("system")
            window.quit_without_asking()
            app.processEvents()
            loop.close()
            asyncio.set_event_loop(None)
        finally:
            ctx.close()
    names = (
        "main",
        "message",
        "resolved",
        "problems",
        "compose",
        "compose-urls",
        "compose-points",
        "participants",
        "import",
        "settings",
        "replies",
        "unmatched-mail",
    )
    for name in (*names, "settings-test", "main-dark", "settings-dark"):
        print(out / f"{name}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
