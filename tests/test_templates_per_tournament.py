"""A tournament's own templates: kept per kind, used by later sends, stored on each batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tabmail.compose.templates import TemplateRenderError, default_templates, removal_templates
from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import Audience, Event, Templates
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)

REPO = Path(__file__).resolve().parents[1]


def test_saved_templates_are_used_and_stored_on_the_batch(ctx: AppContext) -> None:
    result = load_demo_if_empty(ctx)
    assert result is not None
    ctx.settings.set_text("from_address", "tab@example.org")
    mine = Templates("{{ ROUND }}: {{ USER }}, your room", "Go to {{ VENUE }}.\n", None)
    notify.save_templates(ctx, result.tournament_id, Event.DRAW, Audience.ADJUDICATORS, mine)
    plan = notify.plan(ctx, result.slug, Event.DRAW, round_seq=1, audience=Audience.ADJUDICATORS)
    assert plan.templates == mine
    # other kinds keep the shipped defaults
    other = notify.plan(ctx, result.slug, Event.DRAW, round_seq=1, audience=Audience.TEAMS)
    assert other.templates == default_templates(Event.DRAW, Audience.TEAMS)
    batch = notify.enqueue(ctx, plan)
    assert ctx.notifications.get_batch(batch.batch_id).templates == mine
    # a later edit does not change what the batch records as used
    notify.save_templates(ctx, result.tournament_id, Event.DRAW, Audience.ADJUDICATORS, None)
    assert ctx.notifications.get_batch(batch.batch_id).templates == mine
    again = notify.plan(ctx, result.slug, Event.DRAW, round_seq=1, audience=Audience.ADJUDICATORS)
    assert again.templates == default_templates(Event.DRAW, Audience.ADJUDICATORS)


def test_a_template_that_does_not_parse_is_not_saved(ctx: AppContext) -> None:
    result = load_demo_if_empty(ctx)
    assert result is not None
    with pytest.raises(TemplateRenderError):
        notify.save_templates(ctx, result.tournament_id, Event.BALLOT, None, Templates("{{ ROUND", "x", None))
    assert (
        ctx.tournaments.saved_templates(result.tournament_id, notify.template_key(Event.BALLOT, None)) is None
    )


def test_cli_export_edit_import_reset(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite3"
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "PYTHONPATH": str(REPO)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tabmail", "--db", str(db), *args], env=env, text=True, capture_output=True
        )

    assert run("import", "csv", str(REPO / "resources" / "demo"), "--tournament", "Demo Open").returncode == 0
    folder = tmp_path / "tpl"
    done = run("templates", "export", "--tournament", "demo-open", "--event", "ballot", str(folder))
    assert done.returncode == 0, done.stderr
    assert (folder / "subject.txt").read_text() == default_templates(Event.BALLOT, None).subject
    (folder / "subject.txt").write_text("Your ballot for {{ DEBATE }}")
    assert (
        run("templates", "import", "--tournament", "demo-open", "--event", "ballot", str(folder)).returncode
        == 0
    )
    out = tmp_path / "out"
    run("templates", "export", "--tournament", "demo-open", "--event", "ballot", str(out))
    assert (out / "subject.txt").read_text() == "Your ballot for {{ DEBATE }}"
    (folder / "body.txt").write_text("{% if %}")
    bad = run("templates", "import", "--tournament", "demo-open", "--event", "ballot", str(folder))
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    assert run("templates", "reset", "--tournament", "demo-open", "--event", "ballot").returncode == 0
    run("templates", "export", "--tournament", "demo-open", "--event", "ballot", str(out))
    assert (out / "subject.txt").read_text() == default_templates(Event.BALLOT, None).subject


def test_cli_removal_notice_is_a_template_of_its_own(tmp_path: Path) -> None:
    """The changes-only "no longer in the draw" notice: exported, kept and reset like the others,
    without touching the draw's own templates."""
    db = tmp_path / "t.sqlite3"
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "PYTHONPATH": str(REPO)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tabmail", "--db", str(db), *args], env=env, text=True, capture_output=True
        )

    assert run("import", "csv", str(REPO / "resources" / "demo"), "--tournament", "Demo Open").returncode == 0
    kind = ("--tournament", "demo-open", "--event", "draw", "--removal-notice")
    folder = tmp_path / "removed"
    done = run("templates", "export", *kind, str(folder))
    assert done.returncode == 0, done.stderr
    assert (folder / "subject.txt").read_text() == removal_templates().subject
    assert "PREVIOUS" in (folder / "body.txt").read_text()
    (folder / "subject.txt").write_text("{{ ROUND }}: please ignore our draw email, {{ USER }}")
    assert run("templates", "import", *kind, str(folder)).returncode == 0
    out = tmp_path / "out"
    run("templates", "export", *kind, str(out))
    assert (out / "subject.txt").read_text() == "{{ ROUND }}: please ignore our draw email, {{ USER }}"
    draw = tmp_path / "draw"
    run("templates", "export", "--tournament", "demo-open", "--event", "draw", str(draw))
    assert (draw / "subject.txt").read_text() == default_templates(Event.DRAW, Audience.ALL).subject
    wrong = run(
        "templates", "export", "--tournament", "demo-open", "--event", "ballot", "--removal-notice", str(out)
    )
    assert wrong.returncode != 0 and len(wrong.stderr.strip().splitlines()) == 1
    assert "--removal-notice goes with --event draw" in wrong.stderr
    assert run("templates", "reset", *kind).returncode == 0
    run("templates", "export", *kind, str(out))
    assert (out / "subject.txt").read_text() == removal_templates().subject


def test_kept_removal_notice_is_stored_under_its_own_key(ctx: AppContext) -> None:
    result = load_demo_if_empty(ctx)
    assert result is not None
    mine = Templates("{{ ROUND }}: not in the draw any more", "{{ USER }}, {{ PREVIOUS }}\n", None)
    notify.save_templates(ctx, result.tournament_id, Event.DRAW, Audience.ALL, mine, removal=True)
    for audience in Audience:  # one notice for every audience
        assert notify.templates_for(ctx, result.tournament_id, Event.DRAW, audience, removal=True) == mine
        assert notify.templates_for(ctx, result.tournament_id, Event.DRAW, audience) != mine
    with pytest.raises(TemplateRenderError):
        bad = Templates("{{ ROUND", "x", None)
        notify.save_templates(ctx, result.tournament_id, Event.DRAW, Audience.ALL, bad, removal=True)
    with pytest.raises(TabmailError, match="removal notice is a draw template"):
        notify.templates_for(ctx, result.tournament_id, Event.URLS, None, removal=True)
