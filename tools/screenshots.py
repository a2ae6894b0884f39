"""Render tabmail's main screens to PNGs at 1440×900, offscreen, for the README.

    python tools/screenshots.py OUTDIR

Writes main.png (a round selected), participants.png, import.png and settings.png. Uses the
demo tournament (services/demo.py) in a temporary database, or a small built-in sample when
the demo loader is not available.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QPoint, QRect, QSettings
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import QApplication, QWidget

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
from tabmail.domain.tournament import Position, Role
from tabmail.gui.importer import ImportDialog
from tabmail.gui.main_window import MainWindow
from tabmail.gui.settings import SettingsDialog
from tabmail.services.context import AppContext
from tabmail.store.secrets import MemoryKeyring

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
            ctx.settings.set_text("backend", "smtp")
            ctx.settings.set_text("smtp.host", "smtp.example.org")
            ctx.settings.set_text("smtp.username", "tabroom")
            ctx.secrets.set("smtp-password", "not-a-real-password")
            ctx.settings.set_text("test_mode.reroute_to", "tab.director@example.org")
            qsettings = QSettings(str(Path(tmp) / "qt.ini"), QSettings.Format.IniFormat)
            window = MainWindow(ctx, qsettings=qsettings)
            window.resize(*SIZE)
            window.show()
            tournament = ctx.tournaments.list_all()[0]
            rounds = ctx.tournaments.rounds(tournament.id)
            window.select_round(rounds[0].id)
            settle(app)
            main_shot = window.grab()
            main_shot.save(str(out / "main.png"))

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
            window.close()
            app.processEvents()
        finally:
            ctx.close()
    for name in ("main", "participants", "import", "settings"):
        print(out / f"{name}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
