"""structlog takes a log line's message as its first argument, named `event`: a call that
also passes `event=` raises TypeError at run time — in an event handler that means a
failed delivery and a retry (found in tickets' approval consumer). Read every log call in
the services and the gateway for it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LEVELS = {"debug", "info", "warning", "error", "exception", "critical", "msg"}


def test_no_log_call_passes_event_as_a_keyword() -> None:
    found: list[str] = []
    files = [*ROOT.joinpath("services").rglob("*.py"), *ROOT.joinpath("gateway").rglob("*.py")]
    assert len(files) > 100
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LEVELS
                and node.args
                and any(k.arg == "event" for k in node.keywords)
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found
