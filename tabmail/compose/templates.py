"""Rendering the director's templates for each recipient: Jinja2 sandbox, StrictUndefined.

- Subjects and text bodies are plain text: never HTML-escaped. Subjects end up on one line.
- HTML bodies escape every printed value, whatever the template says: `|safe` is a no-op and a
  finalizer escapes even inside `{% autoescape false %}`, so imported data never becomes markup.
- Templates compile once per batch (`CompiledTemplates`); syntax errors are reported once, with
  line numbers; unknown variables and other runtime errors are reported per recipient.
- A footer with the tournament name and the reasons for the message is always appended to the
  text and HTML bodies; it is not part of the editable template.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError
from markupsafe import Markup, escape

from tabmail.compose.formatting import ScoreSheets, format_number, one_line
from tabmail.compose.recipients import Recipient
from tabmail.compose.sandbox import Budget, BudgetedEnvironment, RenderLimitError, TimeLimitError, budget
from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import Audience, Event, Templates
from tabmail.resources import resource

PARTS = ("subject", "text", "html")

# Documented limits (README, "Template limits"), per message; the sandbox's own are in
# compose/sandbox.py.
RENDER_SECONDS = 2.0  # one recipient's subject, text and HTML together
MAX_MESSAGE_CHARS = 1_000_000  # text and HTML bodies together, before the footer
MAX_SUBJECT_CHARS = 1_000
MAX_TEMPLATE_CHARS = 1_000_000  # each template's source


@dataclass(frozen=True, slots=True)
class RenderedParts:
    subject: str
    text: str
    html: str | None


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    recipient: str | None  # None: the template itself (a syntax error), not one recipient
    part: str  # "subject" | "text" | "html"
    message: str

    def __str__(self) -> str:
        prefix = f"{self.recipient}: " if self.recipient else ""
        return f"{prefix}{self.part}: {self.message}"


class TemplateRenderError(TabmailError):
    def __init__(self, problems: Sequence[TemplateProblem]) -> None:
        self.problems = list(problems)
        shown = "; ".join(str(p) for p in self.problems[:3])
        more = len(self.problems) - 3
        count = len(self.problems)
        summary = f"{count} template problem{'s' if count != 1 else ''}: {shown}"
        super().__init__(summary + (f"; and {more} more" if more > 0 else ""))


def _text_safe(value: Any) -> Any:
    return value


def _html_linebreaksbr(value: Any) -> Markup:
    return Markup("<br>\n").join(escape(str(value)).split("\n"))


def _environment(*, html: bool) -> BudgetedEnvironment:
    # Immutable: a template cannot change the context (ASSIGNMENTS.append(...)) it shares
    # with the other parts and recipients. HTML: a finalizer escapes every printed value.
    env = BudgetedEnvironment(
        html=html,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Django-isms from Tabbycat templates: `|safe` keeps escaping (imported values are never
    # markup); `|linebreaksbr` escapes first, then breaks lines.
    env.filters["safe"] = _text_safe
    env.filters["num"] = format_number
    env.filters["linebreaksbr"] = _html_linebreaksbr if html else _text_safe
    env.guard_filters()
    return env


class TemplateTimeLimitError(TemplateRenderError):
    """A recipient's render ran out of time: rendering the others would likely do the same."""


class CompiledTemplates:
    """One batch's templates, compiled once. Construction raises `TemplateRenderError` listing
    every syntax error and every template over `MAX_TEMPLATE_CHARS` (recipient None).

    Each recipient's render has `time_limit` seconds and `MAX_MESSAGE_CHARS` characters of body
    (text and HTML together; the subject `MAX_SUBJECT_CHARS`); see tabmail.compose.sandbox."""

    def __init__(self, templates: Templates, *, time_limit: float = RENDER_SECONDS) -> None:
        self.templates = templates
        self.time_limit = time_limit
        text_env, html_env = _environment(html=False), _environment(html=True)
        problems: list[TemplateProblem] = []
        compiled: dict[str, Template | None] = {}
        sources = {"subject": templates.subject, "text": templates.text, "html": templates.html}
        for part, source in sources.items():
            if source is None:
                compiled[part] = None
                continue
            if len(source) > MAX_TEMPLATE_CHARS:
                problems.append(
                    TemplateProblem(
                        None,
                        part,
                        f"the template is {len(source):,} characters long; the limit is {MAX_TEMPLATE_CHARS:,}",
                    )
                )
                continue
            try:
                compiled[part] = (html_env if part == "html" else text_env).from_string(source)
            except TemplateSyntaxError as exc:
                problems.append(TemplateProblem(None, part, f"line {exc.lineno}: {exc.message}"))
        if problems:
            raise TemplateRenderError(problems)
        self._compiled = compiled

    def render(self, recipient: Recipient, *, tournament_name: str = "") -> RenderedParts:
        """Never partial: raises `TemplateRenderError` with all of this recipient's problems
        (`TemplateTimeLimitError` when the time budget ran out)."""
        context = _render_context(recipient.context)
        problems: list[TemplateProblem] = []
        out: dict[str, str | None] = {}
        timed_out = False
        with budget(self.time_limit) as current:
            body_left = MAX_MESSAGE_CHARS
            for part in PARTS:
                template = self._compiled[part]
                if template is None:
                    out[part] = None
                    continue
                limit = MAX_SUBJECT_CHARS if part == "subject" else body_left
                try:
                    out[part] = _render_limited(template, context, limit, part, current)
                except Exception as exc:  # the template is the director's code: report, never crash
                    problems.append(TemplateProblem(recipient.name, part, _describe(exc)))
                    if isinstance(exc, TimeLimitError):
                        timed_out = True
                        break
                    continue
                if part != "subject":
                    body_left -= len(out[part] or "")
        subject = one_line(out.get("subject") or "")
        if not problems and not subject:
            problems.append(TemplateProblem(recipient.name, "subject", "the subject is empty"))
        if problems:
            raise (TemplateTimeLimitError if timed_out else TemplateRenderError)(problems)
        tournament = tournament_name or str(recipient.context.get("TOURN", ""))
        text = _text_with_footer(out["text"] or "", tournament, recipient.reasons)
        html = out["html"]
        return RenderedParts(
            subject=subject,
            text=text,
            html=_html_with_footer(html, tournament, recipient.reasons) if html is not None else None,
        )


def _render_limited(template: Template, context: dict[str, Any], limit: int, part: str, b: Budget) -> str:
    """The rendered text, refused when over ``limit``: as soon as a loop passes it, else at the
    end. Rendering cannot run away meanwhile: the budget caps all output, buffers included."""
    if part == "subject":
        error = f"the subject is longer than {MAX_SUBJECT_CHARS:,} characters"
    else:
        error = (
            f"the message is longer than {MAX_MESSAGE_CHARS:,} characters "
            "(the limit for one message's text and HTML together)"
        )
    b.limit_output(limit, error)
    text = template.render(context)
    if len(text) > limit:
        raise RenderLimitError(error)
    return text


def compile_templates(templates: Templates, *, time_limit: float = RENDER_SECONDS) -> CompiledTemplates:
    return CompiledTemplates(templates, time_limit=time_limit)


def check_syntax(templates: Templates) -> list[TemplateProblem]:
    """The syntax errors only, for an editor that validates while the director types."""
    try:
        CompiledTemplates(templates)
    except TemplateRenderError as exc:
        return exc.problems
    return []


def render_for(
    templates: Templates,
    recipient: Recipient,
    *,
    tournament_name: str = "",
    time_limit: float = RENDER_SECONDS,
) -> RenderedParts:
    """One recipient (a preview, a resend). Raises `TemplateRenderError`."""
    return CompiledTemplates(templates, time_limit=time_limit).render(
        recipient, tournament_name=tournament_name
    )


def render_all(
    templates: Templates,
    recipients: Sequence[Recipient],
    *,
    tournament_name: str = "",
    time_limit: float = RENDER_SECONDS,
) -> tuple[list[RenderedParts | None], list[TemplateProblem]]:
    """Every recipient, templates compiled once. Never raises: a recipient whose rendering failed
    gets None and its problems are listed; a syntax error gives all None and one problem each.
    The first recipient to run out of time stops the batch (the others get None unchecked):
    the same loop would likely cost every recipient the whole time limit."""
    try:
        compiled = CompiledTemplates(templates, time_limit=time_limit)
    except TemplateRenderError as exc:
        return [None] * len(recipients), exc.problems
    results: list[RenderedParts | None] = []
    problems: list[TemplateProblem] = []
    for i, recipient in enumerate(recipients):
        try:
            results.append(compiled.render(recipient, tournament_name=tournament_name))
        except TemplateTimeLimitError as exc:
            problems.extend(exc.problems)
            left = len(recipients) - i - 1
            if left:
                part = exc.problems[-1].part
                problems.append(
                    TemplateProblem(
                        None, part, f"rendering stopped there; {left} other recipients not checked"
                    )
                )
            results += [None] * (left + 1)
            break
        except TemplateRenderError as exc:
            results.append(None)
            problems.extend(exc.problems)
    return results, problems


def _describe(exc: Exception) -> str:
    message = str(exc) or type(exc).__name__
    return one_line(message)


def _render_context(context: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy in which score lists print nicely; the stored context stays plain JSON."""
    result = dict(context)
    if isinstance(result.get("SCORES"), list):
        result["SCORES"] = ScoreSheets(result["SCORES"])
    if isinstance(result.get("ASSIGNMENTS"), list):
        result["ASSIGNMENTS"] = [
            {**a, "SCORES": ScoreSheets(a["SCORES"])}
            if isinstance(a, dict) and isinstance(a.get("SCORES"), list)
            else a
            for a in result["ASSIGNMENTS"]
        ]
    return result


def _footer_lines(tournament: str, reasons: Sequence[str]) -> list[str]:
    lines = []
    if tournament:
        lines.append(f"{tournament}, sent by the tab room")
    if reasons:
        lines.append("You are receiving this because: " + "; ".join(reasons) + ".")
    return lines


def _text_with_footer(text: str, tournament: str, reasons: Sequence[str]) -> str:
    body = text.replace("\r\n", "\n").replace("\r", "\n").rstrip()
    lines = _footer_lines(tournament, reasons)
    if not lines:
        return body + "\n"
    # "-- " is the conventional signature separator: clients dim what follows, and a future
    # reply reader can cut quoted notifications there.
    return body + "\n\n-- \n" + "\n".join(lines) + "\n"


_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def _html_with_footer(html: str, tournament: str, reasons: Sequence[str]) -> str:
    lines = _footer_lines(tournament, reasons)
    if not lines:
        return html
    footer = (
        '<hr style="border: none; border-top: 1px solid #ccc; margin: 24px 0 8px;">\n'
        '<p style="color: #666; font-size: 12px; line-height: 1.4;">'
        + "<br>\n".join(str(escape(line)) for line in lines)
        + "</p>\n"
    )
    ends = list(_BODY_END.finditer(html))
    if ends:
        at = ends[-1].start()
        return html[:at] + footer + html[at:]
    return html.rstrip() + "\n" + footer


# -- defaults and help ------------------------------------------------------------------------------


def _template_name(event: Event, audience: Audience | None) -> str:
    if event == Event.DRAW:
        if audience == Audience.ADJUDICATORS:
            return "draw-adjudicators"
        if audience == Audience.TEAMS:
            return "draw-teams"
        return "draw-all"
    if event == Event.REGISTRATION:
        return "registration-adjudicators" if audience == Audience.ADJUDICATORS else "registration-teams"
    return event.value


def default_templates(event: Event, audience: Audience | None) -> Templates:
    """The bundled defaults, from resources/templates/<name>.{subject.txt,txt,html}."""
    return default_templates_named(_template_name(event, audience))


REMOVAL_NOTICE = "draw-removed"  # the bundled removal notice's file name


def removal_templates() -> Templates:
    """The bundled "you are no longer in this round's draw" notice of a changes-only re-release."""
    return default_templates_named(REMOVAL_NOTICE)


def default_templates_named(name: str) -> Templates:
    """A bundled template set by file name (``REMOVAL_NOTICE``: the changes-only removal notice)."""

    def read(suffix: str) -> str:
        return resource("templates", f"{name}.{suffix}").read_text(encoding="utf-8")

    return Templates(subject=read("subject.txt").strip(), text=read("txt"), html=read("html"))


_COMMON = [
    ("USER", "the recipient's name (names joined when several people share the address)"),
    ("TOURN", "the tournament's name"),
    ("TOURN_SHORT", "the tournament's short name"),
    ("ROLE", '"adjudicator" or "speaker"'),
]
_ROUND = [("ROUND", "the round's name"), ("ROUND_ABBR", "the round's abbreviation")]
_DEBATE = [
    ("VENUE", 'the room, or "TBA"'),
    ("DRAW", 'the teams with their sides: "A (OG) vs B (OO) vs ..."'),
    ("TEAMS", "list of teams: t.name, t.full_name, t.side, t.side_abbr, t.side_code"),
    ("DEBATE", '"<tournament> <round> @ <room>"'),
]
_ASSIGNMENTS = (
    "ASSIGNMENTS",
    "every assignment of this recipient (more than one when merged): a.VENUE, a.POSITION, ...",
)
_VARIABLES: dict[Event, list[tuple[str, str]]] = {
    Event.DRAW: [
        *_COMMON,
        *_ROUND,
        *_DEBATE,
        ("POSITION", 'adjudicators: "the chair", "the only", "a panellist" or "a trainee"'),
        (
            "PANEL",
            'adjudicators: the rest of the panel, "Name (a panellist), ..."; speakers: the whole panel',
        ),
        ("FULL_PANEL", "the whole panel, recipient included"),
        ("PANEL_MEMBERS", "list of adjudicators: m.name, m.position, m.you"),
        ("URL", "the recipient's private URL, or empty"),
        ("TEAM", "speakers: the team's name"),
        ("SIDE", 'speakers: the side, e.g. "Opening Government"'),
        ("OPPONENTS", "speakers: the other teams with their sides"),
        _ASSIGNMENTS,
    ],
    Event.BALLOT: [
        *_COMMON,
        *_ROUND,
        *_DEBATE,
        ("SCORES", "the ballot: prints as a list, or loop: t.side, t.team, t.result, t.total, t.speeches"),
        ("CONSENSUS", "true for the panel's consensus ballot, false for the adjudicator's own"),
        ("POSITION", "the recipient's position on the panel"),
        ("MOTION", "the motion debated, if known"),
        _ASSIGNMENTS,
    ],
    Event.CUSTOM: [
        *_COMMON,
        ("TEAM", "speakers: the team's name (only where known)"),
        ("INSTITUTION", "the institution's name (only where known)"),
        ("URL", "the recipient's private URL, or empty"),
        _ASSIGNMENTS,
    ],
    Event.URLS: [
        *_COMMON,
        ("URL", "the recipient's private URL (the site's landing page for them)"),
        ("KEY", "the private URL key alone"),
        _ASSIGNMENTS,
    ],
    Event.MOTIONS: [
        *_COMMON,
        *_ROUND,
        ("MOTIONS", "the motions as text: each with its reference in brackets, and its info slide"),
        ("MOTION_LIST", "list of motions: m.text, m.reference, m.info_slide (plain text)"),
    ],
    Event.POINTS: [
        *_COMMON,
        *_ROUND,
        ("TEAM", "the team's name"),
        ("POINTS", "BP: team points after the round (3-2-1-0 summed); two-team: wins"),
        ("POINTS_TEXT", 'POINTS in words: "7 points", "1 win"'),
        ("WINS", "wins (BP: firsts)"),
        ("METRIC", '"points" (BP) or "wins" (two-team formats)'),
        ("RESULT", 'this round\'s result for the team: "2nd (2 points)", "win" or "loss"'),
        ("URL", "the public team standings page, or empty when it is not public"),
    ],
    Event.REGISTRATION: [
        *_COMMON,
        ("SHORT", "teams: the team's short name"),
        ("LONG", "teams: the team's long name"),
        ("CODE", "teams: the team's code name"),
        ("BREAK", "teams: the break categories, comma-joined"),
        ("SPEAKERS", "teams: the team's speakers, comma-joined"),
        ("EMOJI", "teams: the team's emoji"),
        ("INSTITUTION", "the institution's name"),
        ("NAME", "adjudicators: the name as registered"),
        ("CONFLICTS", "adjudicators: conflicts the site shows, comma-joined"),
        ("INDEPENDENT", "adjudicators: true for an independent adjudicator"),
        ("ADJ_CORE", "adjudicators: true for the adjudication core"),
        ("URL", "adjudicators: the private URL, or empty"),
    ],
}


# The changes-only re-release's notice to people no longer in a round's draw.
_REMOVAL_VARIABLES = [
    *_COMMON,
    *_ROUND,
    ("PREVIOUS", 'what the previous email said: "room Hall 1, side Opening Government, ..."'),
]


def preview_variables(event: Event, *, removal: bool = False) -> list[tuple[str, str]]:
    """(variable, description) for the editor's help; `|num` formats a number ("75.5").
    ``removal``: the draw's removal notice (changes-only re-release)."""
    return list(_REMOVAL_VARIABLES if removal else _VARIABLES[event])
