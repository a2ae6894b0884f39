"""Templates run on a budget: a time limit per message, a size limit per message and per value,
and a limit on the template source; each problem names the recipient and the template part."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from tabmail.cli.main import main
from tabmail.compose.recipients import Recipient
from tabmail.compose.sandbox import MAX_VALUE_CHARS
from tabmail.compose.templates import (
    MAX_MESSAGE_CHARS,
    MAX_TEMPLATE_CHARS,
    TemplateRenderError,
    check_syntax,
    render_all,
    render_for,
)
from tabmail.domain.notification import Templates
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)


def person(i: int) -> Recipient:
    return Recipient(
        person_id=i,
        name=f"Person {i}",
        address=f"p{i}@example.org",
        address_key=f"p{i}@example.org",
        role="speaker",
        reasons=("you are in the tournament",),
        context={"USER": f"Person {i}", "TOURN": "Limit Open"},
        problem=None,
    )


NESTED_LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


def test_nested_loops_stop_at_the_time_limit_naming_the_recipient_and_part() -> None:
    people = [person(1), person(2), person(3)]
    start = time.monotonic()
    parts, problems = render_all(Templates("Hi {{ USER }}", NESTED_LOOPS), people, time_limit=0.3)
    elapsed = time.monotonic() - start
    assert elapsed < 10  # 10**10 loop iterations would take hours
    assert parts == [None, None, None]
    first = problems[0]
    assert (first.recipient, first.part) == ("Person 1", "text")
    assert "took longer than 0.3 s" in first.message
    # the same loop would cost everyone the whole limit: the batch stops and says so
    assert problems[1].recipient is None and "2 other recipients not checked" in problems[1].message
    assert len(problems) == 2


def test_a_loop_that_does_nothing_still_stops() -> None:
    # no call, no output inside the loops: only the loop itself can notice the deadline
    template = "{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}"
    start = time.monotonic()
    with pytest.raises(TemplateRenderError, match=r"took longer than 0\.2 s"):
        render_for(Templates("s", template), person(1), time_limit=0.2)
    assert time.monotonic() - start < 10


def test_a_50_mb_body_for_two_people_is_refused_naming_both() -> None:
    big = "{% for i in range(50000) %}{{ 'x' * 1000 }}{% endfor %}"  # 50,000,000 characters
    parts, problems = render_all(Templates("Hi {{ USER }}", big), [person(1), person(2)])
    assert parts == [None, None]
    assert [(p.recipient, p.part) for p in problems] == [("Person 1", "text"), ("Person 2", "text")]
    assert all(f"longer than {MAX_MESSAGE_CHARS:,} characters" in p.message for p in problems)


def test_text_and_html_share_the_message_limit() -> None:
    half = "{% for i in range(600) %}{{ 'y' * 1000 }}{% endfor %}"  # 600,000 characters each
    with pytest.raises(TemplateRenderError) as info:
        render_for(Templates("s", half, "<p>" + half + "</p>"), person(1))
    assert [(p.recipient, p.part) for p in info.value.problems] == [("Person 1", "html")]
    ok = render_for(Templates("s", half), person(1))
    assert len(ok.text) > 600_000


def test_a_huge_template_source_is_refused_before_compiling() -> None:
    source = "x" * (MAX_TEMPLATE_CHARS + 1)
    problems = check_syntax(Templates("s", source))
    assert [(p.recipient, p.part) for p in problems] == [(None, "text")]
    assert f"{MAX_TEMPLATE_CHARS + 1:,} characters long" in problems[0].message


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{{ 'x' * 1000000000 }}", "repeated value"),
        ("{{ [1] * 1000000000 }}", "repeated value"),
        ("{{ 'x'|center(1000000000) }}", "result of center"),
        ("{{ 'x'.ljust(1000000000) }}", "result of ljust"),
        ("{{ 'a\nb'|indent(600000) }}", "result of indent"),
        ("{{ '%999999999d' % 1 }}", "formatted value"),
        ("{{ '%*d' % (999999999, 1) }}", "formatted value"),
        ("{{ '{:>999999999}'.format(1) }}", "formatted value"),
        ("{{ '%999999999d'|format(1) }}", "formatted value"),
        ("{{ 10 ** 100000000 }}", "too large a number"),
        ("{{ range(100000)|join('x' * 100000) }}", "joined text"),
        ("{{ ('x' * 100000).join(range(100000)|map('string')) }}", "joined text"),
        ("{{ ('a' * 100000)|replace('a', 'b' * 100000) }}", "result of replace"),
        (
            "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "namespace attribute 's'",
        ),
        (
            "{% macro f(s, n) %}{% if n %}{{ f(s ~ s, n - 1) }}{% endif %}{% endmacro %}{{ f('x', 40) }}",
            "an argument",
        ),
        (
            "{% set b %}{% for i in range(100000) %}{{ 'z' * 1000 }}{% endfor %}{% endset %}{{ b|length }}",
            "produces more than",
        ),
    ],
)
def test_values_that_would_explode_are_refused_before_they_do(template: str, words: str) -> None:
    start = time.monotonic()
    assert check_syntax(Templates("s", template)) == []  # compiling folds nothing huge
    with pytest.raises(TemplateRenderError) as info:
        render_for(Templates("s", template), person(7), time_limit=20)
    (problem,) = info.value.problems
    assert (problem.recipient, problem.part) == ("Person 7", "text")
    assert words in problem.message
    assert "limit" in problem.message or "larger" in problem.message or "large" in problem.message
    assert time.monotonic() - start < 10


def test_ordinary_templates_are_not_limited() -> None:
    template = (
        "{{ USER }} {{ '%5d' % 3 }} {{ 'ab'|center(6) }} {{ [1, 2]|join(', ') }} {{ 2 ** 10 }} "
        "{{ '{:>4}'.format(1) }} {{ '=' * 10 }}{% for i in range(3) %} {{ loop.index }}/{{ loop.length }}"
        "{% else %}none{% endfor %}{% set ns = namespace(n=0) %}{% for i in range(5) %}"
        "{% set ns.n = ns.n + i %}{% endfor %} {{ ns.n }} {{ ('x' * 1000)|length }}"
    )
    parts = render_for(Templates("s", template), person(1))
    assert parts.text.startswith("Person 1     3   ab   1, 2 1024    1 ========== 1/3 2/3 3/3 10 1000\n")
    assert MAX_VALUE_CHARS >= MAX_MESSAGE_CHARS


def test_send_custom_with_a_50_mb_body_file_refuses_in_one_line_and_queues_nothing(
    ctx: AppContext, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert load_demo_if_empty(ctx) is not None
    slug = ctx.tournaments.list_all()[0].slug
    people = ",".join(str(p.id) for p in ctx.tournaments.people(ctx.tournaments.list_all()[0].id)[:2])
    body = tmp_path / "body.txt"
    body.write_text("x" * 50_000_000)
    db = ctx.db.url  # the SQLite file's or the PostgreSQL database's URL
    args = ["--db", db, "send", "custom", "--tournament", slug, "--subject", "Hi {{ USER }}"]
    code = main([*args, "--body-file", str(body), "--people", people, "--yes", "--queue-only"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "text: the template is 50,000,000 characters long" in err
    assert ctx.notifications.batches() == []


def test_the_join_check_keeps_markup_items_and_refusals() -> None:
    scores = [{"side": "OG", "team": "A<b>", "speeches": []}]
    r = replace(person(1), context={**person(1).context, "SCORES": scores})
    parts = render_for(Templates("s", "t", "<p>{{ [SCORES, SCORES]|join(', ') }}</p>"), r)
    assert parts.html is not None
    assert "<ul><li>OG: A&lt;b&gt;</li></ul>, <ul><li>OG: A&lt;b&gt;</li></ul>" in parts.html
    with pytest.raises(TemplateRenderError, match="expected str instance"):
        render_for(Templates("s", "{{ ', '.join([1, 2]) }}"), r)
