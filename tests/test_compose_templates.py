"""Rendering: defaults, Tabbycat templates, escaping, per-recipient and syntax problems."""

from __future__ import annotations

import pytest

from tabmail.compose.recipients import Recipient, ballot_recipients, custom_recipients, draw_recipients
from tabmail.compose.templates import (
    TemplateProblem,
    TemplateRenderError,
    check_syntax,
    default_templates,
    preview_variables,
    render_all,
    render_for,
)
from tabmail.domain.notification import Audience, Event, Templates
from tests.test_compose_recipients import SCRIPT, make_draw


def recipient(recipients: list[Recipient], key: str) -> Recipient:
    return next(r for r in recipients if r.address_key == key)


def test_every_default_template_renders_for_every_recipient() -> None:
    draw = make_draw()
    cases = [
        (Event.DRAW, Audience.ADJUDICATORS, draw_recipients(draw, Audience.ADJUDICATORS)),
        (Event.DRAW, Audience.TEAMS, draw_recipients(draw, Audience.TEAMS)),
        (Event.DRAW, Audience.ALL, draw_recipients(draw, Audience.ALL)),
        (Event.BALLOT, None, ballot_recipients(draw)),
        (Event.CUSTOM, None, custom_recipients(draw.tournament, list(draw.people.values()))),
    ]
    for event, audience, recipients in cases:
        templates = default_templates(event, audience)
        assert templates.html is not None
        parts, problems = render_all(templates, recipients)
        assert problems == [], (event, audience)
        assert len(parts) == len(recipients)
        for part, rcpt in zip(parts, recipients, strict=True):
            assert part is not None and part.html is not None
            assert rcpt.name in part.text and "\n" not in part.subject
            assert "You are receiving this because: " + "; ".join(rcpt.reasons) in part.text
            assert "BP 88" in part.text.split("\n-- \n")[1]
            assert part.html.rstrip().endswith("</html>")
            assert "You are receiving this because:" in part.html


def test_default_draw_templates_say_the_right_things() -> None:
    draw = make_draw()
    everyone = draw_recipients(draw, Audience.ALL)
    templates = default_templates(Event.DRAW, Audience.ALL)
    alice = render_for(templates, recipient(everyone, "alice@example.com"))
    assert alice.subject == "Round 2: you are the chair adjudicator in Room 3"
    assert "https://tab.example.org/bp88/privateurls/alicekey/" in alice.text
    assert "Also on the panel: Bob Jones (a panellist), Carol White (a trainee)" in alice.text
    hank = render_for(templates, recipient(everyone, "hank@example.com"))
    assert hank.subject == "Round 2: Harvard A is Opening Government in Room 3"
    # A merged recipient sees both assignments.
    bob = render_for(templates, recipient(everyone, "bob@example.com"))
    assert "you are a panellist adjudicator in Room 3" in bob.text
    assert "Yale C is Closing Opposition in Room 3" in bob.text
    assert bob.subject.endswith("(and 1 more)")


def test_default_ballot_template_formats_scores() -> None:
    receipts = ballot_recipients(make_draw())
    alice = render_for(default_templates(Event.BALLOT, None), recipient(receipts, "alice@example.com"))
    assert alice.subject == "Ballot received: BP 88 Round 2 @ Room 3"
    assert (
        "Opening Government: Harvard A, 3 points, total 152.5\n    1. Hank Hill: 76\n    2. Ivy Ng: 76.5\n"
        in alice.text
    )
    assert alice.html is not None and "<strong>152.5</strong>" in alice.html
    carol = render_for(default_templates(Event.BALLOT, None), recipient(receipts, "carol@example.com"))
    assert "your panel's ballot for BP 88 Round 2 @ Room 4" in carol.text


TABBYCAT_ADJ_SUBJECT = "{{ ROUND }} draw: you are adjudicating in {{ VENUE }}"
TABBYCAT_ADJ_BODY = (
    "<p>Hi {{ USER }},</p>\n"
    "<p>You have been assigned as {{ POSITION }} adjudicator for {{ ROUND }} in {{ VENUE }} "
    "with adjudicators {{ PANEL }} judging the teams {{ DRAW }}.</p>\n"
    "<p>{{ URL }}</p>"
)


def test_a_tabbycat_style_template_carries_over() -> None:
    templates = Templates(subject=TABBYCAT_ADJ_SUBJECT, text=TABBYCAT_ADJ_BODY, html=TABBYCAT_ADJ_BODY)
    alice = recipient(draw_recipients(make_draw(), Audience.ADJUDICATORS), "alice@example.com")
    parts = render_for(templates, alice)
    assert parts.subject == "Round 2 draw: you are adjudicating in Room 3"
    assert parts.text.startswith(
        "<p>Hi Alice Smith,</p>\n<p>You have been assigned as the chair adjudicator for Round 2 in Room 3 "
        "with adjudicators Bob Jones (a panellist), Carol White (a trainee) judging the teams "
        f"Harvard A (OG) vs {SCRIPT} (OO) vs Oxford B (CG) vs Yale C (CO).</p>\n"
        "<p>https://tab.example.org/bp88/privateurls/alicekey/</p>"
    )
    assert parts.html is not None
    assert "&lt;script&gt;alert(1)&lt;/script&gt; (OO)" in parts.html
    # Tabbycat's bare {{ SCORES }} prints a readable sheet, escaped in HTML.
    bare = Templates(subject="{{ DEBATE }}", text="{{ SCORES }}", html="{{ SCORES }}")
    receipt = recipient(ballot_recipients(make_draw()), "alice@example.com")
    printed = render_for(bare, receipt)
    assert printed.text.startswith(
        "Opening Government: Harvard A, 3 points, total 152.5\n  1. Hank Hill: 76\n"
    )
    assert printed.html is not None
    assert printed.html.startswith(
        "<ul><li>Opening Government: Harvard A, 3 points, total 152.5<ul><li>1. Hank Hill: 76</li>"
    )
    assert "<li>Opening Opposition: &lt;script&gt;alert(1)&lt;/script&gt;, 2 points" in printed.html


def test_imported_values_are_escaped_in_html_only() -> None:
    erin = recipient(draw_recipients(make_draw(), Audience.TEAMS), "erin@@bad")
    templates = Templates(
        subject="{{ TEAM }} & co",
        text="Team: {{ TEAM }}",
        html=(
            "<p>{{ TEAM }}</p><p>{{ TEAM|safe }}</p>"
            "{% autoescape false %}<p>{{ TEAM }}</p>{% endautoescape %}<p>{{ TEAM|linebreaksbr }}</p>"
        ),
    )
    parts = render_for(templates, erin)
    assert parts.subject == f"{SCRIPT} & co"
    assert parts.text.startswith(f"Team: {SCRIPT}\n")
    assert parts.html is not None
    assert SCRIPT not in parts.html
    assert parts.html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4 + 1  # 4 fields + the footer
    # Template markup itself is kept.
    assert parts.html.startswith("<p>&lt;script&gt;")


def test_every_printed_value_is_escaped_exactly_once_wherever_it_is_printed() -> None:
    """The HTML finalizer escapes each value; what the engine made itself (a macro's, a call
    block's or a set block's output, already escaped) is printed as it is, never escaped twice."""
    erin = recipient(draw_recipients(make_draw(), Audience.TEAMS), "erin@@bad")
    once = "&lt;script&gt;alert(1)&lt;/script&gt;"
    html = (
        "{% macro m(v) %}[{{ v }}]{% endmacro %}"
        "{% macro wrap() %}<b>{{ caller() }}</b>{% endmacro %}"
        "{% set block %}<i>{{ TEAM }}</i>{% endset %}"
        "<p>{{ m(TEAM) }}</p><p>{% call wrap() %}{{ TEAM }}{% endcall %}</p><p>{{ block }}</p>"
        "{% for t in [TEAM, 'a & b'] %}<li>{{ t }}</li>{% endfor %}"
        "{% autoescape false %}<p>{{ TEAM ~ '<u>' }}</p>{% endautoescape %}"
        "<p>{{ 'x' ~ TEAM }}|{{ 3 }}|{{ none }}</p>"
        # A macro or call block used under autoescape false returns a plain str (not Markup).
        "{% autoescape false %}<p>{{ m(TEAM) }}{% call wrap() %}{{ TEAM }}{% endcall %}</p>{% endautoescape %}"
        "{% autoescape false %}{% set b2 %}<i>{{ TEAM }}</i>{% endset %}<p>{{ b2 }}</p>{% endautoescape %}"
    )
    parts = render_for(Templates(subject="s", text="t", html=html), erin)
    assert parts.html is not None
    body = parts.html.split("<hr", 1)[0].rstrip()
    assert body == (
        f"<p>[{once}]</p><p><b>{once}</b></p><p><i>{once}</i></p>"
        f"<li>{once}</li><li>a &amp; b</li>"
        f"<p>{once}&lt;u&gt;</p>"
        f"<p>x{once}|3|None</p>"
        f"<p>[{once}]<b>{once}</b></p>"
        f"<p><i>{once}</i></p>"
    )


def test_subject_is_one_line_and_html_none_stays_none() -> None:
    hank = recipient(draw_recipients(make_draw(), Audience.TEAMS), "hank@example.com")
    parts = render_for(Templates(subject="Draw\n for\r\n {{ USER }}\t!", text="x"), hank)
    assert parts.subject == "Draw for Hank Hill !"
    assert parts.html is None


def test_unknown_variables_are_reported_per_recipient() -> None:
    recipients = draw_recipients(make_draw(), Audience.ADJUDICATORS)
    templates = Templates(subject="{{ ROUND }}", text="Room: {{ VENU }}", html="<p>{{ USER }}</p>")
    parts, problems = render_all(templates, recipients)
    assert parts == [None] * len(recipients)
    assert str(problems[0]) == "Alice Smith: text: 'VENU' is undefined"
    assert {p.recipient for p in problems} == {r.name for r in recipients}
    assert {p.part for p in problems} == {"text"}
    with pytest.raises(TemplateRenderError) as caught:
        render_for(templates, recipients[0])
    assert caught.value.problems == [TemplateProblem("Alice Smith", "text", "'VENU' is undefined")]
    assert "Alice Smith: text: 'VENU' is undefined" in str(caught.value)


def test_only_recipients_missing_a_variable_fail() -> None:
    everyone = draw_recipients(make_draw(), Audience.ALL)
    parts, problems = render_all(Templates(subject="{{ USER }}", text="{{ POSITION }}"), everyone)
    failed = {p.recipient for p in problems}
    assert "Hank Hill" in failed and "Alice Smith" not in failed
    for rcpt, part in zip(everyone, parts, strict=True):
        assert (part is None) == (rcpt.name in failed)
        assert (rcpt.role == "speaker") == (rcpt.name in failed)


def test_syntax_errors_are_reported_once_with_line_numbers() -> None:
    recipients = draw_recipients(make_draw(), Audience.ADJUDICATORS)
    templates = Templates(
        subject="{{ ROUND }", text="Hi {{ USER }},\n\n{% if VENUE %}\nno end", html="<p>ok</p>"
    )
    parts, problems = render_all(templates, recipients)
    assert parts == [None] * len(recipients)
    assert [(p.recipient, p.part) for p in problems] == [(None, "subject"), (None, "text")]
    assert problems[0].message.startswith("line 1: ")
    assert problems[1].message.startswith("line 4: ")
    assert check_syntax(templates) == problems
    assert check_syntax(default_templates(Event.BALLOT, None)) == []
    with pytest.raises(TemplateRenderError) as caught:
        render_for(templates, recipients[0])
    assert str(caught.value).startswith("2 template problems: subject: line 1: ")


def test_empty_subject_is_a_problem() -> None:
    alice = recipient(draw_recipients(make_draw(), Audience.ADJUDICATORS), "alice@example.com")
    with pytest.raises(TemplateRenderError, match="the subject is empty"):
        render_for(Templates(subject="{% if false %}x{% endif %}  ", text="body"), alice)


def test_the_sandbox_blocks_python_internals_and_mutation() -> None:
    alice = recipient(draw_recipients(make_draw(), Audience.ADJUDICATORS), "alice@example.com")
    for text in (
        "{{ USER.__class__.__mro__ }}",
        "{{ ASSIGNMENTS.append(1) }}",
        "{{ ''.__class__.__subclasses__() }}",
    ):
        with pytest.raises(TemplateRenderError):
            render_for(Templates(subject="s", text=text), alice)
    assert len(alice.context["ASSIGNMENTS"]) == 1


def test_a_field_of_a_dict_reads_as_jinja2s_own_sandbox_reads_it() -> None:
    """The sandbox reads ``a.ROLE`` on a plain dict straight from its item (no AttributeError
    raised and caught first): every kind of name must give what Jinja2's own immutable sandbox
    gives, a dict's methods and unsafe mutators included."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from tabmail.compose.sandbox import BudgetedEnvironment

    ours = BudgetedEnvironment(html=False, undefined=StrictUndefined)
    theirs = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    data = {"ROLE": "adjudicator", "items": "an item called items", "n": None}
    for name in ("ROLE", "n", "missing", "items", "keys", "get", "update", "pop", "__class__", "__init__"):
        got, want = ours.getattr(data, name), theirs.getattr(data, name)
        assert type(got) is type(want), name
        if isinstance(want, StrictUndefined):
            assert got._undefined_name == want._undefined_name, name
            assert got._undefined_hint == want._undefined_hint, name
        elif callable(want):
            assert got == want, name
        else:
            assert got is want, name
    for text, expected in (
        ("{{ a.ROLE }}", "adjudicator"),
        ("{{ a['items'] }}", "an item called items"),
        ("{{ a.keys()|list|length }}", "3"),
    ):
        assert render_for(Templates(subject="s", text=text), _with(alice_in_draw(), a=data)).text.startswith(
            expected
        ), text
    with pytest.raises(TemplateRenderError):
        render_for(Templates(subject="s", text="{{ a.update({}) }}"), _with(alice_in_draw(), a=data))


def alice_in_draw() -> Recipient:
    return recipient(draw_recipients(make_draw(), Audience.ADJUDICATORS), "alice@example.com")


def _with(r: Recipient, **values: object) -> Recipient:
    from dataclasses import replace

    return replace(r, context={**r.context, **values})


def test_many_problems_are_summarised() -> None:
    recipients = draw_recipients(make_draw(), Audience.ALL)
    _, problems = render_all(Templates(subject="s", text="{{ NOPE }}"), recipients)
    error = TemplateRenderError(problems)
    assert str(error).startswith(f"{len(problems)} template problems: ")
    assert str(error).endswith(f"; and {len(problems) - 3} more")


def test_tournament_name_in_footer_can_be_given() -> None:
    alice = recipient(draw_recipients(make_draw(), Audience.ADJUDICATORS), "alice@example.com")
    parts = render_for(
        Templates(subject="s", text="t", html="<html><body><p>t</p></BODY></html>"),
        alice,
        tournament_name="BP 88 Open",
    )
    assert parts.text == (
        "t\n\n-- \nBP 88 Open, sent by the tab room\n"
        "You are receiving this because: you are the chair in Room 3 for Round 2.\n"
    )
    assert parts.html is not None
    assert parts.html.index("BP 88 Open") < parts.html.index("</BODY>")


def test_preview_variables_cover_tabbycat_names() -> None:
    draw_names = {name for name, _ in preview_variables(Event.DRAW)}
    assert {
        "USER",
        "ROUND",
        "VENUE",
        "PANEL",
        "DRAW",
        "TEAM",
        "SIDE",
        "POSITION",
        "URL",
        "TOURN",
    } <= draw_names
    ballot_names = {name for name, _ in preview_variables(Event.BALLOT)}
    assert {"USER", "ROUND", "SCORES", "DEBATE", "TOURN"} <= ballot_names
    custom_names = {name for name, _ in preview_variables(Event.CUSTOM)}
    assert {"USER", "TOURN", "TEAM", "INSTITUTION"} <= custom_names and "ROUND" not in custom_names
    # Every documented variable exists in a real context of that event.
    draw = make_draw()
    contexts = {
        Event.DRAW: [r.context for r in draw_recipients(draw, Audience.ALL)],
        Event.BALLOT: [r.context for r in ballot_recipients(draw)],
        Event.CUSTOM: [
            r.context
            for r in custom_recipients(
                draw.tournament, list(draw.people.values()), teams=draw.teams, institutions=draw.institutions
            )
        ],
    }
    for event, seen in contexts.items():
        keys = set().union(*seen)
        assert {name for name, _ in preview_variables(event)} <= keys, event
