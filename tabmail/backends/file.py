"""Dry run: every message's exact bytes written to ``<directory>/<tabmail id>.eml``.

Each file is written to a temporary name in the same folder, flushed to disk, then renamed over
the final name, so a file that exists is always complete. Nothing leaves the laptop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tabmail.backends.base import BackendInfo, Outcome, OutgoingMessage, SendHooks, SendResult
from tabmail.domain.errors import TabmailError

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")


class FileBackend:
    """The Backend protocol writing .eml files; results are SENT with the file's path as detail."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.info = BackendInfo(name="file", description=f"dry run: .eml files in {self.directory}")

    def path_for(self, message_id: str) -> Path:
        return self.directory / f"{message_id}.eml"

    async def send(self, messages: Sequence[OutgoingMessage], hooks: SendHooks) -> None:
        """Write every message handed over; never raises (a write failure is a TRANSIENT result)."""
        for msg in messages:
            if not (await hooks.handing_over([msg.id]))[0]:
                continue
            await hooks.finished(await asyncio.to_thread(self._write, msg))

    async def check(self) -> str:
        """Create the folder if needed and prove it is writable."""
        try:
            await asyncio.to_thread(self._probe)
        except OSError as exc:
            raise TabmailError(
                f"Cannot write .eml files to {self.directory}: {exc.strerror or exc}"
            ) from None
        return f"Dry run: messages are written as .eml files to {self.directory}"

    async def close(self) -> None:
        """Nothing to release."""

    def _probe(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=self.directory):
            pass

    def _write(self, msg: OutgoingMessage) -> SendResult:
        if not _SAFE_NAME.fullmatch(msg.id):
            return SendResult(
                msg.id, Outcome.PERMANENT, detail=f"message id {msg.id!r} cannot be a file name"
            )
        target = self.path_for(msg.id)
        tmp: str | None = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{msg.id}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                out.write(msg.raw)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            detail = f"cannot write {target}: {exc.strerror or exc}"
            return SendResult(msg.id, Outcome.TRANSIENT, detail=detail)
        return SendResult(msg.id, Outcome.SENT, detail=str(target))
