"""`governor approvals list|show|approve|reject`: the approval requests waiting for people.

    governor approvals list                          # pending requests, oldest first
    governor approvals list --status all --function pay --json
    governor approvals show 3e11...                  # stages, votes, masked inputs, deadlines
    governor approvals approve 3e11... --reason "checked with finance"
    governor approvals reject 3e11... --reason "wrong account" --as alice

The database is `--database-url`, else `GOVERNOR_DATABASE_URL`, else `./.governor/governor.db`
(the default store of `@govern`). Answers are recorded as `--as NAME`, by default the operating
system user; the name must be one the request's current stage names (a stage naming nobody takes
any). This is not authentication: whoever can run this command against the database already has
full access to it. People who must be authenticated decide through the server's approval API.

Only masked inputs are shown, never the arguments the function will run with.

Exit codes: 0 done; 1 the answer was refused (not an approver of the stage, already answered,
the request expired or is already decided); 2 invalid input (an unknown execution id, a missing
reason the policy requires, an unusable database).
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from sqlalchemy.exc import SQLAlchemyError

from governor.errors import (
    ApprovalError,
    ApprovalNotFound,
    ApprovalReasonRequired,
    GovernanceError,
)
from governor.storage import SQLStorage
from governor.storage.records import ApprovalRecord, ApprovalStatus
from governor_cli.sources import fail

EXIT_REFUSED = 1
EXIT_INVALID = 2


class StatusFilter(StrEnum):
    """`--status` values: one approval status, or `all`."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    ALL = "all"


_DATABASE = typer.Option(
    "--database-url",
    envvar="GOVERNOR_DATABASE_URL",
    help="The store's database (default: ./.governor/governor.db, the default store).",
    show_default=False,
)
_JSON = typer.Option("--json", help="Print JSON instead of text.")
_AS = typer.Option(
    "--as",
    metavar="NAME",
    help=(
        "Who answers (default: the operating system user); the request's current stage must "
        "name it. Not authentication: anyone who can run this command on the database already "
        "has full access to it."
    ),
    show_default=False,
)
_REASON = typer.Option(
    "--reason", metavar="TEXT", help="Why; recorded with the vote (some policies require one)."
)


@contextmanager
def _store(url: str | None) -> Iterator[SQLStorage]:
    try:
        store = SQLStorage(url or None)
    except (GovernanceError, SQLAlchemyError, OSError) as exc:
        fail(f"cannot open the database: {exc}")
    try:
        yield store
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Add the `approvals` command group to `app`."""
    approvals = typer.Typer(
        name="approvals",
        help=(
            "List, show, approve and reject approval requests (the calls a policy sent to "
            "people). Exit codes: 0 done, 1 the answer was refused, 2 invalid input."
        ),
        no_args_is_help=True,
    )

    @approvals.command("list")
    def _list(
        status: Annotated[
            StatusFilter, typer.Option("--status", help="Only requests in this state.")
        ] = StatusFilter.PENDING,
        function: Annotated[
            str | None, typer.Option("--function", metavar="NAME", help="Only this function.")
        ] = None,
        limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
        as_json: Annotated[bool, _JSON] = False,
        database_url: Annotated[str | None, _DATABASE] = None,
    ) -> None:
        """List approval requests, oldest first (default: the pending ones)."""
        wanted = None if status is StatusFilter.ALL else ApprovalStatus(status.value)
        with _store(database_url) as store:
            records = store.list_approvals(status=wanted, function_name=function, limit=limit)
        if as_json:
            typer.echo(json.dumps([_summary(r) for r in records], indent=2))
            return
        if not records:
            which = "" if wanted is None else f"{wanted.value} "
            of = f" of function {function!r}" if function else ""
            typer.echo(f"no {which}approval requests{of}", err=True)
            return
        now = datetime.now(UTC)
        typer.echo(
            f"{'EXECUTION':<32}  {'FUNCTION':<24}  {'STATUS':<9}  {'STAGE':<16}  "
            f"{'APPROVERS':<24}  DEADLINE"
        )
        for record in records:
            stage = f"{record.current_stage.name} {record.stage + 1}/{len(record.stages)}"
            deadline = _when(record.stage_deadline, now) if _open(record) else "-"
            typer.echo(
                f"{record.execution_id:<32}  {record.function_name:<24}  "
                f"{record.status.value:<9}  {stage:<16}  {_who(record.current_stage.approvers):<24}"
                f"  {deadline}"
            )

    @approvals.command("show")
    def _show(
        execution_id: Annotated[
            str, typer.Argument(metavar="EXECUTION_ID", help="The execution id.")
        ],
        as_json: Annotated[bool, _JSON] = False,
        database_url: Annotated[str | None, _DATABASE] = None,
    ) -> None:
        """Show one request: its state, stages, votes, deadlines and masked inputs."""
        with _store(database_url) as store:
            record = store.get_approval(execution_id)
        if record is None:
            fail(_not_found(execution_id))
        if as_json:
            typer.echo(json.dumps(_detail(record), indent=2, default=str))
            return
        typer.echo(_describe(record))

    def _answer(
        approved: bool, execution_id: str, reason: str | None, who: str | None, url: str | None
    ) -> None:
        approver = who if who is not None else _os_user()
        if not approver.strip():
            fail("--as needs a name")
        with _store(url) as store:
            try:
                record = store.decide_approval(
                    execution_id, approver=approver, approved=approved, reason=reason
                )
            except ApprovalNotFound:
                fail(_not_found(execution_id))
            except ApprovalReasonRequired as exc:
                fail(f"{exc} (--reason TEXT)")
            except ApprovalError as exc:  # not allowed, already answered, expired, decided
                fail(f"refused: {exc}", EXIT_REFUSED)
        typer.echo(_outcome(record, approver, approved))

    @approvals.command("approve")
    def _approve(
        execution_id: Annotated[
            str, typer.Argument(metavar="EXECUTION_ID", help="The execution id.")
        ],
        reason: Annotated[str | None, _REASON] = None,
        who: Annotated[str | None, _AS] = None,
        database_url: Annotated[str | None, _DATABASE] = None,
    ) -> None:
        """Approve the request's current stage as --as (default: the OS user).

        The name is recorded, not authenticated: whoever runs this has full access to the database.
        """
        _answer(True, execution_id, reason, who, database_url)

    @approvals.command("reject")
    def _reject(
        execution_id: Annotated[
            str, typer.Argument(metavar="EXECUTION_ID", help="The execution id.")
        ],
        reason: Annotated[str | None, _REASON] = None,
        who: Annotated[str | None, _AS] = None,
        database_url: Annotated[str | None, _DATABASE] = None,
    ) -> None:
        """Reject the request as --as (default: the OS user): the function will not run.

        The name is recorded, not authenticated: whoever runs this has full access to the database.
        """
        _answer(False, execution_id, reason, who, database_url)

    app.add_typer(approvals)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception as exc:  # no user name in the environment or the password database
        fail(f"cannot tell who you are ({exc}); pass --as NAME")


def _not_found(execution_id: str) -> str:
    return (
        f"no approval request for execution {execution_id!r}: "
        "`governor approvals list --status all` lists them (is --database-url right?)"
    )


def _open(record: ApprovalRecord) -> bool:
    return record.status is ApprovalStatus.PENDING


def _who(approvers: list[str]) -> str:
    return ", ".join(approvers) if approvers else "(anyone)"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _when(moment: datetime, now: datetime | None = None) -> str:
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    left = int((moment - (now or datetime.now(UTC))).total_seconds())
    hours, rest = divmod(abs(left), 3600)
    minutes, seconds = divmod(rest, 60)
    span = f"{hours}h {minutes}m" if hours else f"{minutes}m {seconds}s"
    return f"{text} (in {span})" if left >= 0 else f"{text} ({span} ago)"


def _summary(record: ApprovalRecord) -> dict[str, Any]:
    stage = record.current_stage
    return {
        "execution_id": record.execution_id,
        "function_name": record.function_name,
        "status": record.status.value,
        "stage": stage.name,
        "stage_index": record.stage,
        "stage_count": len(record.stages),
        "approvers": list(stage.approvers),
        "requested_at": _iso(record.requested_at),
        "deadline": _iso(record.stage_deadline),
        "expires_at": _iso(record.expires_at),
        "decided_by": record.decided_by,
    }


def _detail(record: ApprovalRecord) -> dict[str, Any]:
    """Everything people may see about a request: never `arguments` (unmasked)."""
    return {
        "execution_id": record.execution_id,
        "function_name": record.function_name,
        "function_qualname": record.function_qualname,
        "status": record.status.value,
        "stage_index": record.stage,
        "stages": [
            {
                "name": s.name,
                "approvers": list(s.approvers),
                "quorum": s.quorum,
                "timeout_seconds": s.timeout_seconds,
            }
            for s in record.stages
        ],
        "votes": [
            {
                "stage": v.stage,
                "approver": v.approver,
                "approved": v.approved,
                "reason": v.reason,
                "decided_at": _iso(v.decided_at),
            }
            for v in record.votes
        ],
        "inputs": record.inputs,
        "reasons": list(record.reasons),
        "subject": dict(record.subject),
        "args_hash": record.args_hash,
        "on_timeout": record.on_timeout,
        "require_reason": record.require_reason,
        "requested_at": _iso(record.requested_at),
        "deadline": _iso(record.stage_deadline),
        "expires_at": _iso(record.expires_at),
        "decided_at": _iso(record.decided_at),
        "decided_by": record.decided_by,
        "reason": record.reason,
    }


def _describe(record: ApprovalRecord) -> str:
    now = datetime.now(UTC)
    title = record.function_name
    if record.function_qualname and record.function_qualname != title:
        title += f" ({record.function_qualname})"
    lines = [
        f"execution   {record.execution_id}",
        f"function    {title}",
        f"status      {record.status.value}",
    ]
    if record.requested_at is not None:
        lines.append(f"requested   {_when(record.requested_at, now)}")
    user = record.subject.get("user_id")
    if user:
        lines.append(f"by          {user}")
    if _open(record):
        lines.append(f"deadline    {_when(record.stage_deadline, now)} (current stage)")
        if record.expires_at != record.stage_deadline:
            lines.append(f"expires     {_when(record.expires_at, now)}")
    else:
        by = f" by {record.decided_by}" if record.decided_by else ""
        at = f" at {_iso(record.decided_at)}" if record.decided_at else ""
        why = f": {record.reason}" if record.reason else ""
        lines.append(f"decided     {record.status.value}{by}{at}{why}")
    lines.append(f"on timeout  {record.on_timeout}" + (", reason required" * record.require_reason))
    lines.append("reasons     " + ("; ".join(record.reasons) if record.reasons else "-"))
    lines.append("stages:")
    for index, stage in enumerate(record.stages):
        marker = "->" if index == record.stage and _open(record) else "  "
        yes = sum(1 for v in record.votes if v.stage == index and v.approved)
        lines.append(
            f" {marker} {index + 1}. {stage.name}: {_who(stage.approvers)}, quorum {stage.quorum} "
            f"({yes} approved), timeout {stage.timeout_seconds}s"
        )
    lines.append("votes:" if record.votes else "votes:      none yet")
    for vote in record.votes:
        verb = "approved" if vote.approved else "rejected"
        why = f": {vote.reason}" if vote.reason else ""
        stage_name = record.stages[vote.stage].name if vote.stage < len(record.stages) else "?"
        lines.append(f"    {_iso(vote.decided_at)}  {vote.approver} {verb} ({stage_name}){why}")
    lines.append("inputs (sensitive fields masked):")
    text = json.dumps(record.inputs, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    lines.extend("    " + line for line in text.splitlines())
    return "\n".join(lines)


def _outcome(record: ApprovalRecord, approver: str, approved: bool) -> str:
    verb = "approved" if approved else "rejected"
    head = f"{approver} {verb} execution {record.execution_id} ({record.function_name})"
    if record.status is ApprovalStatus.APPROVED:
        return (
            f"{head}: the request is approved; the function runs when its waiting caller or a "
            "resume worker picks it up"
        )
    if record.status is ApprovalStatus.REJECTED:
        return f"{head}: the request is rejected; the function will not run"
    stage = record.current_stage
    yes = sum(1 for v in record.votes if v.stage == record.stage and v.approved)
    if yes == 0:  # the vote moved the request to a new stage
        return (
            f"{head}: now at stage {stage.name!r} ({record.stage + 1} of {len(record.stages)}), "
            f"waiting for {_who(stage.approvers)}"
        )
    return (
        f"{head}: {yes} of {stage.quorum} approvals for stage {stage.name!r}; waiting for more "
        f"({_who(stage.approvers)})"
    )
