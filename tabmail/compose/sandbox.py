"""The Jinja2 sandbox templates render in, with a time and size budget per message.

Jinja2's `ImmutableSandboxedEnvironment` keeps templates away from Python's internals but not
from running long or growing huge: two nested `range(100000)` loops run for hours, and
`"x" * 10**9` or a 50 MB template is "valid". Here every render gets a `Budget` (a deadline and
character counts) and the environment checks it wherever a template can spend time or memory:

- every `{% for %}` iterates through the `tabmail_iter` filter (the code generator wraps
  each loop's iterable), which checks the deadline at each item, so even a loop whose body does
  nothing stops at the deadline;
- every call (`call`), filter (wrapped), `*`, `**` and `%` operator (intercepted) checks the
  deadline; arguments and results are limited to `MAX_VALUE_CHARS` characters, and widths and
  repetition counts are checked *before* the work is done (`"x" * 10**9`, `|center(10**9)`,
  `"%999999999d" % 1` are refused without allocating anything);
- everything a template outputs, into the message or into a `{% set %}` block or macro
  buffer, is counted against `MAX_PRODUCED_CHARS` (every `{{ }}` through the finalizer, literal
  text inside loops, macros and call blocks by the code generator: elsewhere it is bounded by
  the template's own length), and what reaches the message against the caller's limit;
- `namespace()` attributes are limited like any value; `lipsum` is gone.

A template that exceeds its budget raises `RenderLimitError` (a `TimeLimitError` for the time
budget) with one sentence saying which limit; rendering code reports it per recipient and part.
Without a current budget (compile time, or code that does not set one) nothing is limited.
"""

from __future__ import annotations

import functools
import math
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from jinja2 import nodes, pass_context, pass_environment
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, _PassArg
from markupsafe import Markup, escape

from tabmail.domain.errors import TabmailError

# Documented limits (README, "Template limits"): per message (one recipient's render).
MAX_VALUE_CHARS = 1_000_000  # any single value a template builds (a string, a list)
MAX_PRODUCED_CHARS = 10_000_000  # all text a message's templates output, buffers included
MAX_POWER_BITS = 10_000  # `a ** b` on integers: at most this many bits


class RenderLimitError(TabmailError):
    """A template went over its budget; the message says which limit."""


class TimeLimitError(RenderLimitError):
    pass


class Budget:
    """One message's render budget: a deadline, the characters produced so far (buffers
    included), and the characters the part being rendered has output so far."""

    __slots__ = ("deadline", "output", "output_error", "output_limit", "produced", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.produced = 0
        self.output = 0
        self.output_limit = MAX_PRODUCED_CHARS
        self.output_error = ""

    def limit_output(self, limit: int, error: str) -> None:
        """The next part may output ``limit`` characters; over that, RenderLimitError(error)."""
        self.output, self.output_limit, self.output_error = 0, limit, error

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise TimeLimitError(
                f"took longer than {self.seconds:g} s to render (the limit for one message); "
                "look for loops that repeat too often"
            )

    def charge(self, chars: int) -> None:
        self.produced += chars
        if self.produced > MAX_PRODUCED_CHARS:
            raise RenderLimitError(
                f"produces more than {MAX_PRODUCED_CHARS:,} characters of text "
                "(the limit for one message, buffers included)"
            )


_CURRENT: ContextVar[Budget | None] = ContextVar("tabmail_render_budget", default=None)


@contextmanager
def budget(seconds: float) -> Iterator[Budget]:
    """Make a fresh budget current for the renders inside the block (this thread/task only)."""
    b = Budget(seconds)
    token = _CURRENT.set(b)
    try:
        yield b
    finally:
        _CURRENT.reset(token)


def _tick() -> None:
    b = _CURRENT.get()
    if b is not None:
        b.tick()


def _too_big(what: str, size: int) -> RenderLimitError:
    return RenderLimitError(
        f"{what} would be {size:,} characters long; the limit is {MAX_VALUE_CHARS:,} for one value"
    )


def _check_value(value: Any, what: str = "a value") -> None:
    if isinstance(value, str | list | tuple | dict) and len(value) > MAX_VALUE_CHARS:
        raise _too_big(what, len(value))


# -- sizes known before the work is done ---------------------------------------------------------

_WIDTH_ARG = {"center": 0, "ljust": 0, "rjust": 0, "zfill": 0, "indent": 0, "wordwrap": 0}


def _int_arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> int:
    value = args[index] if len(args) > index else kwargs.get(name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_DIGITS = re.compile(r"\d+")


def _ints(args: Any) -> list[int]:
    values = (
        list(args.values())
        if isinstance(args, dict)
        else list(args)
        if isinstance(args, tuple | list)
        else [args]
    )
    return [a for a in values if isinstance(a, int) and not isinstance(a, bool)]


def _check_format_string(fmt: str, args: Any) -> None:
    """Widths and precisions in a %-format or str.format string, and `*` widths from args."""
    numbers: list[int] = []
    for m in _PERCENT_SPEC.finditer(fmt):
        numbers += [int(g) for g in m.groups() if g and g != "*"]
        if "*" in m.groups():
            numbers += _ints(args)
    if "{" in fmt:
        try:
            fields = list(string.Formatter().parse(fmt))
        except ValueError:
            fields = []
        for _literal, _field, spec, _conversion in fields:
            if spec:
                numbers += [int(n) for n in _DIGITS.findall(spec)]
                if "{" in spec:  # a nested width taken from the arguments
                    numbers += _ints(args)
    for n in numbers:
        if n > MAX_VALUE_CHARS:
            raise _too_big("a formatted value", n)


def _precheck(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a filter or str method call whose result would be too big, before it runs."""
    if name in _WIDTH_ARG:
        width = _int_arg(args, kwargs, _WIDTH_ARG[name], "width")
        if name == "indent" and isinstance(value, str):
            width *= value.count("\n") + 1
        if width > MAX_VALUE_CHARS:
            raise _too_big(f"the result of {name}", width)
    elif name == "expandtabs" and isinstance(value, str):
        size = len(value) + value.count("\t") * _int_arg(args, kwargs, 0, "tabsize")
        if size > MAX_VALUE_CHARS:
            raise _too_big("the result of expandtabs", size)
    elif name == "replace" and isinstance(value, str) and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        if len(new) > len(old):
            size = len(value) + (len(value) // max(len(old), 1) + 1) * (len(new) - len(old))
            if size > MAX_VALUE_CHARS:
                raise _too_big("the result of replace", size)
    elif name in ("batch", "slice"):
        count = _int_arg(args, kwargs, 0, "linecount" if name == "batch" else "slices")
        if count > MAX_VALUE_CHARS:
            raise _too_big(f"the result of {name}", count)
    elif name == "format" and isinstance(value, str):
        _check_format_string(value, args or kwargs)


def _checked_join(separator: str, items: Iterable[Any]) -> list[Any]:
    """The items, unchanged, as a list; refused when joining them would be too big."""
    parts = list(items)
    size = sum(len(p) if isinstance(p, str) else len(str(p)) for p in parts)
    size += len(separator) * max(len(parts) - 1, 0)
    if size > MAX_VALUE_CHARS:
        raise _too_big("the joined text", size)
    return parts


def _guard_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, checking the budget first. It takes the context, which also stops Jinja2 from
    running it at compile time on constant arguments (where no budget would check it)."""
    passes = _PassArg.from_obj(fn)

    @pass_context
    def guarded(context: Context, value: Any = None, *args: Any, **kwargs: Any) -> Any:
        if passes is _PassArg.context:
            lead: tuple[Any, ...] = (context,)
        elif passes is _PassArg.eval_context:
            lead = (context.eval_ctx,)
        elif passes is _PassArg.environment:
            lead = (context.environment,)
        else:
            lead = ()
        b = _CURRENT.get()
        if b is not None:
            b.tick()
            for arg in (value, *args, *kwargs.values()):
                _check_value(arg, f"an argument of |{name}")
            _precheck(name, value, args, kwargs)
            if name == "join" and len(args) < 2 and kwargs.get("attribute") is None:
                separator = args[0] if args else kwargs.get("d", "")
                if isinstance(separator, str):
                    value = _checked_join(separator, value)
        result = fn(*lead, value, *args, **kwargs)
        if b is not None:
            _check_value(result, f"the result of |{name}")
        return result

    guarded.__name__ = getattr(fn, "__name__", name)
    guarded.__doc__ = fn.__doc__
    return guarded


class _LimitedNamespace(Namespace):
    """`namespace()` whose attributes obey the value limit (`{% set ns.s = ns.s ~ ns.s %}`)."""

    def __setitem__(self, name: str, value: Any) -> None:
        _tick()
        _check_value(value, f"namespace attribute {name!r}")
        super().__setitem__(name, value)


# -- the code generator: every loop iterates through the budget, every literal is counted ---------


class _BudgetCodeGenerator(CodeGenerator):
    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        # `{% for x in ITER %}` becomes `{% for x in ITER|tabmail_iter %}` (Jinja2 allows no
        # custom node types; a filter is called directly, not through the sandbox's `call`).
        for loop in node.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, ITER_FILTER, [], [], None, None, lineno=loop.lineno)
        # HTML: every printed value is escaped by the finalizer whatever the template says, so
        # `{% autoescape false %}` changes nothing there but what the engine makes itself: a
        # macro's, call block's or set block's output would turn from markup into a plain
        # string, and be escaped a second time when printed. So autoescape stays on.
        if getattr(self.environment, "tabmail_html", False):
            for modifier in node.find_all(nodes.EvalContextModifier):
                for option in modifier.options:
                    if option.key == "autoescape":
                        option.value = nodes.Const(True, lineno=option.lineno)
        # Literal text can only add up where it repeats: in loops, macros and call blocks.
        self._counting_output = False
        self._repeated = {
            id(output)
            for body in node.find_all((nodes.For, nodes.Macro, nodes.CallBlock))
            for output in body.find_all(nodes.Output)
        }
        super().visit_Template(node, frame)

    def visit_Output(self, node: nodes.Output, frame: Frame) -> None:
        repeated = id(node) in self._repeated
        literal = sum(len(child.data) for child in node.nodes if isinstance(child, nodes.TemplateData))
        if literal and repeated:
            self.writeline(f"environment.tabmail_charge({literal}, {frame.buffer is None})")
        # Inside loops, what goes straight into the message is counted as it goes, so a message
        # that grows too long stops early (elsewhere the caller checks the finished text).
        self._counting_output = repeated and frame.buffer is None
        super().visit_Output(node, frame)
        self._counting_output = False

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if self._counting_output:
            self.write("environment.tabmail_emit(")
        if self._escaped_by_finalize(frame, finalize):
            # HTML: the finalizer returns every value escaped, as Markup; Jinja2's own
            # ``escape(…)`` (or ``str(…)`` under autoescape false) around it would only copy it
            # (half of an HTML body's rendering time went there).
            self.write(finalize.src)
            return
        super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if self._escaped_by_finalize(frame, finalize):
            self.write(")")
        else:
            super()._output_child_post(node, frame, finalize)
        if self._counting_output:
            self.write(")")

    def _escaped_by_finalize(self, frame: Frame, finalize: Any) -> bool:
        return (
            getattr(self.environment, "tabmail_html", False)
            and finalize.src is not None
            and not frame.eval_ctx.volatile
        )


@pass_environment
def _finalize_text(_env: Any, value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    b = _CURRENT.get()
    if b is not None:
        b.produced += len(text)
        if b.produced > MAX_PRODUCED_CHARS:
            b.charge(0)  # raises
    return text


@pass_environment
def _finalize_html(_env: Any, value: Any) -> Markup:
    """Every printed value leaves escaped, whatever the template says (|safe, autoescape false);
    Markup made by the template engine itself passes unchanged."""
    text = escape(value)
    b = _CURRENT.get()
    if b is not None:
        b.produced += len(text)
        if b.produced > MAX_PRODUCED_CHARS:
            b.charge(0)  # raises
    return text


_DICT_ATTRIBUTES = frozenset(dir(dict))


class BudgetedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with the per-message budget checks described in the module docstring."""

    code_generator_class = _BudgetCodeGenerator
    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, *, html: bool, **options: Any) -> None:
        super().__init__(finalize=_finalize_html if html else _finalize_text, autoescape=html, **options)
        self.tabmail_html = html  # every printed value is escaped by _finalize_html
        self.globals.pop("lipsum", None)
        self.globals["namespace"] = _LimitedNamespace

    def guard_filters(self) -> None:
        """Wrap every filter (call after adding the project's own)."""
        for name, fn in list(self.filters.items()):
            self.filters[name] = _guard_filter(name, fn)
        self.filters[ITER_FILTER] = _iter_filter

    # hooks the generated code calls
    # (inlined Budget.charge/emit: these run for every output in a loop)
    def tabmail_charge(self, chars: int, emitted: bool) -> None:
        """Literal text inside a loop, macro or call block (``emitted``: into the message)."""
        b = _CURRENT.get()
        if b is not None:
            b.produced += chars
            if b.produced > MAX_PRODUCED_CHARS:
                b.charge(0)  # raises
            if emitted:
                b.output += chars
                if b.output > b.output_limit:
                    raise RenderLimitError(b.output_error)

    def tabmail_emit(self, text: str) -> str:
        """A printed value going straight into the message from inside a loop."""
        b = _CURRENT.get()
        if b is not None:
            b.output += len(text)
            if b.output > b.output_limit:
                raise RenderLimitError(b.output_error)
        return text

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``a.ROLE`` on a plain dict (every recipient's context is plain JSON data): its item,
        as Jinja2 would return after asking for the attribute first and failing. Going straight
        to the item skips raising and catching that AttributeError for every field a template
        prints. A dict's own attributes (``a.items``) still go the sandbox's way."""
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        b = _CURRENT.get()
        if b is None:
            return super().call(__context, __obj, *args, **kwargs)
        b.tick()
        for arg in (*args, *kwargs.values()):
            _check_value(arg, "an argument")
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            name = getattr(__obj, "__name__", "")
            _precheck(name, owner, args, kwargs)
            if name == "join" and args:
                args = (_checked_join(owner, args[0]), *args[1:])
        result = super().call(__context, __obj, *args, **kwargs)
        _check_value(result, "the result of a call")
        return result

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        b = _CURRENT.get()
        if b is not None:
            b.tick()
            if operator == "*":
                for seq, n in ((left, right), (right, left)):
                    if (
                        isinstance(seq, str | list | tuple)
                        and isinstance(n, int)
                        and len(seq) * n > MAX_VALUE_CHARS
                    ):
                        raise _too_big("the repeated value", len(seq) * n)
            elif operator == "**" and isinstance(left, int) and isinstance(right, int):
                bits = right * math.log2(abs(left)) if abs(left) > 1 and right > 0 else 0
                if bits > MAX_POWER_BITS:
                    raise RenderLimitError(
                        f"{left} ** {right} is too large a number (the limit is {MAX_POWER_BITS:,} bits)"
                    )
            elif operator == "%" and isinstance(left, str):
                _check_format_string(left, right)
        result = self.binop_table[operator](left, right)
        if b is not None:
            _check_value(result, "the result of an operator")
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt: str = value.__self__

        @functools.wraps(wrapper)
        def checked(*args: Any, **kwargs: Any) -> str:
            if _CURRENT.get() is not None:
                _check_format_string(fmt, (*args, *kwargs.values()))
            return wrapper(*args, **kwargs)

        return checked


ITER_FILTER = "tabmail_iter"


@pass_context  # never run at compile time (Jinja2 folds context-free filters on constants)
def _iter_filter(_context: Context, iterable: Any) -> Any:
    b = _CURRENT.get()
    return iterable if b is None else _ticking(b, iterable)


def _ticking(b: Budget, iterable: Any) -> Iterator[Any]:
    deadline, clock = b.deadline, time.monotonic
    for item in iterable:
        if clock() > deadline:
            b.tick()  # raises
        yield item
