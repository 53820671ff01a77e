"""Approval handlers: they tell people an approval is waiting, and some may decide at once.

The approval manager calls `await handler.notify(notice)` once per stage of a request, AFTER the
request is committed to the store (so a handler that decides at once, or a person who clicks a
link within milliseconds, always finds it). `notify` returns an `ApprovalAnswer` to decide now,
or None when the decision will come later through the store (REST, CLI, dashboard, another
process). A handler that raises is logged and the request stays pending: a broken notification
channel never approves anything.

The handlers here:

- `CallbackApprovalHandler(callback)`: your function decides at once (governor 0.2.0's API).
- `CLIApprovalHandler()`: asks the person at this terminal, as the operating system user.
- `WebhookApprovalHandler(url, secret)`: POSTs the notice as signed JSON (HMAC-SHA256; receivers
  check it with `verify_webhook_signature`), with retries.
- `SlackApprovalHandler(webhook_url)`: posts a message with buttons to a Slack incoming webhook.
- `EmailApprovalHandler(host, sender=...)`: e-mails the stage's approvers over SMTP.

Only the CLI and callback handlers decide; the others tell people, who decide through the approval
API, the dashboard or `governor approvals`. Every message carries the masked inputs only
(`notice.inputs`), never the arguments the function runs with.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import getpass
import hashlib
import hmac
import inspect
import json
import logging
import re
import smtplib
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, TextIO
from urllib.parse import urlsplit

import httpx

from governor.approvals.request import ApprovalAnswer, ApprovalNotice
from governor.errors import ConfigurationError, GovernanceError

__all__ = [
    "WEBHOOK_EVENT",
    "ApprovalHandler",
    "ApprovalNotificationError",
    "CLIApprovalHandler",
    "CallbackApprovalHandler",
    "EmailApprovalHandler",
    "SlackApprovalHandler",
    "WebhookApprovalHandler",
    "notice_text",
    "verify_webhook_signature",
    "webhook_signature",
]

logger = logging.getLogger("governor.approvals")

#: The `User-Agent` of webhook and Slack deliveries.
USER_AGENT = "governor-approvals/1"


class ApprovalHandler:
    """Base class of approval handlers (override `notify`)."""

    async def notify(self, notice: ApprovalNotice) -> ApprovalAnswer | None:
        """Tell people about `notice`; return an answer to decide now, else None."""
        raise NotImplementedError

    async def handle_approval_request(
        self, execution_id: str, function_name: str, inputs: Any, approvers: list[str]
    ) -> Any:
        """governor 0.2.0's hook; handlers written for it override this instead of `notify`."""
        raise NotImplementedError


class ApprovalNotificationError(GovernanceError):
    """A handler could not deliver its notice (after its retries), or was given nothing it can
    deliver; the request stays pending and can still be decided through the store."""


# -- shared: describing a notice ------------------------------------------------------------------


def _where(notice: ApprovalNotice) -> str:
    """`execution <id> (<function>, stage <name> 1/2)`: which request a message is about."""
    return (
        f"execution {notice.execution_id} ({notice.function_name}, stage {notice.stage!r} "
        f"{notice.stage_index + 1}/{notice.stage_count})"
    )


def _when(moment: datetime, now: datetime | None = None) -> str:
    """`2026-01-02 03:04:05 UTC (in 59m 10s)`, or `(... ago)`."""
    moment = moment.astimezone(UTC)
    left = (moment - (now or datetime.now(UTC))).total_seconds()
    text = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    if left < 0:
        return f"{text} ({_duration(-left)} ago)"
    return f"{text} (in {_duration(left)})"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
    ]
    text = " ".join(p for p in parts if p)
    if not days and not hours:
        text = f"{text} {secs}s".strip()
    return text


def _approvers(notice: ApprovalNotice) -> str:
    if not notice.approvers:
        return "anyone the integration authenticates (this stage names nobody)"
    return ", ".join(notice.approvers)


def _requested_by(notice: ApprovalNotice) -> str | None:
    subject = notice.subject or {}
    user = subject.get("user_id") or subject.get("id")
    org = subject.get("org_id")
    if not user and not org:
        return None
    return " ".join(p for p in (str(user) if user else "", f"(org {org})" if org else "") if p)


def _inputs_json(notice: ApprovalNotice) -> str:
    """The masked inputs as indented JSON (the notice never carries unmasked values)."""
    return json.dumps(notice.inputs, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _decide_hint(notice: ApprovalNotice) -> str:
    return (
        f"governor approvals approve {notice.execution_id} --reason TEXT  "
        f"(or reject; `governor approvals show {notice.execution_id}` shows it all)"
    )


def notice_text(notice: ApprovalNotice, *, now: datetime | None = None) -> str:
    """The notice as plain text for people (the terminal, e-mail bodies): the action, the stage
    and its approvers, the masked inputs, the reasons, the deadline, and how to decide."""
    qualname = notice.function_qualname
    title = notice.function_name + (
        f" ({qualname})" if qualname and qualname != notice.function_name else ""
    )
    lines = [
        f"Approval needed: {title}",
        f"  execution:  {notice.execution_id}",
        f"  stage:      {notice.stage} ({notice.stage_index + 1} of {notice.stage_count}), "
        f"{notice.quorum} approval{'s' if notice.quorum != 1 else ''} needed",
        f"  approvers:  {_approvers(notice)}",
    ]
    requested_by = _requested_by(notice)
    if requested_by:
        lines.append(f"  requested by: {requested_by}")
    lines.append(f"  requested:  {_when(notice.requested_at, now)}")
    lines.append(f"  deadline:   {_when(notice.deadline, now)}")
    if notice.expires_at != notice.deadline:
        lines.append(f"  expires:    {_when(notice.expires_at, now)}")
    lines.append("  reasons:    " + ("; ".join(notice.reasons) if notice.reasons else "-"))
    lines.append("  inputs (sensitive fields masked):")
    lines.extend("    " + line for line in _inputs_json(notice).splitlines())
    if notice.approve_url or notice.reject_url:  # the approval API: authenticated POSTs
        if notice.approve_url:
            lines.append(f"  approve:    POST {notice.approve_url}")
        if notice.reject_url:
            lines.append(f"  reject:     POST {notice.reject_url}")
    lines.append(f"  decide:     {_decide_hint(notice)}")
    return "\n".join(lines) + "\n"


# -- CallbackApprovalHandler -----------------------------------------------------------------------


class CallbackApprovalHandler(ApprovalHandler):
    """Decides at once with a function of yours (governor 0.2.0's API).

    `callback(execution_id, function_name, inputs, approvers)`, sync or async, returns
    `(approved, approver, reason)`, an `ApprovalAnswer`, or None to leave the decision to people
    (REST, CLI, dashboard). `inputs` are the masked `{"args", "kwargs"}` as the call passed them
    (a copy); `approvers` the current stage's. The answer is recorded like any other:
    `approver` must be named by the stage (a stage naming nobody accepts any), and a policy with
    `require_reason` needs a reason.
    A sync callback runs in a worker thread. A callback that raises, or answers something else,
    decides nothing: the error is logged and the request stays pending (governor 0.2.0 rejected
    it as "system" instead).

        def decide(execution_id, function_name, inputs, approvers):
            if inputs["kwargs"].get("amount", 10**9) <= 100:   # transfer(amount=...)
                return True, "auto-approver", "small amount"
            return None  # a person decides

        ApprovalPolicy(approvers=["auto-approver", "alice"])
        @govern(policies=[...], approval_handler=CallbackApprovalHandler(decide))

    `manager` is accepted for governor 0.2.0 compatibility and not used: the manager that calls
    the handler records its answer.
    """

    def __init__(self, callback: Callable[..., Any], manager: Any = None) -> None:
        if not callable(callback):
            raise ConfigurationError(
                f"CallbackApprovalHandler(callback=...) must be callable(execution_id, "
                f"function_name, inputs, approvers), got {type(callback).__name__}"
            )
        self.callback = callback
        self.manager = manager

    async def notify(self, notice: ApprovalNotice) -> ApprovalAnswer | None:
        """Ask the callback; its answer (or None) is the handler's."""
        return await self.handle_approval_request(
            notice.execution_id, notice.function_name, notice.inputs, list(notice.approvers)
        )

    async def handle_approval_request(
        self, execution_id: str, function_name: str, inputs: Any, approvers: list[str]
    ) -> ApprovalAnswer | None:
        """governor 0.2.0's hook: call the callback, return its answer as an `ApprovalAnswer`."""
        args = (execution_id, function_name, copy.deepcopy(inputs), list(approvers))
        callback = self.callback
        if _is_async_callable(callback):
            result = await callback(*args)
        else:
            result = await asyncio.to_thread(callback, *args)
            if inspect.isawaitable(result):
                result = await result
        return self._answer(result, execution_id)

    def _answer(self, result: Any, execution_id: str) -> ApprovalAnswer | None:
        name = getattr(self.callback, "__qualname__", None) or type(self.callback).__name__
        where = f"CallbackApprovalHandler: callback {name} for execution {execution_id}"
        if result is None:
            return None
        if isinstance(result, ApprovalAnswer):
            answer = result
        elif (
            isinstance(result, tuple | list)
            and len(result) in (2, 3)
            and isinstance(result[0], bool)
        ):
            reason = result[2] if len(result) == 3 else None
            approver = result[1]
            answer = ApprovalAnswer(
                result[0],
                "" if approver is None else str(approver),
                None if reason is None else str(reason),
            )
        else:
            raise TypeError(
                f"{where} returned {type(result).__name__}; it must return (approved, approver, "
                "reason), an ApprovalAnswer, or None to let people decide. Nothing was decided; "
                "the request stays pending"
            )
        if not answer.approver.strip():
            raise ValueError(
                f"{where} answered without an approver: an approval must say who decided; "
                "return (approved, 'name', reason). Nothing was decided; the request stays pending"
            )
        return answer


def _is_async_callable(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


# -- CLIApprovalHandler ----------------------------------------------------------------------------


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception as error:  # getuser raises OSError (3.13) or KeyError (3.11) without a user
        raise ConfigurationError(
            f"CLIApprovalHandler: cannot tell the operating system user ({error}); pass "
            "approver='name', the identity the approval is recorded under"
        ) from error


class CLIApprovalHandler(ApprovalHandler):
    """Asks the person at this terminal.

    Prints the notice (function, stage, approvers, masked inputs, reasons, deadline) on
    `output_stream` (default: standard output) and reads from `input_stream` (default: standard
    input) `y` (approve) or `n` (reject), then a reason. An empty answer or the end of input
    decides nothing: the request stays pending for the REST API, the dashboard or
    `governor approvals`. The answer is recorded as `approver` (default: the operating system
    user, `getpass.getuser()`), never typed in; when the stage names approvers and `approver` is
    not one of them, nothing is asked. Prompts of concurrent requests are asked one at a time.

        CLIApprovalHandler()                   # records the OS user
        CLIApprovalHandler(approver="alice")   # an identity the approval policies name
    """

    #: Answers that are neither y/n nor empty are asked again this many times.
    max_attempts = 3
    _terminal = threading.Lock()

    def __init__(
        self,
        approver: str | None = None,
        input_stream: TextIO | None = None,
        output_stream: TextIO | None = None,
    ) -> None:
        self.approver = (approver if approver is not None else _os_user()).strip()
        if not self.approver:
            raise ConfigurationError("CLIApprovalHandler(approver=...) must name someone")
        self.input_stream = input_stream
        self.output_stream = output_stream

    async def notify(self, notice: ApprovalNotice) -> ApprovalAnswer | None:
        """Prompt in a worker thread (the event loop keeps running); the answer, or None."""
        return await asyncio.to_thread(self.prompt, notice)

    def prompt(self, notice: ApprovalNotice) -> ApprovalAnswer | None:
        """Show `notice` and ask (blocking); the answer, or None when nobody decided."""
        stdin = self.input_stream if self.input_stream is not None else sys.stdin
        out = self.output_stream if self.output_stream is not None else sys.stdout
        with self._terminal:
            out.write("\n" + notice_text(notice))
            if notice.approvers and self.approver not in notice.approvers:
                out.write(
                    f"You are {self.approver!r}, whom this stage does not name: not asking. "
                    f"An approver decides with: {_decide_hint(notice)}\n"
                )
                out.flush()
                return None
            approved = self._ask_yes_no(stdin, out)
            if approved is None:
                out.write(
                    "No decision: the request stays pending until its deadline. "
                    f"Decide later with: {_decide_hint(notice)}\n"
                )
                out.flush()
                return None
            label = "Reason (optional): " if approved else "Reason for rejecting: "
            out.write(label)
            out.flush()
            line = stdin.readline()
            reason = line.strip() or None
            if not line:
                out.write("\n")
            verb = "approve" if approved else "reject"
            out.write(f"Recording: {self.approver} {verb}s {_where(notice)}.\n")
            out.flush()
            return ApprovalAnswer(approved, self.approver, reason)

    def _ask_yes_no(self, stdin: TextIO, out: TextIO) -> bool | None:
        for _ in range(self.max_attempts):
            out.write(f"Approve as {self.approver}? [y/N] (Enter: no decision now) ")
            out.flush()
            line = stdin.readline()
            if not line:  # end of input
                out.write("\n")
                return None
            answer = line.strip().lower()
            if not answer:
                return None
            if answer in ("y", "yes"):
                return True
            if answer in ("n", "no"):
                return False
            out.write(f"Please answer y (approve) or n (reject), not {answer!r}.\n")
        return None


# -- signed webhooks -------------------------------------------------------------------------------

#: The `event` field and `X-Governor-Event` header of an approval request delivery.
WEBHOOK_EVENT = "approval.requested"
_RETRYABLE_4XX = frozenset({408, 429})


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


def webhook_signature(body: bytes, timestamp: str, secret: str | bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 with `secret` over `timestamp + "." + body`."""
    message = timestamp.encode("ascii") + b"." + body
    return "sha256=" + hmac.new(_secret_bytes(secret), message, hashlib.sha256).hexdigest()


def verify_webhook_signature(
    body: bytes,
    timestamp: str,
    signature: str,
    secret: str | bytes,
    tolerance_seconds: float | None = 300,
    *,
    now: float | None = None,
) -> bool:
    """True if `signature` (the `X-Governor-Signature` header) signs `body` (the raw request
    body, as received) and `timestamp` (the `X-Governor-Timestamp` header) with `secret`, and the
    timestamp is within `tolerance_seconds` of `now` (default: the clock), so a captured delivery
    cannot be replayed later. Compares in constant time; any malformed input is False. Receivers
    should also ignore an `X-Governor-Delivery` id they have already processed.

        ok = verify_webhook_signature(
            await request.body(),
            request.headers["X-Governor-Timestamp"],
            request.headers["X-Governor-Signature"],
            secret,
        )
    """
    if not secret:
        raise ConfigurationError("verify_webhook_signature: the secret is empty")
    if not isinstance(body, bytes | bytearray) or not isinstance(signature, str):
        return False
    if not isinstance(timestamp, str) or not timestamp.isascii() or not timestamp.isdigit():
        return False
    if tolerance_seconds is not None:
        current = time.time() if now is None else now
        if abs(current - int(timestamp)) > tolerance_seconds:
            return False
    given = signature.strip()
    if not given.startswith("sha256=") or not given.isascii():
        return False
    expected = webhook_signature(bytes(body), timestamp, secret)
    return hmac.compare_digest(expected.encode("ascii"), given.encode("ascii"))


def _check_url(handler: str, url: str, what: str) -> str:
    if not isinstance(url, str) or not url:
        raise ConfigurationError(f"{handler}: {what} is required")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{handler}: {what} must be an http:// or https:// URL with a host, got "
            f"{_safe_url(url)!r}"
        )
    return url


def _safe_url(url: str, *, hide_path: bool = False) -> str:
    """The URL without credentials, query or fragment (and without its path if secret)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    path = "/…" if hide_path and parts.path not in ("", "/") else parts.path
    return f"{parts.scheme}://{host}{path}"


def _snippet(response: httpx.Response) -> str:
    text = " ".join(response.text.split())[:200]
    return f" {text!r}" if text else ""


def _post(
    *,
    handler: str,
    notice: ApprovalNotice,
    url: str,
    target: str,
    build: Callable[[], tuple[bytes, dict[str, str]]],
    timeout: float,
    retries: int,
    backoff: float,
    hint: str,
) -> int:
    """POST `build()`'s body and headers (rebuilt per attempt), retrying connection errors,
    timeouts, 408, 429 and 5xx with exponential backoff; return the number of attempts.

    Blocking: handlers call it in a worker thread (`asyncio.to_thread`), so it works however
    the manager drives their coroutine (a sync governed call steps it outside any asyncio Task,
    where httpx's async client cannot run). Raises `ApprovalNotificationError` saying which
    handler, which execution, what failed and what to do."""
    attempts = retries + 1
    last = ""
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for attempt in range(1, attempts + 1):
            body, headers = build()
            try:
                response = client.post(url, content=body, headers=headers)
            except httpx.TimeoutException as error:
                last = f"no answer within timeout={timeout}s ({type(error).__name__})"
            except httpx.TransportError as error:
                last = f"connection failed ({type(error).__name__}: {error or 'no detail'})"
            else:
                status = response.status_code
                if response.is_success:
                    return attempt
                if status < 500 and status not in _RETRYABLE_4XX:
                    raise ApprovalNotificationError(
                        f"{handler}: {target} refused the approval request of {_where(notice)} "
                        f"with HTTP {status}{_snippet(response)}; not retried, a {status} does "
                        f"not change on retry. {hint} The request stays pending; decide it "
                        f"with: {_decide_hint(notice)}"
                    )
                last = f"HTTP {status}{_snippet(response)}"
            if attempt < attempts:
                delay = backoff * 2 ** (attempt - 1)
                logger.warning(
                    "governor: %s: delivering the approval request of %s to %s failed "
                    "(attempt %d of %d: %s); retrying in %.2fs",
                    handler,
                    _where(notice),
                    target,
                    attempt,
                    attempts,
                    last,
                    delay,
                )
                time.sleep(delay)
    raise ApprovalNotificationError(
        f"{handler}: could not deliver the approval request of {_where(notice)} to {target} "
        f"after {attempts} attempt{'s' if attempts != 1 else ''}; last: {last}. Is the receiver "
        f"up and reachable from here? {hint} The request stays pending; decide it with: "
        f"{_decide_hint(notice)}"
    )


def _check_retries(handler: str, timeout: float, retries: int, backoff: float) -> None:
    if timeout <= 0:
        raise ConfigurationError(f"{handler}: timeout must be > 0 seconds, got {timeout}")
    if retries < 0 or int(retries) != retries:
        raise ConfigurationError(f"{handler}: retries must be a whole number >= 0, got {retries}")
    if backoff < 0:
        raise ConfigurationError(f"{handler}: backoff must be >= 0 seconds, got {backoff}")


class WebhookApprovalHandler(ApprovalHandler):
    """POSTs every approval request, signed, to your HTTP endpoint; never decides.

    The body is `notice.as_dict()` plus `"event": "approval.requested"` as JSON (masked inputs,
    stage, approvers, deadline, approve/reject URLs when the manager has a `base_url`). Headers:

    - `X-Governor-Event: approval.requested`
    - `X-Governor-Delivery`: an id that stays the same across the retries of one delivery
      (receivers drop ids they have seen);
    - `X-Governor-Timestamp`: Unix seconds, and `X-Governor-Signature: sha256=<hex>`, the
      HMAC-SHA256 with `secret` over `timestamp + "." + body`: check it with
      `verify_webhook_signature` (it also refuses stale timestamps).

    A connection error, a timeout (`timeout` seconds), 408, 429 or a 5xx is retried `retries`
    times, after `backoff`, 2x`backoff`, 4x`backoff`... seconds; another 4xx is not. When every
    attempt fails it raises `ApprovalNotificationError` (logged by the manager; the request stays
    pending). `headers` are added to every request (e.g. an `Authorization` your gateway wants).
    The receiver decides through the approval API (`approve_url`/`reject_url`) or the store.

        WebhookApprovalHandler(
            "https://hooks.acme.example/governor", secret=os.environ["HOOK_SECRET"]
        )
    """

    def __init__(
        self,
        url: str,
        secret: str | bytes,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        name = type(self).__name__
        self.url = _check_url(name, url, "url")
        if not secret:
            raise ConfigurationError(
                f"{name}: a secret is required: receivers check every delivery's signature "
                "with it (verify_webhook_signature)"
            )
        _check_retries(name, timeout, retries, backoff)
        self._secret = _secret_bytes(secret)
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_safe_url(self.url)!r}, secret=***)"

    def body(self, notice: ApprovalNotice) -> bytes:
        """The JSON body delivered for `notice`."""
        document = {"event": WEBHOOK_EVENT, **notice.as_dict()}
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str).encode(
            "utf-8"
        )

    async def notify(self, notice: ApprovalNotice) -> None:
        """Deliver `notice` (with retries); raises `ApprovalNotificationError` if it cannot."""
        body = self.body(notice)
        delivery = uuid.uuid4().hex

        def build() -> tuple[bytes, dict[str, str]]:
            timestamp = str(int(time.time()))
            return body, {
                **self.headers,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "X-Governor-Event": WEBHOOK_EVENT,
                "X-Governor-Delivery": delivery,
                "X-Governor-Timestamp": timestamp,
                "X-Governor-Signature": webhook_signature(body, timestamp, self._secret),
            }

        await asyncio.to_thread(
            functools.partial(
                _post,
                handler=type(self).__name__,
                notice=notice,
                url=self.url,
                target=_safe_url(self.url),
                build=build,
                timeout=self.timeout,
                retries=self.retries,
                backoff=self.backoff,
                hint="Check the URL, and that the receiver verifies with the same secret.",
            )
        )
        return None


# -- Slack -----------------------------------------------------------------------------------------


def _mrkdwn(text: str) -> str:
    """Escape the three characters Slack's mrkdwn gives a meaning (`&`, `<`, `>`)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int, more: str) -> str:
    return text if len(text) <= limit else text[: max(0, limit - len(more))] + more


class SlackApprovalHandler(ApprovalHandler):
    """Posts every approval request to a Slack channel through an incoming webhook; never
    decides.

    The message has a header ("Approval needed: <function>"), fields (execution, stage,
    approvers, quorum, requested by, deadline), the masked inputs as a code block (clipped to
    Slack's limits), the reasons, and how to decide: the approval API's POST endpoints
    (`approve_url`/`reject_url`, when the manager has a `base_url`) and the `governor approvals`
    command (no buttons: those links are authenticated POSTs, not pages a browser opens);
    `text` is the plain fallback for notifications. Delivery is retried like
    `WebhookApprovalHandler`'s (`retries`, `backoff`, `timeout`); on failure it raises
    `ApprovalNotificationError` (logged; the request stays pending). The webhook URL is a secret:
    errors show only its host.

        SlackApprovalHandler(os.environ["SLACK_APPROVALS_WEBHOOK"])   # https://hooks.slack.com/services/...
    """

    def __init__(
        self, webhook_url: str, *, timeout: float = 5.0, retries: int = 3, backoff: float = 0.5
    ) -> None:
        name = type(self).__name__
        self.webhook_url = _check_url(name, webhook_url, "webhook_url")
        _check_retries(name, timeout, retries, backoff)
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_safe_url(self.webhook_url, hide_path=True)!r})"

    def payload(self, notice: ApprovalNotice) -> dict[str, Any]:
        """The Slack message for `notice` (`text` and Block Kit `blocks`)."""
        now = datetime.now(UTC)
        function = notice.function_name
        header = _clip(f"Approval needed: {function}", 150, "…")
        fields = [
            f"*Execution*\n`{notice.execution_id}`",
            f"*Stage*\n{_mrkdwn(notice.stage)} ({notice.stage_index + 1} of "
            f"{notice.stage_count}), quorum {notice.quorum}",
            f"*Approvers*\n{_mrkdwn(_approvers(notice))}",
            f"*Deadline*\n{_when(notice.deadline, now)}",
        ]
        if notice.function_qualname and notice.function_qualname != function:
            fields.insert(0, f"*Function*\n`{_mrkdwn(notice.function_qualname)}`")
        requested_by = _requested_by(notice)
        if requested_by:
            fields.append(f"*Requested by*\n{_mrkdwn(requested_by)}")
        more = "\n… (clipped; `governor approvals show` shows all)"
        inputs = _clip(_mrkdwn(_inputs_json(notice)), 2900, more)
        reasons = "\n".join(f"• `{_mrkdwn(r)}`" for r in notice.reasons) or "-"
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": header}},
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": _clip(f, 2000, "…")} for f in fields[:10]],
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*Inputs* (sensitive fields masked)\n```{inputs}```",
                },
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _clip(f"*Reasons*\n{reasons}", 3000, "…")},
            },
        ]
        # The links are the approval API's authenticated POST endpoints, not pages a browser
        # can open from a button, so they are shown as text next to the CLI command.
        decide = f"Decide with: {_decide_hint(notice)}"
        if notice.approve_url:
            decide = (
                f"Decide with an authenticated POST to {notice.approve_url} or "
                f"{notice.reject_url}, or: {_decide_hint(notice)}"
            )
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _mrkdwn(decide)}]}
        )
        text = (
            f"Approval needed: {function} (execution {notice.execution_id}, stage "
            f"{notice.stage}); approvers: {_approvers(notice)}; deadline "
            f"{_when(notice.deadline, now)}"
        )
        return {"text": _mrkdwn(text), "blocks": blocks}

    async def notify(self, notice: ApprovalNotice) -> None:
        """Post the message (with retries); raises `ApprovalNotificationError` if it cannot."""
        body = json.dumps(self.payload(notice), ensure_ascii=False, default=str).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        await asyncio.to_thread(
            functools.partial(
                _post,
                handler=type(self).__name__,
                notice=notice,
                url=self.webhook_url,
                target=_safe_url(self.webhook_url, hide_path=True),
                build=lambda: (body, headers),
                timeout=self.timeout,
                retries=self.retries,
                backoff=self.backoff,
                hint="Check the incoming webhook in Slack's app settings (a revoked one answers "
                "403/404/410).",
            )
        )
        return None


# -- e-mail ----------------------------------------------------------------------------------------

_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


def _is_address(value: str) -> bool:
    return bool(_ADDRESS.match(value))


class EmailApprovalHandler(ApprovalHandler):
    """E-mails every approval request to the current stage's approvers over SMTP; never decides.

    The message is plain text: the function, execution, stage, approvers, deadline, the masked
    inputs, the reasons, and the approve/reject links when the manager has a `base_url` (else the
    `governor approvals` command to run). Subject: `[governor] Approval needed: <function>
    (<stage>)`.

    - `recipients` maps approver ids to addresses (`{"alice": "alice@acme.example"}`); without
      it, approvers that look like e-mail addresses are written to. A stage naming nobody is
      sent to every address of `recipients`. Approvers without an address are logged and
      skipped; when nobody is left it raises `ApprovalNotificationError`.
    - `host`, `port`: the SMTP server; `use_ssl` for implicit TLS (usually port 465),
      `starttls` to upgrade a plain connection (usually 587); `username`/`password` to log in.
    - `timeout`: seconds for the connection and each SMTP command.

    Sending runs in a worker thread (`smtplib`). A transient failure (connection refused or
    dropped, a timeout, a 4xx reply) is retried once after `retry_delay` seconds; a permanent
    one (5xx, authentication, TLS) raises at once. Failures raise `ApprovalNotificationError`,
    logged by the manager; the request stays pending.

        EmailApprovalHandler(
            "smtp.acme.example", 587, starttls=True, sender="governor@acme.example",
            username="governor", password=os.environ["SMTP_PASSWORD"],
            recipients={"alice": "alice@acme.example"},
        )
    """

    #: Seconds before the one retry of a transient failure.
    retry_delay = 1.0

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        sender: str,
        recipients: Mapping[str, str] | None = None,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        use_ssl: bool = False,
        timeout: float = 10,
    ) -> None:
        name = type(self).__name__
        if not host:
            raise ConfigurationError(f"{name}: host (the SMTP server) is required")
        if not isinstance(sender, str) or not _is_address(sender):
            raise ConfigurationError(
                f"{name}: sender must be an e-mail address such as governor@acme.example, got "
                f"{sender!r}"
            )
        if starttls and use_ssl:
            raise ConfigurationError(
                f"{name}: use either use_ssl=True (implicit TLS, usually port 465) or "
                "starttls=True (upgrade, usually port 587), not both"
            )
        if (username is None) != (password is None):
            raise ConfigurationError(f"{name}: give both username and password, or neither")
        if timeout <= 0:
            raise ConfigurationError(f"{name}: timeout must be > 0 seconds, got {timeout}")
        bad = {k: v for k, v in (recipients or {}).items() if not _is_address(str(v))}
        if bad:
            raise ConfigurationError(
                f"{name}: recipients must map approver ids to e-mail addresses; not addresses: "
                + ", ".join(f"{k!r}: {v!r}" for k, v in bad.items())
            )
        self.host = host
        self.port = int(port)
        self.sender = sender
        self.recipients = dict(recipients) if recipients is not None else None
        self.username = username
        self._password = password
        self.starttls = starttls
        self.use_ssl = use_ssl
        self.timeout = float(timeout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.host!r}, {self.port}, sender={self.sender!r})"

    def addresses(self, notice: ApprovalNotice) -> tuple[list[str], list[str]]:
        """(addresses to write to, approvers without an address) for `notice`'s stage."""
        if not notice.approvers:
            return list(dict.fromkeys((self.recipients or {}).values())), []
        found: list[str] = []
        missing: list[str] = []
        for approver in notice.approvers:
            if self.recipients is not None:
                address = self.recipients.get(approver)
            else:
                address = approver if _is_address(approver) else None
            if address:
                found.append(address)
            else:
                missing.append(approver)
        return list(dict.fromkeys(found)), missing

    def message(self, notice: ApprovalNotice, to: Sequence[str]) -> EmailMessage:
        """The e-mail for `notice`, addressed to `to`."""
        message = EmailMessage()
        message["Subject"] = (
            f"[governor] Approval needed: {notice.function_name} ({notice.stage}, "
            f"{notice.stage_index + 1}/{notice.stage_count})"
        )
        message["From"] = self.sender
        message["To"] = ", ".join(to)
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid("governor", domain=self.sender.rsplit("@", 1)[1])
        message["X-Governor-Execution-Id"] = notice.execution_id
        message["Auto-Submitted"] = "auto-generated"
        body = notice_text(notice)
        body += (
            "\nYou receive this because the approval policy of this action names you as an "
            "approver.\n"
        )
        message.set_content(body)
        return message

    async def notify(self, notice: ApprovalNotice) -> None:
        """Send the e-mail (in a worker thread); raises `ApprovalNotificationError` if it cannot."""
        name = type(self).__name__
        to, missing = self.addresses(notice)
        if missing:
            logger.warning(
                "governor: %s: no e-mail address for approver(s) %s of %s; add them to "
                "recipients={'id': 'address'}",
                name,
                ", ".join(missing),
                _where(notice),
            )
        if not to:
            who = "names nobody" if not notice.approvers else f"names {_approvers(notice)}"
            raise ApprovalNotificationError(
                f"{name}: nobody to e-mail about {_where(notice)}: the stage {who} and none has "
                "an address; map approvers to addresses with recipients={'alice': "
                "'alice@acme.example'}. The request stays pending; decide it with: "
                f"{_decide_hint(notice)}"
            )
        await asyncio.to_thread(self._send_with_retry, self.message(notice, to), to, notice)
        return None

    def _send_with_retry(
        self, message: EmailMessage, to: list[str], notice: ApprovalNotice
    ) -> None:
        name = type(self).__name__
        server = f"{self.host}:{self.port}"
        for attempt in (1, 2):
            try:
                refused = self._send(message, to)
            except Exception as error:
                transient, what = _smtp_failure(error)
                if transient and attempt == 1:
                    logger.warning(
                        "governor: %s: sending the approval request of %s through %s failed "
                        "(%s); retrying in %.1fs",
                        name,
                        _where(notice),
                        server,
                        what,
                        self.retry_delay,
                    )
                    time.sleep(self.retry_delay)
                    continue
                tries = "after a retry" if attempt == 2 else "not retried (a permanent failure)"
                raise ApprovalNotificationError(
                    f"{name}: could not e-mail the approval request of {_where(notice)} to "
                    f"{', '.join(to)} through {server}, {tries}: {what}. The request stays "
                    f"pending; decide it with: {_decide_hint(notice)}"
                ) from error
            if refused:
                logger.warning(
                    "governor: %s: %s refused recipient(s) %s of the approval request of %s; "
                    "the others were sent",
                    name,
                    server,
                    ", ".join(f"{a} ({c[0]})" for a, c in refused.items()),
                    _where(notice),
                )
            return

    def _send(self, message: EmailMessage, to: list[str]) -> dict[str, tuple[int, bytes]]:
        smtp: smtplib.SMTP
        if self.use_ssl:
            smtp = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username is not None and self._password is not None:
                smtp.login(self.username, self._password)
            return smtp.send_message(message, from_addr=self.sender, to_addrs=to)


def _smtp_failure(error: BaseException) -> tuple[bool, str]:
    """(transient?, what failed and what to check) of an SMTP sending error."""
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return False, f"the server refused the login ({error.smtp_code}); check username/password"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        listed = ", ".join(f"{a} ({c})" for a, (c, _) in error.recipients.items())
        return all(400 <= c < 500 for c in codes), f"every recipient was refused: {listed}"
    if isinstance(error, smtplib.SMTPSenderRefused):
        return (
            400 <= error.smtp_code < 500,
            f"the sender was refused ({error.smtp_code} {_smtp_text(error.smtp_error)}); "
            "check sender=",
        )
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return False, f"{error}; check starttls/use_ssl and whether the server needs a login"
    if isinstance(error, smtplib.SMTPResponseException):
        code = error.smtp_code
        return 400 <= code < 500, f"the server answered {code} {_smtp_text(error.smtp_error)}"
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return True, f"the server closed the connection ({error or 'no detail'})"
    if isinstance(error, ssl.SSLError):
        return False, (
            f"TLS failed ({error}); use_ssl is for implicit TLS (port 465), starttls for 587"
        )
    if isinstance(error, TimeoutError | OSError):
        return True, (
            f"cannot reach the server ({type(error).__name__}: {error or 'no detail'}); is it "
            "up and reachable from here?"
        )
    return False, f"{type(error).__name__}: {error}"


def _smtp_text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())[:200]
