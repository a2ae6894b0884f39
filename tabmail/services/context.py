"""The composition root for everything but Qt: one object holding the app's services.

Both the CLI and the GUI (through ``tabmail.app``) build exactly one ``AppContext``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tabmail.domain.actor import USER_NAME_SETTING, local_actor
from tabmail.domain.events import DatabaseWaiting
from tabmail.services.bus import EventBus
from tabmail.store.db import Database, resolve_url
from tabmail.store.flags import FlagRepository
from tabmail.store.inbox import InboxRepository
from tabmail.store.notifications import NotificationRepository
from tabmail.store.problems import ProblemRepository
from tabmail.store.secrets import SecretStore
from tabmail.store.settings import SettingsRepository
from tabmail.store.tournaments import TournamentRepository
from tabmail.store.tracking import TrackingRepository

if TYPE_CHECKING:
    import keyring.backend

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    db: Database
    secrets: SecretStore
    settings: SettingsRepository
    tournaments: TournamentRepository
    notifications: NotificationRepository
    flags: FlagRepository
    bus: EventBus = field(default_factory=EventBus)
    tracking: TrackingRepository = field(init=False)  # delivery events, built from db
    problems: ProblemRepository = field(init=False)  # problems and their resolutions
    inbox: InboxRepository = field(init=False)  # what was read from the tab room's mailbox

    def __post_init__(self) -> None:
        self.tracking = TrackingRepository(self.db)
        self.problems = ProblemRepository(self.db)
        self.inbox = InboxRepository(self.db)
        # A write waiting for another process's lock says so on the bus (CLI and window show it).
        self.db.on_lock_wait = lambda message: self.bus.publish(DatabaseWaiting(message))

    @classmethod
    def open(
        cls,
        db_target: str | os.PathLike[str] | None = None,
        keyring_backend: keyring.backend.KeyringBackend | None = None,
        migrate: bool = True,
        read_only: bool = False,
    ) -> AppContext:
        """Open (and migrate) the database and wire the repositories. Raises TabmailError.

        ``read_only``: never write, even when the file could be written (offline review). A
        file this process cannot write is opened read-only anyway; see ``read_only``.
        """
        secrets = SecretStore(keyring_backend)
        url = resolve_url(db_target)
        # A server database's password comes from the keyring (or TABMAIL_DB_PASSWORD), never the URL.
        password = None if url.startswith("sqlite") else secrets.get("db-password")
        db = Database(url, read_only=read_only, password=password)
        if migrate:
            backup = db.migrate()
            if backup:
                log.info("database backed up to %s before upgrading", backup)
        settings = SettingsRepository(db)
        if migrate:  # who this process records as the maker of its changes (Database.actor)
            db.actor = local_actor(settings.get(USER_NAME_SETTING))
        return cls(
            db=db,
            secrets=secrets,
            settings=settings,
            tournaments=TournamentRepository(db),
            notifications=NotificationRepository(db),
            flags=FlagRepository(db),
        )

    @property
    def user(self) -> str:
        """Who this process acts for: the user.name setting of this machine, or the login name."""
        return self.db.actor.who

    @property
    def machine(self) -> str:
        return self.db.actor.machine

    @property
    def read_only(self) -> bool:
        """Opened read-only: nothing can be sent, imported or changed."""
        return self.db.read_only

    @property
    def data_dir(self) -> Path:
        if self.db.path is not None:
            return self.db.path.parent
        import platformdirs

        return Path(platformdirs.user_data_dir("tabmail", appauthor=False))

    def close(self) -> None:
        self.notifications.close()
        self.db.dispose()
