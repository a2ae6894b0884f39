"""Sending through SendGrid's v3 Web API (POST /v3/mail/send).

Every recipient is one personalization carrying ``custom_args {"tabmail_id": ...}`` and our own
Message-ID / References / X-Tabmail-Id headers. Messages that share everything but their
recipient, subject and bodies travel together: the request's content is one substitution tag
per part, and each personalization substitutes its own bodies (SendGrid allows 10,000 bytes of
substitutions per personalization and 1,000 personalizations per request). A message that does
not fit (big bodies, attachments) goes in a request of its own.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any

from tabmail.backends.base import BackendInfo, Outcome, OutgoingMessage, SendHooks, SendResult
from tabmail.domain.errors import TabmailError
from tabmail.providers.sendgrid import (
    SendGridClient,
    SendGridConnectionError,
    SendGridError,
    missing_scopes,
)

MAIL_SEND = "/v3/mail/send"
# Headers SendGrid will not take from us (reference §1.1), plus the ones it writes itself from the
# request's own fields; everything else (Message-ID, References, In-Reply-To, X-*) is passed on.
_NOT_PASSED = frozenset(
    {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type", "content-transfer-encoding"}
    | {"to", "from", "subject", "reply-to", "cc", "bcc", "sender", "date", "mime-version", "return-path"}
    | {"content-disposition", "content-id", "x-smtpapi"}
)
_PERSONALIZATION_INDEX = re.compile(r"^personalizations\.(\d+)(?:\.|$)")


@dataclass(frozen=True, slots=True)
class SendGridConfig:
    base_url: str
    api_key: str = field(repr=False)
    sandbox: bool = False  # validate only: SendGrid answers 200 and delivers nothing
    max_personalizations: int = 1000
    substitution_limit: int = 10000  # bytes of substitution keys + values per personalization
    from_address: str = ""  # check(): the sandbox test send goes from and to this address
    concurrency: int = 4  # requests in flight at once
    timeout: float = 30.0


@dataclass(slots=True)
class _Prepared:
    """One outgoing message taken apart into what a mail-send request needs."""

    outgoing: OutgoingMessage
    sender: dict[str, str]
    reply_to: tuple[tuple[str, str], ...]
    to: dict[str, str]
    subject: str
    headers: dict[str, str]
    contents: list[tuple[str, str]]  # (MIME type, text), text/plain first
    attachments: list[dict[str, str]]

    @property
    def id(self) -> str:
        return self.outgoing.id

    def batch_key(self) -> tuple[object, ...]:
        return (
            tuple(sorted(self.sender.items())),
            self.reply_to,
            self.outgoing.categories,
            tuple(kind for kind, _ in self.contents),
        )


@dataclass(slots=True)
class _Unit:
    """One planned request: several messages sharing content tags, or one message alone."""

    messages: list[_Prepared]
    substitute: bool
    broken: dict[str, str] = field(default_factory=dict)  # id -> why it cannot be sent


class SendGridBackend:
    def __init__(self, config: SendGridConfig, *, client: SendGridClient | None = None) -> None:
        self.config = config
        self._client = client or SendGridClient(config.base_url, config.api_key, timeout=config.timeout)
        host = urllib.parse.urlsplit(config.base_url).netloc or config.base_url
        mode = " (sandbox mode: nothing is delivered)" if config.sandbox else ""
        self.info = BackendInfo(
            name="sendgrid",
            description=f"SendGrid Web API at {host}{mode}",
            is_sendgrid=True,
            extra={"base_url": config.base_url, "sandbox": "yes" if config.sandbox else "no"},
        )
        # Unlikely to occur in any text; a value containing a tag is never substituted.
        nonce = secrets.token_hex(3)
        self._tags = {"text/plain": f"-tmtext{nonce}-", "text/html": f"-tmhtml{nonce}-"}

    # -- the Backend protocol --------------------------------------------------------------------

    async def send(self, messages: Sequence[OutgoingMessage], hooks: SendHooks) -> None:
        """Send every message, reporting each through hooks. Never raises for a send failure."""
        units = self.plan(messages)
        gate = asyncio.Semaphore(max(1, self.config.concurrency))
        fatal: list[SendGridError] = []  # a rejected key fails the rest without asking again

        async def run(unit: _Unit) -> None:
            async with gate:
                await self._send_unit(unit, hooks, fatal)

        try:
            async with asyncio.TaskGroup() as group:
                for unit in units:
                    group.create_task(run(unit))
        except BaseExceptionGroup as failed:
            # Only the hooks can raise here (the outbox's own errors): hand back the first one
            # as itself, not wrapped in a group.
            raise failed.exceptions[0] from None

    async def check(self) -> str:
        return await asyncio.to_thread(self._check)

    async def close(self) -> None:
        self._client.close()

    # -- planning --------------------------------------------------------------------------------

    def plan(self, messages: Sequence[OutgoingMessage]) -> list[_Unit]:
        """Split messages into requests: batches by shared content, singles where they don't fit."""
        units: list[_Unit] = []
        groups: dict[tuple[object, ...], list[_Prepared]] = {}
        for outgoing in messages:
            try:
                prepared = self._prepare(outgoing)
            except (ValueError, LookupError, TypeError) as exc:
                units.append(_Unit([], False, {outgoing.id: f"tabmail could not read this message: {exc}"}))
                continue
            if self._fits(prepared):
                groups.setdefault(prepared.batch_key(), []).append(prepared)
            else:
                units.append(_Unit([prepared], False))
        limit = max(1, min(self.config.max_personalizations, 1000))
        for members in groups.values():
            chunk: list[_Prepared] = []
            addresses: set[str] = set()
            for prepared in members:
                address = prepared.to["email"].lower()
                # one address once per request: SendGrid's uniqueness rule is unclear across
                # personalizations, so never test it
                if len(chunk) >= limit or address in addresses:
                    units.append(_Unit(chunk, len(chunk) > 1))
                    chunk, addresses = [], set()
                chunk.append(prepared)
                addresses.add(address)
            if chunk:
                units.append(_Unit(chunk, len(chunk) > 1))
        return units

    def _fits(self, prepared: _Prepared) -> bool:
        if prepared.attachments:
            return False
        size = 0
        for kind, text in prepared.contents:
            tag = self._tags[kind]
            if any(t in text for t in self._tags.values()):
                return False
            size += len(tag.encode()) + len(text.encode())
        return size <= self.config.substitution_limit

    def _prepare(self, outgoing: OutgoingMessage) -> _Prepared:
        message = outgoing.message
        senders = _addresses(message, "From")
        if senders:
            sender = _contact(senders[0])
        else:
            sender = {"email": outgoing.envelope_from}
        reply_to = tuple((a.addr_spec, _clean_name(a.display_name)) for a in _addresses(message, "Reply-To"))
        to = {"email": outgoing.envelope_to}
        for address in _addresses(message, "To"):
            if address.addr_spec.lower() == outgoing.envelope_to.lower() and address.display_name:
                to["name"] = _clean_name(address.display_name)
        headers: dict[str, str] = {}
        for name, value in message.items():
            if name.lower() not in _NOT_PASSED and name not in headers:
                headers[name] = " ".join(str(value).split())
        headers.setdefault("X-Tabmail-Id", outgoing.id)
        contents, attachments = _parts(message)
        return _Prepared(
            outgoing=outgoing,
            sender=sender,
            reply_to=reply_to,
            to=to,
            subject=str(message.get("Subject", "")),
            headers=headers,
            contents=contents,
            attachments=attachments,
        )

    def body(
        self, messages: Sequence[_Prepared], substitute: bool, *, sandbox: bool | None = None
    ) -> dict[str, Any]:
        """The JSON of one POST /v3/mail/send."""
        first = messages[0]
        personalizations = []
        for prepared in messages:
            personalization: dict[str, Any] = {"to": [prepared.to]}
            if prepared.subject:
                personalization["subject"] = prepared.subject
            if prepared.headers:
                personalization["headers"] = prepared.headers
            if substitute:
                personalization["substitutions"] = {
                    self._tags[kind]: text for kind, text in prepared.contents
                }
            personalization["custom_args"] = {"tabmail_id": prepared.id}
            personalizations.append(personalization)
        body: dict[str, Any] = {"personalizations": personalizations, "from": first.sender}
        if len(first.reply_to) == 1:
            body["reply_to"] = _named(*first.reply_to[0])
        elif first.reply_to:
            body["reply_to_list"] = [_named(*pair) for pair in first.reply_to]
        if substitute:
            body["content"] = [{"type": kind, "value": self._tags[kind]} for kind, _ in first.contents]
        else:
            body["content"] = [{"type": kind, "value": text} for kind, text in first.contents]
        if first.attachments and not substitute:
            body["attachments"] = first.attachments
        categories = list(dict.fromkeys(c[:255] for c in first.outgoing.categories if c))[:10]
        if categories:
            body["categories"] = categories
        if self.config.sandbox if sandbox is None else sandbox:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return body

    # -- sending ---------------------------------------------------------------------------------

    async def _send_unit(self, unit: _Unit, hooks: SendHooks, fatal: list[SendGridError]) -> None:
        ids = [p.id for p in unit.messages] + list(unit.broken)
        approved = list(await hooks.handing_over(ids))
        go = dict(zip(ids, approved, strict=True))
        for message_id, why in unit.broken.items():
            if go[message_id]:
                await hooks.finished(SendResult(message_id, Outcome.PERMANENT, why))
        kept = [p for p in unit.messages if go[p.id]]
        if not kept:
            return
        if fatal:
            await self._report(kept, fatal[0], hooks)
            return
        await self._post(kept, unit.substitute, hooks, fatal)

    async def _post(
        self, messages: list[_Prepared], substitute: bool, hooks: SendHooks, fatal: list[SendGridError]
    ) -> None:
        substitute = substitute and len(messages) > 1
        try:
            body = self.body(messages, substitute)
            answer = await asyncio.to_thread(self._client.request, "POST", MAIL_SEND, json=body)
        except SendGridError as exc:
            if exc.status in (401, 403):
                fatal.append(exc)
            if exc.status == 413 and len(messages) > 1:
                half = len(messages) // 2  # nothing was accepted: try smaller requests
                await self._post(messages[:half], substitute, hooks, fatal)
                await self._post(messages[half:], substitute, hooks, fatal)
                return
            culprits = _named_personalizations(exc, len(messages)) if exc.status == 400 else {}
            if culprits and len(culprits) < len(messages):
                # A 400 accepts nothing: fail only the personalizations it names, send the rest again.
                for index in sorted(culprits):
                    await self._report([messages[index]], exc, hooks, detail=culprits[index], flag=True)
                rest = [p for i, p in enumerate(messages) if i not in culprits]
                await self._post(rest, substitute, hooks, fatal)
                return
            await self._report(messages, exc, hooks)
            return
        except Exception as exc:  # a bug of ours must not lose the results of handed-over messages
            detail = f"tabmail failed while sending through SendGrid: {type(exc).__name__}: {exc}"
            for prepared in messages:
                await hooks.finished(SendResult(prepared.id, Outcome.UNCERTAIN, detail))
            return
        if answer.status == 200 and self.config.sandbox:
            detail = "validated by SendGrid in sandbox mode (HTTP 200); nothing was delivered"
        else:
            detail = f"accepted by SendGrid (HTTP {answer.status})"
        for prepared in messages:
            await hooks.finished(
                SendResult(
                    prepared.id,
                    Outcome.SENT,
                    detail,
                    code=answer.status,
                    provider_message_id=answer.message_id,
                )
            )

    async def _report(
        self,
        messages: Sequence[_Prepared],
        exc: SendGridError,
        hooks: SendHooks,
        *,
        detail: str | None = None,
        flag: bool = False,
    ) -> None:
        status = exc.status
        if isinstance(exc, SendGridConnectionError):
            outcome = Outcome.UNCERTAIN if exc.request_sent else Outcome.TRANSIENT
        elif status in (401, 403) and not flag:
            # The key, its scopes or the sender identity: a setting, the same for every message.
            # Nothing was accepted; the messages wait (queued) until the director fixes it.
            outcome = Outcome.SETUP_REFUSED
        elif status is not None and (status == 429 or status >= 500):
            outcome = Outcome.TRANSIENT
        else:
            outcome = Outcome.PERMANENT
        for prepared in messages:
            await hooks.finished(
                SendResult(
                    prepared.id,
                    outcome,
                    detail or str(exc),
                    code=status,
                    retry_after=exc.retry_after if outcome is Outcome.TRANSIENT else None,
                    flag_address=flag,
                    connection_failed=isinstance(exc, SendGridConnectionError),
                )
            )

    # -- check -----------------------------------------------------------------------------------

    def _check(self) -> str:
        notes: list[str] = []
        scopes: set[str] | None
        try:
            scopes = self._client.get_scopes()
        except SendGridError as exc:
            if exc.status != 403:
                raise
            scopes = None
            notes.append("SendGrid would not list this key's permissions, so they were not checked.")
        if scopes is not None:
            if "mail.send" not in scopes:
                raise TabmailError(
                    "The SendGrid API key lacks the 'mail.send' permission (Mail Send): "
                    "create a key with Mail Send access under Settings > API Keys"
                )
            notes.append("SendGrid accepts the API key and it may send mail (mail.send).")
        if self.config.from_address:
            probe = {
                "personalizations": [{"to": [{"email": self.config.from_address}]}],
                "from": {"email": self.config.from_address},
                "subject": "tabmail settings check",
                "content": [{"type": "text/plain", "value": "tabmail checked its SendGrid settings."}],
                "mail_settings": {"sandbox_mode": {"enable": True}},
            }
            try:
                answer = self._client.request("POST", MAIL_SEND, json=probe)
            except SendGridError as exc:
                raise SendGridError(
                    f"The sandbox test send from {self.config.from_address} failed: {exc}",
                    status=exc.status,
                    retry_after=exc.retry_after,
                    errors=exc.errors,
                ) from None
            notes.append(
                f"A sandbox-mode test send from {self.config.from_address} to itself was accepted "
                f"(HTTP {answer.status}); nothing was delivered."
            )
        else:
            notes.append("No From address is set, so no sandbox test send was made.")
        if scopes is not None:
            lacking = {k: v for k, v in missing_scopes(scopes).items() if k != "sending mail"}
            if lacking:
                parts = [f"{feature} needs {', '.join(names)}" for feature, names in lacking.items()]
                notes.append("For delivery tracking the key lacks permissions: " + "; ".join(parts) + ".")
            else:
                notes.append("The key has every permission delivery tracking uses.")
        if self.config.sandbox:
            notes.append("Sandbox mode is on: SendGrid validates messages but delivers none.")
        return " ".join(notes)


def _addresses(message: EmailMessage, name: str) -> list[Address]:
    header = message.get(name)
    if header is None:
        return []
    found = getattr(header, "addresses", None)
    if found is None:
        raise ValueError(f"the {name} header is not an address header")
    return list(found)


def _clean_name(name: str) -> str:
    # SendGrid refuses ';' and ',' in names (reference §1.2)
    return " ".join(name.replace(";", " ").replace(",", " ").split())


def _contact(address: Address) -> dict[str, str]:
    return _named(address.addr_spec, _clean_name(address.display_name))


def _named(email: str, name: str) -> dict[str, str]:
    return {"email": email, "name": name} if name else {"email": email}


def _parts(message: EmailMessage) -> tuple[list[tuple[str, str]], list[dict[str, str]]]:
    """The text and HTML bodies (text first) and every other leaf part as an attachment."""
    bodies: list[tuple[str, str]] = []
    chosen: set[int] = set()
    for kind in ("plain", "html"):
        part = message.get_body(preferencelist=(kind,))
        if part is not None and part.get_content_type() == f"text/{kind}":
            chosen.add(id(part))
            text = str(part.get_content())
            if text:
                bodies.append((f"text/{kind}", text))
    if not bodies:
        bodies.append(("text/plain", " "))  # SendGrid wants some content; an empty body stays empty
    attachments = []
    for index, part in enumerate(message.walk()):
        if part.is_multipart() or id(part) in chosen:
            continue
        payload = part.get_payload(decode=True)
        attachment = {
            "content": base64.b64encode(payload if isinstance(payload, bytes) else b"").decode("ascii"),
            "type": part.get_content_type(),
            "filename": part.get_filename() or f"part-{index}",
            "disposition": "attachment",
        }
        content_id = part.get("Content-ID")
        if content_id:
            attachment["disposition"] = "inline"
            attachment["content_id"] = str(content_id).strip("<> ")
        attachments.append(attachment)
    return bodies, attachments


def _named_personalizations(exc: SendGridError, count: int) -> dict[int, str]:
    """Index -> message, when every error of a 400 names one personalization of the request."""
    named: dict[int, str] = {}
    for item in exc.errors:
        match = _PERSONALIZATION_INDEX.match(item.field or "")
        if not match or int(match.group(1)) >= count:
            return {}
        named[int(match.group(1))] = (
            f"SendGrid rejected this recipient (HTTP 400): {item.field}: {item.message.strip()}"
        )
    return named
