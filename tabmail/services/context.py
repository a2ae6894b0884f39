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
from tabmail.store.notifications import NotificationRepository
from tabmail.store.secrets import SecretStore
from tabmail.store.settings import SettingsRepository
from tabmail.store.tournaments import TournamentRepository

if TYPE_CHECKING:
    import keyring.backend

    from tabmail.store.inbox import InboxRepository
    from tabmail.store.problems import ProblemRepository
    from tabmail.store.tracking import TrackingRepository

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
    # Built from db when first used (a command that only queues a batch loads none of them).
    _tracking: TrackingRepository | None = field(default=None, init=False, repr=False)
    _problems: ProblemRepository | None = field(default=None, init=False, repr=False)
    _inbox: InboxRepository | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        # A write waiting for another process's lock says so on the bus (CLI and window show it).
        self.db.on_lock_wait = lambda message: self.bus.publish(DatabaseWaiting(message))

    @property
    def tracking(self) -> TrackingRepository:
        """Delivery events."""
        if self._tracking is None:
            from tabmail.store.tracking import TrackingRepository

            self._tracking = TrackingRepository(self.db)
        return self._tracking

    @property
    def problems(self) -> ProblemRepository:
        """Problems and their resolutions."""
        if self._problems is None:
            from tabmail.store.problems import ProblemRepository

            self._problems = ProblemRepository(self.db)
        return self._problems

    @property
    def inbox(self) -> InboxRepository:
        """What was read from the tab room's mailbox."""
        if self._inbox is None:
            from tabmail.store.inbox import InboxRepository

            self._inbox = InboxRepository(self.db)
        return self._inbox

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
