"""The bundled demo (`make run`) can send private URLs: its people have Tabbycat-style keys on
a pretend site, so "Send Private URLs…" works in practice mode like any other send."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage
from pathlib import Path

from tabmail.domain.notification import Event, MessageState
from tabmail.domain.practice import BACKEND as PRACTICE
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.demo import DEMO_SITE, load_demo_if_empty
from tests.keyrings import MemoryKeyring
from tests.practice_support import FakeTime, send_all

# Tabbycat's landing page for a private URL, with its key format (8 lowercase letters or digits).
LANDING = re.compile(re.escape(DEMO_SITE) + r"/demo-open/privateurls/([a-z0-9]{8})/")


def test_demo_people_have_tabbycat_url_keys(practice_demo: AppContext) -> None:
    t = practice_demo.tournaments.list_all()[0]
    assert t.source_url == DEMO_SITE
    people = practice_demo.tournaments.people(t.id)
    keys = [p.url_key for p in people if p.url_key]
    assert len(keys) == len(people) - 1  # one speaker was added after the keys were generated
    assert len(set(keys)) == len(keys)  # unique in the tournament, as Tabbycat requires
    assert all(re.fullmatch(r"[a-z0-9]{8}", k) for k in keys)


def test_demo_keys_are_the_same_at_every_load(practice_demo: AppContext, tmp_path: Path) -> None:
    other = AppContext.open(str(tmp_path / "other.sqlite3"), keyring_backend=MemoryKeyring())
    try:
        assert load_demo_if_empty(other) is not None
        a = {
            p.name: p.url_key
            for p in practice_demo.tournaments.people(practice_demo.tournaments.list_all()[0].id)
        }
        b = {p.name: p.url_key for p in other.tournaments.people(other.tournaments.list_all()[0].id)}
        assert a == b
    finally:
        other.close()


def test_send_private_urls_in_the_demo_in_practice_mode(practice_demo: AppContext) -> None:
    ctx, t = practice_demo, FakeTime()
    assert ctx.settings.all()["backend"] == PRACTICE
    slug = ctx.tournaments.list_all()[0].slug
    plan = notify.plan(ctx, slug, Event.URLS)
    people = ctx.tournaments.people(ctx.tournaments.list_all()[0].id)
    # Everyone with a key and a usable address is ticked; the one without a key is unusable.
    (no_key,) = [p for p in plan.recipients if p.mark is notify.Mark.NO_KEY]
    assert "no private URL key" in (no_key.problem or "")
    unusable = sum(1 for p in plan.recipients if p.mark in (notify.Mark.NO_ADDRESS, notify.Mark.INVALID))
    assert unusable == 2  # the demo's missing and invalid addresses
    assert len(plan.default_selection()) == len(people) - 3

    result = notify.enqueue(ctx, plan)
    send_all(ctx, t)
    messages = ctx.notifications.messages(batch_id=result.batch_id)
    assert len(messages) == result.queued == len(people) - 3
    assert {m.state for m in messages} == {MessageState.SENT}
    by_name = {p.name: p.url_key for p in people}
    for m in messages:
        parsed = email.message_from_bytes(ctx.notifications.raw(m.id), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        body = parsed.get_body(("plain",))
        assert body is not None
        found = LANDING.findall(body.get_content())
        assert found and set(found) == {by_name[m.recipient_name]}
    # Sent once: a second "Send Private URLs…" ticks nobody.
    assert notify.plan(ctx, slug, Event.URLS).default_selection() == set()
