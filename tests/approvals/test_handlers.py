"""The approval handlers against real receivers on 127.0.0.1: an HTTP server that verifies the
webhook signature and can fail deliveries, an SMTP server (aiosmtpd), the terminal handler on
injected streams, and each handler driven by the `ApprovalManager` over an in-memory store and a
SQLite file, where the decision comes back through the store."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from governor import ApprovalPolicy, ApprovalRejected, AuditPolicy, InMemoryStorage, govern
from governor.approvals.handlers import (
    ApprovalNotificationError,
    CallbackApprovalHandler,
    CLIApprovalHandler,
    EmailApprovalHandler,
    SlackApprovalHandler,
    WebhookApprovalHandler,
    verify_webhook_signature,
    webhook_signature,
)
from governor.approvals.manager import ApprovalManager, ApprovalOutcome, ApprovalRequest
from governor.approvals.request import ApprovalAnswer, ApprovalNotice, build_request
from governor.decision import Decision
from governor.errors import ConfigurationError
from governor.events import EventEmitter
from governor.serialization import MASK
from governor.storage import SQLStorage, StorageBackend
from governor.storage.records import (
    ApprovalRecord,
    ApprovalStatus,
    ExecutionRecord,
    ExecutionStatus,
    utcnow,
)

SECRET_VALUE = "hunter2-do-not-leak"
HOOK_SECRET = "whsec-test-0123456789"
BASE_URL = "https://governor.acme.example/govern"


# -- stores and requests ----------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    """A real store: in memory, and a SQLite file in tmp_path."""
    backend: StorageBackend = (
        InMemoryStorage() if request.param == "memory" else SQLStorage(f"sqlite:///{tmp_path}/g.db")
    )
    yield backend
    backend.close()


def pending(
    store: StorageBackend,
    *,
    stages: list[list[str]] | None = None,
    timeout_seconds: int = 60,
    function: str = "transfer",
) -> ApprovalRecord:
    """Commit an `awaiting_approval` execution and its approval request; return the request."""
    stages = [["alice"]] if stages is None else stages
    execution = ExecutionRecord(
        function_name=function,
        function_qualname=f"payments.{function}",
        status=ExecutionStatus.AWAITING_APPROVAL,
    )
    approvers = [a for stage in stages for a in stage]
    record = build_request(
        execution_id=execution.id,
        function_name=function,
        function_qualname=f"payments.{function}",
        function_path=f"payments.{function}",
        approval={
            "required": True,
            "approvers": approvers,
            "stages": stages,
            "timeout_seconds": timeout_seconds,
            "quorum": 1,
        },
        policies=[],
        arguments={"args": [250], "kwargs": {"password": SECRET_VALUE, "to": "acct-9"}},
        inputs={"args": [250], "kwargs": {"password": MASK, "to": "acct-9"}},
        subject={"user_id": "agent-7", "org_id": "acme"},
        reasons=["approval.required:transfer"],
        decision={"decision": "confirm"},
    )
    with store.transaction() as tx:
        tx.save_execution(execution)
        tx.add_approval(record)
    return record


def notice(
    stages: list[list[str]] | None = None, base_url: str | None = BASE_URL
) -> ApprovalNotice:
    """The notice of a fresh request (in a throw-away store)."""
    return ApprovalNotice.of(pending(InMemoryStorage(), stages=stages), base_url)


def run_manager(
    store: StorageBackend, record: ApprovalRecord, handler: Any, *, base_url: str | None = None
) -> ApprovalOutcome:
    """Let a manager notify `handler` about `record` and wait for the decision."""
    manager = ApprovalManager(store, handlers=[handler], poll_interval=0.02, base_url=base_url)
    request = ApprovalRequest(
        execution_id=record.execution_id,
        function_name=record.function_name,
        function_qualname=record.function_qualname,
        approval=record.decision,
        decision=Decision("confirm"),
        inputs=dict(record.inputs),  # type: ignore[arg-type]
        arguments={},
        subject=dict(record.subject),
        storage=store,
        emitter=EventEmitter(),
    )
    return manager.request_approval_sync(request)


def assert_masked(text: str) -> None:
    assert SECRET_VALUE not in text
    assert MASK in text


# -- a real HTTP receiver ---------------------------------------------------------------------


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool | None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 recording POSTs. With `secret` it checks each delivery's
    signature (401 if wrong); the first `fail_first` deliveries get `fail_status`, the first
    `slow_first` are answered after `slow_seconds`; `on_delivery` runs on each accepted one."""

    secret: str | None = None
    fail_first: int = 0
    fail_status: int = 500
    slow_first: int = 0
    slow_seconds: float = 0.0
    on_delivery: Callable[[Delivery], None] | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    url: str = ""

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified = None
                if receiver.secret is not None:
                    verified = verify_webhook_signature(
                        body,
                        headers.get("x-governor-timestamp", ""),
                        headers.get("x-governor-signature", ""),
                        receiver.secret,
                    )
                delivery = Delivery(self.path, headers, body, verified)
                receiver.deliveries.append(delivery)
                index = len(receiver.deliveries)
                if index <= receiver.slow_first:
                    time.sleep(receiver.slow_seconds)
                if verified is False:
                    status = 401
                elif index <= receiver.fail_first:
                    status = receiver.fail_status
                else:
                    status = 200
                    if receiver.on_delivery is not None:
                        receiver.on_delivery(delivery)
                payload = b"ok" if status == 200 else b"receiver says no"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


# -- a real SMTP receiver ---------------------------------------------------------------------


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    message: Message

    @property
    def body(self) -> str:
        payload = self.message.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload.decode("utf-8")


@dataclass
class MailReceiver:
    """aiosmtpd on 127.0.0.1 (port 0) in its own event loop thread. The first `fail_first`
    messages get `fail_reply`; with `login` set, AUTH is offered (without TLS) and checked."""

    fail_first: int = 0
    fail_reply: str = "451 4.3.0 Try again later"
    login: tuple[str, str] | None = None
    on_mail: Callable[[Mail], None] | None = None
    mails: list[Mail] = field(default_factory=list)
    attempts: int = 0
    logins: list[str] = field(default_factory=list)
    port: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.attempts += 1
        if self.attempts <= self.fail_first:
            return self.fail_reply
        content = envelope.original_content or b""
        mail = Mail(str(envelope.mail_from), list(envelope.rcpt_tos), message_from_bytes(content))
        self.mails.append(mail)
        if self.on_mail is not None:
            self.on_mail(mail)
        return "250 OK"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        user, password = data.login.decode(), data.password.decode()
        self.logins.append(user)
        ok = (user, password) == self.login
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535

    def __enter__(self) -> MailReceiver:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

        def factory() -> SMTP:
            if self.login is None:
                return SMTP(self, hostname="mx.test")
            return SMTP(  # PLAIN only, so each connection tries one login (smtplib tries all)
                self,
                hostname="mx.test",
                authenticator=self._authenticate,
                auth_require_tls=False,
                auth_exclude_mechanism=["LOGIN"],
            )

        self._server = asyncio.run_coroutine_threadsafe(
            self._loop.create_server(factory, "127.0.0.1", 0), self._loop
        ).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


def email_handler(mx: MailReceiver, **options: Any) -> EmailApprovalHandler:
    handler = EmailApprovalHandler("127.0.0.1", mx.port, sender="governor@acme.example", **options)
    handler.retry_delay = 0.0
    return handler


# -- the webhook ------------------------------------------------------------------------------


def test_webhook_posts_the_masked_notice_signed_so_the_receiver_verifies_it() -> None:
    note = notice()
    with Receiver(secret=HOOK_SECRET) as receiver:
        handler = WebhookApprovalHandler(
            f"{receiver.url}/hooks/governor", HOOK_SECRET, headers={"X-Team": "payments"}
        )
        assert asyncio.run(handler.notify(note)) is None  # a webhook never decides

    [delivery] = receiver.deliveries
    assert delivery.verified is True
    assert delivery.path == "/hooks/governor"
    body = delivery.json()
    assert body["event"] == "approval.requested"
    assert body == {"event": "approval.requested", **note.as_dict()}
    assert body["inputs"] == {"args": [250], "kwargs": {"password": MASK, "to": "acct-9"}}
    assert body["approve_url"] == f"{BASE_URL}/approvals/{note.execution_id}/approve"
    assert_masked(delivery.body.decode())
    headers = delivery.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-governor-event"] == "approval.requested"
    assert headers["x-team"] == "payments"
    assert len(headers["x-governor-delivery"]) == 32
    assert headers["x-governor-signature"] == webhook_signature(
        delivery.body, headers["x-governor-timestamp"], HOOK_SECRET
    )


def test_webhook_signed_with_another_secret_is_refused_by_the_receiver_and_not_retried() -> None:
    with Receiver(secret="the-receivers-secret") as receiver:
        handler = WebhookApprovalHandler(receiver.url, "another-secret", backoff=0.01)
        with pytest.raises(ApprovalNotificationError) as caught:
            asyncio.run(handler.notify(notice()))
    assert len(receiver.deliveries) == 1
    assert receiver.deliveries[0].verified is False
    message = str(caught.value)
    assert "WebhookApprovalHandler" in message and "HTTP 401" in message
    assert "not retried" in message and "same secret" in message
    assert "another-secret" not in message


def test_webhook_retries_5xx_with_one_delivery_id_until_it_is_accepted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with Receiver(secret=HOOK_SECRET, fail_first=2) as receiver:
        handler = WebhookApprovalHandler(receiver.url, HOOK_SECRET, retries=3, backoff=0.01)
        with caplog.at_level(logging.WARNING, logger="governor.approvals"):
            asyncio.run(handler.notify(notice()))
    assert len(receiver.deliveries) == 3
    assert all(d.verified for d in receiver.deliveries)
    assert len({d.headers["x-governor-delivery"] for d in receiver.deliveries}) == 1
    assert len({d.body for d in receiver.deliveries}) == 1
    assert "attempt 1 of 4: HTTP 500" in caplog.text


def test_webhook_gives_up_after_its_retries_and_says_what_failed() -> None:
    note = notice()
    with Receiver(secret=HOOK_SECRET, fail_first=10, fail_status=503) as receiver:
        handler = WebhookApprovalHandler(receiver.url, HOOK_SECRET, retries=2, backoff=0.01)
        with pytest.raises(ApprovalNotificationError) as caught:
            asyncio.run(handler.notify(note))
    assert len(receiver.deliveries) == 3
    message = str(caught.value)
    assert "after 3 attempts" in message and "HTTP 503" in message
    assert note.execution_id in message and "transfer" in message
    assert f"governor approvals approve {note.execution_id}" in message


def test_webhook_does_not_retry_a_4xx() -> None:
    with Receiver(fail_first=5, fail_status=404) as receiver:
        handler = WebhookApprovalHandler(receiver.url, HOOK_SECRET, backoff=0.01)
        with pytest.raises(ApprovalNotificationError, match="HTTP 404"):
            asyncio.run(handler.notify(notice()))
    assert len(receiver.deliveries) == 1


def test_webhook_retries_a_refused_connection() -> None:
    handler = WebhookApprovalHandler(closed_port_url(), HOOK_SECRET, retries=2, backoff=0.01)
    with pytest.raises(ApprovalNotificationError) as caught:
        asyncio.run(handler.notify(notice()))
    message = str(caught.value)
    assert "after 3 attempts" in message and "connection failed" in message
    assert "http://127.0.0.1:" in message


def test_webhook_retries_a_timeout_with_the_same_delivery_id() -> None:
    with Receiver(secret=HOOK_SECRET, slow_first=1, slow_seconds=1.0) as receiver:
        handler = WebhookApprovalHandler(receiver.url, HOOK_SECRET, timeout=0.2, backoff=0.01)
        asyncio.run(handler.notify(notice()))
    assert len(receiver.deliveries) == 2
    assert len({d.headers["x-governor-delivery"] for d in receiver.deliveries}) == 1


def test_webhook_error_never_shows_the_urls_query_or_credentials() -> None:
    url = closed_port_url().replace("http://", "http://user:pw@") + "?token=tok-123"
    handler = WebhookApprovalHandler(url, HOOK_SECRET, retries=0)
    with pytest.raises(ApprovalNotificationError) as caught:
        asyncio.run(handler.notify(notice()))
    assert "tok-123" not in str(caught.value) and "pw@" not in str(caught.value)
    assert "secret=***" in repr(handler) and HOOK_SECRET not in repr(handler)


@pytest.mark.parametrize(
    ("url", "secret", "options", "expected"),
    [
        ("ftp://x.example/hook", "s", {}, "http:// or https://"),
        ("https:///nohost", "s", {}, "with a host"),
        ("https://x.example/hook", "", {}, "a secret is required"),
        ("https://x.example/hook", "s", {"retries": -1}, "retries"),
        ("https://x.example/hook", "s", {"timeout": 0}, "timeout"),
    ],
)
def test_webhook_configuration_errors_are_raised_at_once(
    url: str, secret: str, options: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        WebhookApprovalHandler(url, secret, **options)


def test_verify_webhook_signature_refuses_tampering_other_secrets_and_stale_timestamps() -> None:
    body = b'{"event":"approval.requested"}'
    now = 1_700_000_000
    stamp = str(now)
    good = webhook_signature(body, stamp, HOOK_SECRET)
    assert good.startswith("sha256=") and len(good) == 7 + 64
    assert verify_webhook_signature(body, stamp, good, HOOK_SECRET, now=now)
    assert verify_webhook_signature(body, stamp, good, HOOK_SECRET.encode(), now=now + 299)
    assert not verify_webhook_signature(body + b" ", stamp, good, HOOK_SECRET, now=now)
    assert not verify_webhook_signature(body, stamp, good, "other", now=now)
    assert not verify_webhook_signature(body, str(now + 1), good, HOOK_SECRET, now=now)
    assert not verify_webhook_signature(body, stamp, good, HOOK_SECRET, now=now + 301)
    assert not verify_webhook_signature(body, stamp, good, HOOK_SECRET, now=now - 301)
    assert verify_webhook_signature(body, stamp, good, HOOK_SECRET, None, now=now + 10**6)
    for broken in (good[7:], "sha1=" + good[7:], good[:-1], "sha256=zz", "sha256=é", ""):
        assert not verify_webhook_signature(body, stamp, broken, HOOK_SECRET, now=now)
    for stamp_broken in ("", "abc", "1.5", "-1"):
        assert not verify_webhook_signature(body, stamp_broken, good, HOOK_SECRET, now=now)
    with pytest.raises(ConfigurationError):
        verify_webhook_signature(body, stamp, good, "", now=now)


def test_webhook_then_a_decision_through_the_store_approves_the_waiting_call(
    store: StorageBackend,
) -> None:
    record = pending(store)

    def decide(delivery: Delivery) -> None:
        assert delivery.verified
        body = delivery.json()
        assert body["approve_url"] == f"{BASE_URL}/approvals/{record.execution_id}/approve"
        store.decide_approval(body["execution_id"], approver="alice", approved=True, reason="ok")

    with Receiver(secret=HOOK_SECRET, on_delivery=decide) as receiver:
        handler = WebhookApprovalHandler(receiver.url, HOOK_SECRET)
        outcome = run_manager(store, record, handler, base_url=BASE_URL)
    assert outcome == ApprovalOutcome("approved", "alice", "ok")
    assert len(receiver.deliveries) == 1
    assert store.get_approval(record.execution_id).status is ApprovalStatus.APPROVED  # type: ignore[union-attr]


def test_a_webhook_that_cannot_deliver_leaves_the_request_pending(
    store: StorageBackend, caplog: pytest.LogCaptureFixture
) -> None:
    record = pending(store)
    record.stage_deadline = utcnow() + timedelta(seconds=0.3)
    record.on_timeout = "pending"
    with store.transaction() as tx:
        tx.update_approval(record)
    handler = WebhookApprovalHandler(closed_port_url(), HOOK_SECRET, retries=0)
    outcome = run_manager(store, record, handler)
    assert outcome.status == "pending"
    stored = store.get_approval(record.execution_id)
    assert stored is not None and stored.status is ApprovalStatus.PENDING and not stored.votes
    assert "WebhookApprovalHandler" in caplog.text and record.execution_id in caplog.text


# -- Slack ------------------------------------------------------------------------------------


def test_slack_posts_blocks_with_masked_inputs_and_how_to_decide() -> None:
    note = notice()
    with Receiver() as slack:
        asyncio.run(SlackApprovalHandler(f"{slack.url}/services/T1/B2/xyz").notify(note))
    [delivery] = slack.deliveries
    assert delivery.path == "/services/T1/B2/xyz"
    payload = delivery.json()
    assert_masked(delivery.body.decode())
    assert "Approval needed: transfer" in payload["text"]
    assert note.execution_id in payload["text"]
    kinds = [b["type"] for b in payload["blocks"]]
    assert kinds == ["header", "section", "section", "section", "context"]
    header, fields, inputs, reasons, decide = payload["blocks"]
    assert header["text"] == {"type": "plain_text", "text": "Approval needed: transfer"}
    field_text = "\n".join(f["text"] for f in fields["fields"])
    for expected in ("*Execution*", note.execution_id, "*Stage*", "alice", "*Deadline*", "agent-7"):
        assert expected in field_text
    inputs_text = inputs["text"]["text"]
    assert "```" in inputs_text and MASK in inputs_text and "acct-9" in inputs_text
    assert "approval.required:transfer" in reasons["text"]["text"]
    # the approval API takes authenticated POSTs: shown as text, never as GET link buttons
    how = decide["elements"][0]["text"]
    assert f"POST to {note.approve_url}" in how and str(note.reject_url) in how
    assert f"governor approvals approve {note.execution_id}" in how


def test_slack_without_links_says_which_command_decides() -> None:
    note = notice(base_url=None)
    payload = SlackApprovalHandler("https://hooks.slack.com/services/T/B/x").payload(note)
    assert payload["blocks"][-1]["type"] == "context"
    assert f"governor approvals approve {note.execution_id}" in json.dumps(payload)


def test_slack_escapes_markup_and_clips_large_inputs() -> None:
    note = notice()
    big = ApprovalNotice(
        **{
            **note.__dict__,
            "inputs": {"args": ["<@U123> & " + "x" * 10_000], "kwargs": {}},
            "reasons": ("a<b",),
        }
    )
    payload = SlackApprovalHandler("https://hooks.slack.com/services/T/B/x").payload(big)
    text = json.dumps(payload)
    assert "<@U123>" not in text and "&lt;@U123&gt; &amp;" in text and "a&lt;b" in text
    inputs = payload["blocks"][2]["text"]["text"]
    assert len(inputs) <= 3000 and "clipped" in inputs


def test_slack_retries_a_5xx_and_hides_the_webhook_path_in_errors() -> None:
    with Receiver(fail_first=1) as slack:
        asyncio.run(
            SlackApprovalHandler(f"{slack.url}/services/T/B/x", backoff=0.01).notify(notice())
        )
    assert len(slack.deliveries) == 2

    with Receiver(fail_first=9, fail_status=404) as slack:
        handler = SlackApprovalHandler(f"{slack.url}/services/T/B/secret-part", backoff=0.01)
        with pytest.raises(ApprovalNotificationError) as caught:
            asyncio.run(handler.notify(notice()))
    assert len(slack.deliveries) == 1  # a 404 (a deleted webhook) is not retried
    message = str(caught.value)
    assert "SlackApprovalHandler" in message and "HTTP 404" in message
    assert "secret-part" not in message and "secret-part" not in repr(handler)


def test_slack_then_a_rejection_through_the_store_rejects_the_waiting_call(
    store: StorageBackend,
) -> None:
    record = pending(store, stages=[["alice", "bob"]])

    def reject(delivery: Delivery) -> None:
        store.decide_approval(
            record.execution_id, approver="bob", approved=False, reason="wrong account"
        )

    with Receiver(on_delivery=reject) as slack:
        outcome = run_manager(store, record, SlackApprovalHandler(f"{slack.url}/services/x"))
    assert outcome == ApprovalOutcome("rejected", "bob", "wrong account")
    assert "alice, bob" in json.dumps(slack.deliveries[0].json())


# -- e-mail -----------------------------------------------------------------------------------


def test_email_sends_plain_text_to_the_stage_approvers_with_masked_inputs_and_links() -> None:
    note = notice(stages=[["alice", "bob"]])
    with MailReceiver() as mx:
        handler = email_handler(
            mx, recipients={"alice": "alice@acme.example", "bob": "bob@acme.example"}
        )
        assert asyncio.run(handler.notify(note)) is None
    [mail] = mx.mails
    assert mail.mail_from == "governor@acme.example"
    assert sorted(mail.rcpt_tos) == ["alice@acme.example", "bob@acme.example"]
    assert mail.message["Subject"] == "[governor] Approval needed: transfer (approval, 1/1)"
    assert mail.message["X-Governor-Execution-Id"] == note.execution_id
    assert mail.message.get_content_type() == "text/plain"
    body = mail.body
    assert_masked(body)
    for expected in (
        "Approval needed: transfer (payments.transfer)",
        note.execution_id,
        "alice, bob",
        "approval.required:transfer",
        "acct-9",
        f"approve:    POST {note.approve_url}",
        f"reject:     POST {note.reject_url}",
        "deadline:",
    ):
        assert expected in body


def test_email_writes_to_approvers_that_are_addresses_and_logs_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    note = notice(stages=[["carol@acme.example", "dave"]], base_url=None)
    with MailReceiver() as mx, caplog.at_level(logging.WARNING, logger="governor.approvals"):
        asyncio.run(email_handler(mx).notify(note))
    [mail] = mx.mails
    assert mail.rcpt_tos == ["carol@acme.example"]
    assert f"governor approvals approve {note.execution_id}" in mail.body
    assert "no e-mail address for approver(s) dave" in caplog.text


def test_email_with_nobody_to_write_to_raises_saying_how_to_fix_it() -> None:
    with MailReceiver() as mx, pytest.raises(ApprovalNotificationError) as caught:
        asyncio.run(email_handler(mx).notify(notice(stages=[["alice"]])))
    assert "recipients=" in str(caught.value) and not mx.mails


def test_email_retries_a_transient_4xx_once() -> None:
    with MailReceiver(fail_first=1) as mx:
        asyncio.run(email_handler(mx, recipients={"alice": "alice@acme.example"}).notify(notice()))
    assert mx.attempts == 2 and len(mx.mails) == 1


def test_email_does_not_retry_a_permanent_5xx() -> None:
    note = notice()
    with MailReceiver(fail_first=5, fail_reply="554 5.7.1 Rejected") as mx:
        handler = email_handler(mx, recipients={"alice": "alice@acme.example"})
        with pytest.raises(ApprovalNotificationError) as caught:
            asyncio.run(handler.notify(note))
    assert mx.attempts == 1
    message = str(caught.value)
    assert "EmailApprovalHandler" in message and "554" in message and "not retried" in message
    assert note.execution_id in message and f"127.0.0.1:{mx.port}" in message


def test_email_retries_a_refused_connection_once_then_says_so() -> None:
    port = int(closed_port_url().split(":")[2].split("/")[0])
    handler = EmailApprovalHandler(
        "127.0.0.1", port, sender="governor@acme.example", recipients={"alice": "a@acme.example"}
    )
    handler.retry_delay = 0.0
    with pytest.raises(ApprovalNotificationError, match="after a retry: cannot reach the server"):
        asyncio.run(handler.notify(notice()))


def test_email_logs_in_and_a_wrong_password_fails_at_once_without_showing_it() -> None:
    recipients = {"alice": "alice@acme.example"}
    with MailReceiver(login=("governor", "right-pw")) as mx:
        asyncio.run(
            email_handler(
                mx, recipients=recipients, username="governor", password="right-pw"
            ).notify(notice())
        )
        assert len(mx.mails) == 1 and mx.logins == ["governor"]
        wrong = email_handler(mx, recipients=recipients, username="governor", password="wrong-pw")
        with pytest.raises(ApprovalNotificationError) as caught:
            asyncio.run(wrong.notify(notice()))
    assert mx.logins == ["governor", "governor"]  # not retried
    assert "refused the login" in str(caught.value) and "wrong-pw" not in str(caught.value)
    assert "wrong-pw" not in repr(wrong)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"sender": "not-an-address"}, "sender must be an e-mail address"),
        ({"starttls": True, "use_ssl": True}, "not both"),
        ({"username": "u"}, "both username and password"),
        ({"recipients": {"alice": "alice"}}, "not addresses"),
    ],
)
def test_email_configuration_errors_are_raised_at_once(
    options: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        EmailApprovalHandler("smtp.example", **{"sender": "g@acme.example", **options})


def test_email_then_an_approval_through_the_store_approves_the_waiting_call(
    store: StorageBackend,
) -> None:
    record = pending(store, stages=[["alice@acme.example"]])

    def approve(mail: Mail) -> None:
        store.decide_approval(record.execution_id, approver="alice@acme.example", approved=True)

    with MailReceiver(on_mail=approve) as mx:
        outcome = run_manager(store, record, email_handler(mx), base_url=BASE_URL)
    assert outcome.status == "approved" and outcome.approver == "alice@acme.example"
    assert mx.mails[0].rcpt_tos == ["alice@acme.example"]


# -- the terminal -----------------------------------------------------------------------------


def ask(answers: str, note: ApprovalNotice, approver: str = "alice") -> tuple[Any, str]:
    out = io.StringIO()
    handler = CLIApprovalHandler(approver, input_stream=io.StringIO(answers), output_stream=out)
    return asyncio.run(handler.notify(note)), out.getvalue()


def test_cli_shows_the_masked_notice_and_records_an_approval_as_the_configured_approver() -> None:
    note = notice()
    answer, shown = ask("y\nchecked with finance\n", note)
    assert answer == ApprovalAnswer(True, "alice", "checked with finance")
    assert_masked(shown)
    for expected in (
        "Approval needed: transfer (payments.transfer)",
        note.execution_id,
        "stage:      approval (1 of 1)",
        "approvers:  alice",
        "requested by: agent-7 (org acme)",
        "deadline:",
        "approval.required:transfer",
        "Approve as alice? [y/N]",
        "Reason",
    ):
        assert expected in shown


def test_cli_records_a_rejection_with_its_reason() -> None:
    answer, _ = ask("n\nwrong account\n", notice())
    assert answer == ApprovalAnswer(False, "alice", "wrong account")


@pytest.mark.parametrize("answers", ["", "\n", "maybe\nperhaps\nwho knows\n"])
def test_cli_end_of_input_or_no_answer_decides_nothing(answers: str) -> None:
    answer, shown = ask(answers, notice())
    assert answer is None
    assert "governor approvals approve" in shown


def test_cli_asks_again_after_an_unclear_answer() -> None:
    answer, shown = ask("maybe\nyes\n", notice())
    assert answer == ApprovalAnswer(True, "alice", None)
    assert "Please answer y (approve) or n (reject), not 'maybe'" in shown


def test_cli_does_not_ask_someone_the_stage_does_not_name() -> None:
    stdin = io.StringIO("y\nsure\n")
    out = io.StringIO()
    handler = CLIApprovalHandler("mallory", input_stream=stdin, output_stream=out)
    assert asyncio.run(handler.notify(notice())) is None
    assert stdin.read() == "y\nsure\n"  # nothing was read
    assert "You are 'mallory', whom this stage does not name" in out.getvalue()


def test_cli_approver_defaults_to_the_os_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "ops-on-call")
    assert CLIApprovalHandler().approver == "ops-on-call"

    def no_user() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr("getpass.getuser", no_user)
    with pytest.raises(ConfigurationError, match="pass approver="):
        CLIApprovalHandler()


def test_cli_answer_reaches_the_store_through_the_manager(store: StorageBackend) -> None:
    record = pending(store, stages=[["alice"], ["bob"]])
    out = io.StringIO()
    alice = CLIApprovalHandler("alice", io.StringIO("y\nfine\n"), out)
    bob = CLIApprovalHandler("bob", io.StringIO("y\nalso fine\n"), out)
    outcome = run_manager(store, record, _Both(alice, bob))
    assert outcome == ApprovalOutcome("approved", "bob", "also fine")
    stored = store.get_approval(record.execution_id)
    assert stored is not None
    assert [(v.stage, v.approver, v.reason) for v in stored.votes] == [
        (0, "alice", "fine"),
        (1, "bob", "also fine"),
    ]
    assert "stage:      stage 2 (2 of 2)" in out.getvalue()


class _Both(CLIApprovalHandler):
    """Two people at one terminal: whoever the stage names is asked."""

    def __init__(self, *people: CLIApprovalHandler) -> None:
        self.people = people

    async def notify(self, notice: ApprovalNotice) -> ApprovalAnswer | None:
        for person in self.people:
            if person.approver in notice.approvers:
                return await person.notify(notice)
        return None


# -- the callback -----------------------------------------------------------------------------


def test_callback_gets_0_2_0s_arguments_with_masked_inputs_and_decides_at_once() -> None:
    seen: list[tuple[Any, ...]] = []

    def callback(*args: Any) -> tuple[bool, str, str]:
        seen.append(args)
        args[2]["kwargs"]["to"] = "changed"  # a copy: the notice is not touched
        return True, "alice", "small amount"

    note = notice()
    answer = asyncio.run(CallbackApprovalHandler(callback).notify(note))
    assert answer == ApprovalAnswer(True, "alice", "small amount")
    [(execution_id, function_name, inputs, approvers)] = seen
    assert (execution_id, function_name, approvers) == (note.execution_id, "transfer", ["alice"])
    assert inputs["kwargs"]["password"] == MASK
    assert note.inputs["kwargs"]["to"] == "acct-9"


def test_callback_may_be_async_and_may_answer_an_approval_answer_or_nothing() -> None:
    async def later(*args: Any) -> None:
        await asyncio.sleep(0)
        return None

    async def answer(*args: Any) -> ApprovalAnswer:
        return ApprovalAnswer(False, "alice", "no")

    assert asyncio.run(CallbackApprovalHandler(later).notify(notice())) is None
    assert asyncio.run(CallbackApprovalHandler(answer).notify(notice())) == ApprovalAnswer(
        False, "alice", "no"
    )
    handler = CallbackApprovalHandler(lambda *a: (True, "alice"))
    assert asyncio.run(
        handler.handle_approval_request("e1", "transfer", {}, ["alice"])
    ) == ApprovalAnswer(True, "alice", None)


@pytest.mark.parametrize(
    ("result", "error", "expected"),
    [
        (True, TypeError, "must return (approved, approver, reason)"),
        (("yes", "alice", "r"), TypeError, "must return"),
        ((True, None, "r"), ValueError, "without an approver"),
        ((True, " ", "r"), ValueError, "without an approver"),
    ],
)
def test_callback_answers_that_are_not_answers_raise_clearly(
    result: Any, error: type[Exception], expected: str
) -> None:
    handler = CallbackApprovalHandler(lambda *a: result)
    with pytest.raises(error, match=re.escape(expected)):
        asyncio.run(handler.notify(notice()))


def test_callback_must_be_callable() -> None:
    with pytest.raises(ConfigurationError, match="must be callable"):
        CallbackApprovalHandler("not a function")  # type: ignore[arg-type]


def test_callback_approval_through_the_manager_is_recorded_in_the_store(
    store: StorageBackend,
) -> None:
    record = pending(store)
    outcome = run_manager(store, record, CallbackApprovalHandler(lambda *a: (True, "alice", "ok")))
    assert outcome == ApprovalOutcome("approved", "alice", "ok")
    stored = store.get_approval(record.execution_id)
    assert stored is not None and [v.approver for v in stored.votes] == ["alice"]
    execution = store.get_execution(record.execution_id)
    assert execution is not None and execution.status is ExecutionStatus.APPROVED


def test_a_raising_callback_or_an_unnamed_approver_decides_nothing(
    store: StorageBackend, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(*args: Any) -> Any:
        raise RuntimeError("callback exploded")

    for callback in (boom, lambda *a: (True, "mallory", "me")):
        record = pending(store)
        record.stage_deadline = utcnow() + timedelta(seconds=0.2)
        record.on_timeout = "pending"
        with store.transaction() as tx:
            tx.update_approval(record)
        outcome = run_manager(store, record, CallbackApprovalHandler(callback))
        assert outcome.status == "pending"  # 0.2.0 rejected it as "system"
        stored = store.get_approval(record.execution_id)
        assert stored is not None and stored.status is ApprovalStatus.PENDING and not stored.votes
    assert "callback exploded" in caplog.text
    assert "'mallory' may not answer" in caplog.text


# -- @govern with a CallbackApprovalHandler ---------------------------------------------------


def _governed_sync(callback: Callable[..., Any], calls: list[int]) -> Callable[..., int]:
    @govern(
        policies=[
            ApprovalPolicy(approvers=["alice"], timeout_seconds=5),
            AuditPolicy(sensitive_fields=["password"]),
        ],
        approval_handler=CallbackApprovalHandler(callback),
        storage=InMemoryStorage(),
    )
    def transfer(amount: int, password: str = "") -> int:
        calls.append(amount)
        return amount * 2

    return transfer


def test_govern_sync_callback_approving_runs_the_function_with_masked_inputs_shown() -> None:
    calls: list[int] = []
    seen: list[Any] = []

    def callback(execution_id: str, function_name: str, inputs: Any, approvers: list[str]) -> Any:
        seen.append(inputs)
        return True, "alice", "ok"

    assert _governed_sync(callback, calls)(21, password=SECRET_VALUE) == 42
    assert calls == [21]
    assert seen == [{"args": [21], "kwargs": {"password": MASK}}]


def test_govern_sync_callback_rejecting_raises_approval_rejected() -> None:
    calls: list[int] = []
    transfer = _governed_sync(lambda *a: (False, "alice", "too much"), calls)
    with pytest.raises(ApprovalRejected) as caught:
        transfer(10_000)
    assert calls == []
    assert caught.value.approver == "alice" and caught.value.reason == "too much"  # type: ignore[attr-defined]


def _governed_async(callback: Callable[..., Any], calls: list[int]) -> Callable[..., Any]:
    @govern(
        policies=[ApprovalPolicy(approvers=["alice"], timeout_seconds=5)],
        approval_handler=CallbackApprovalHandler(callback),
        storage=InMemoryStorage(),
    )
    async def transfer(amount: int) -> int:
        calls.append(amount)
        return amount * 2

    return transfer


def test_govern_async_callback_approving_runs_the_async_function() -> None:
    async def callback(*args: Any) -> tuple[bool, str, str]:
        return True, "alice", "ok"

    calls: list[int] = []
    assert asyncio.run(_governed_async(callback, calls)(5)) == 10
    assert calls == [5]


def test_govern_async_callback_rejecting_raises_approval_rejected() -> None:
    async def callback(*args: Any) -> tuple[bool, str, str]:
        return False, "alice", "no"

    calls: list[int] = []
    with pytest.raises(ApprovalRejected):
        asyncio.run(_governed_async(callback, calls)(5))
    assert calls == []
