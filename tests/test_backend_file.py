"""FileBackend: the dry run writes each message's exact bytes to <dir>/<id>.eml."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from tabmail.backends.base import Outcome, OutgoingMessage, SendResult
from tabmail.backends.file import FileBackend
from tabmail.domain.errors import TabmailError


def make_message(n: int) -> OutgoingMessage:
    msg = EmailMessage()
    msg["From"] = "Tab Room <tab@tournament.test>"
    msg["To"] = f"judge{n}@example.org"
    msg["Subject"] = f"Round 3 draw: room {n}"
    msg["X-Tabmail-Id"] = f"m{n:05d}"
    msg.set_content(f"Hello judge {n},\n.This line starts with a dot.\nRoom: Lecture Théâtre\n")
    raw = msg.as_bytes(policy=policy.SMTP)
    return OutgoingMessage(f"m{n:05d}", "bounces@tournament.test", f"judge{n}@example.org", msg, raw)


class RecordingHooks:
    def __init__(self, skip: Sequence[str] = ()) -> None:
        self.skip = set(skip)
        self.handed: list[str] = []
        self.results: dict[str, SendResult] = {}

    async def handing_over(self, ids: Sequence[str]) -> Sequence[bool]:
        self.handed.extend(ids)
        return [i not in self.skip for i in ids]

    async def finished(self, result: SendResult) -> None:
        assert result.message_id not in self.results, "two results for one message"
        self.results[result.message_id] = result


def test_writes_parseable_eml_files_with_the_exact_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "dry-run"  # created on demand
    backend = FileBackend(folder)
    messages = [make_message(i) for i in range(3)]
    hooks = RecordingHooks()

    asyncio.run(backend.send(messages, hooks))

    assert backend.info.name == "file"
    assert hooks.handed == [m.id for m in messages]
    for msg in messages:
        path = folder / f"{msg.id}.eml"
        result = hooks.results[msg.id]
        assert (result.outcome, result.detail) == (Outcome.SENT, str(path))
        assert path.read_bytes() == msg.raw
        parsed = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        assert parsed["X-Tabmail-Id"] == msg.id
        assert parsed["Subject"] == msg.message["Subject"]
        assert ".This line starts with a dot." in parsed.get_content()
    assert sorted(p.name for p in folder.iterdir()) == [f"{m.id}.eml" for m in messages]  # no temp files


def test_skipped_messages_are_not_written(tmp_path: Path) -> None:
    hooks = RecordingHooks(skip=["m00001"])

    asyncio.run(FileBackend(tmp_path).send([make_message(0), make_message(1)], hooks))

    assert sorted(hooks.results) == ["m00000"]
    assert [p.name for p in tmp_path.iterdir()] == ["m00000.eml"]


def test_rewriting_replaces_the_file_whole(tmp_path: Path) -> None:
    (tmp_path / "m00000.eml").write_bytes(b"an older, much longer attempt " * 100)
    message = make_message(0)

    asyncio.run(FileBackend(tmp_path).send([message], RecordingHooks()))

    assert (tmp_path / "m00000.eml").read_bytes() == message.raw


def test_unwritable_folder_is_a_transient_result_and_check_says_why(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    backend = FileBackend(blocker / "out")
    hooks = RecordingHooks()

    asyncio.run(backend.send([make_message(0)], hooks))

    result = hooks.results["m00000"]
    assert result.outcome is Outcome.TRANSIENT
    assert result.detail.startswith(f"cannot write {blocker / 'out' / 'm00000.eml'}: ")
    with pytest.raises(TabmailError, match=r"Cannot write \.eml files to"):
        asyncio.run(backend.check())


def test_check_creates_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b"
    assert (
        asyncio.run(FileBackend(folder).check()) == f"Dry run: messages are written as .eml files to {folder}"
    )
    assert folder.is_dir()
    assert list(folder.iterdir()) == []
