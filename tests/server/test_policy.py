"""`governor_server.policy`: the decision input built from a request, and redaction spans."""

from __future__ import annotations

from governor_server.policy import action_kind, apply_redactions, decision_input


def test_model_and_file_tools_are_not_tool_actions() -> None:
    assert action_kind("model.chat") == "model"
    assert action_kind("file.upload") == "file"
    assert action_kind("payments.transfer") == "tool"
    assert action_kind("shell") == "tool"


def test_the_input_follows_the_contract_and_skips_budget_after_the_call() -> None:
    pre = decision_input(
        phase="pre",
        org_id="o",
        user_id="u",
        tool="t.x",
        scope="s",
        raw_text="r",
        tags=["a"],
        payload={"args": {"k": 1}},
    )
    assert pre["version"] == 1 and pre["phase"] == "pre"
    assert pre["action"] == {"kind": "tool", "name": "t.x", "scope": "s", "tags": ["a"]}
    assert pre["subject"]["org_id"] == "o" and pre["subject"]["user_id"] == "u"
    assert pre["args"] == {"k": 1}
    assert {p["type"] for p in pre["policies"]} == {"precheck", "budget", "audit"}
    post = decision_input(phase="post", org_id="o", user_id="u", tool="t", scope=None, raw_text="")
    assert "budget" not in {p["type"] for p in post["policies"]}


def test_redactions_replace_code_point_spans_and_merge_overlaps() -> None:
    text = "é a@b.co x 123-45-6789"
    redactions = [
        {"path": "raw_text", "start": 2, "end": 8, "kind": "email", "replacement": "[E]"},
        {"path": "raw_text", "start": 11, "end": 22, "kind": "us_ssn", "replacement": "[S]"},
        {"path": "args.x", "start": 0, "end": 1, "kind": "email", "replacement": "[A]"},
    ]
    assert apply_redactions(text, redactions) == "é [E] x [S]"
    overlapping = [
        {"path": "raw_text", "start": 0, "end": 4, "kind": "a", "replacement": "[1]"},
        {"path": "raw_text", "start": 2, "end": 6, "kind": "b", "replacement": "[2]"},
    ]
    assert apply_redactions("abcdefgh", overlapping) == "[1]gh"
