"""The web UI calls only what gateway/openapi.yaml documents: every `api.<method>(path)`
in gateway/ui/src, with its `${…}` parts as any one path segment, must be an operation of
the document (a method the path does not have would be a 405 in front of an operator).
And what the server says has the UI's words in both languages: error codes, permissions,
pre-send checks."""

from __future__ import annotations

import re
from pathlib import Path

from gateway import app as gateway_app
from gateway.access import load_spec
from services.composition import checks
from services.runtime.channel_address import MIXED_RECIPIENTS

UI = Path(gateway_app.__file__).with_name("ui") / "src"
SPEC = load_spec(Path(gateway_app.__file__).with_name("openapi.yaml"))
CALL = re.compile(r"\bapi\.(get|post|put|patch|del)(?:<[^()]*?>)?\(\s*([`\"])(/[^`\"]*)\2", re.S)
# the administration's `items("/path")` is a GET of a list
ITEMS = re.compile(r"\bitems\(\s*([`\"])(/[^`\"]*)\1")
METHODS = {"get": "get", "post": "post", "put": "put", "patch": "patch", "del": "delete"}


def _pattern(template: str) -> re.Pattern[str]:
    """A documented path as a regex: `{name}` is one segment."""
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile(
        "^" + "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$"
    )


def _calls() -> list[tuple[str, str, str]]:
    out = []
    for file in sorted(UI.glob("*.ts*")):
        for m in CALL.finditer(file.read_text(encoding="utf-8")):
            path = re.sub(r"\$\{[^}]*\}", "X", m.group(3)).split("?")[0]
            out.append((file.name, METHODS[m.group(1)], "/api/v1" + path))
        for m in ITEMS.finditer(file.read_text(encoding="utf-8")):
            out.append((file.name, "get", "/api/v1" + re.sub(r"\$\{[^}]*\}", "X", m.group(2))))
    return out


def test_every_call_of_the_ui_is_a_documented_operation() -> None:
    calls = _calls()
    assert len(calls) > 40  # the scan finds the app's calls
    documented = [(_pattern(p), set(ops)) for p, ops in SPEC["paths"].items()]
    wrong = [
        (file, method, path)
        for file, method, path in calls
        if not any(rx.match(path) and method in ops for rx, ops in documented)
    ]
    assert wrong == []


def test_the_reserved_words_the_ui_offers_are_the_ones_composition_fills_in() -> None:
    from services.composition.reserved import WORDS

    source = (UI / "adminSections.tsx").read_text(encoding="utf-8")
    block = re.search(r"const RESERVED_WORDS = \[(.*?)\] as const", source, re.S)
    assert block is not None
    offered = re.findall(r'"([a-z.]+)"', block.group(1))
    assert offered == list(WORDS)
    i18n = (UI / "i18n.ts").read_text(encoding="utf-8")
    for word in WORDS:  # explained in both languages
        assert i18n.count(f'"word.{word}":') == 2, word


def test_every_error_code_of_the_api_has_a_message_in_both_languages() -> None:
    """errors.ts translates an error by its code (`error.<code>`): every code the API's
    Error schema names has one, so no server message is the only text an operator
    sees (issue 16)."""
    codes = SPEC["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"][
        "enum"
    ]
    i18n = (UI / "i18n.ts").read_text(encoding="utf-8")
    missing = [c for c in codes if i18n.count(f'"error.{c}":') != 2]
    assert len(codes) > 15 and missing == []


def test_every_permission_has_a_name_in_both_languages() -> None:
    from services.runtime.permissions import ALL

    i18n = (UI / "i18n.ts").read_text(encoding="utf-8")
    assert [p for p in sorted(ALL) if i18n.count(f'"perm.{p}":') != 2] == []


def test_every_pre_send_check_has_words_in_both_languages() -> None:
    """Each finding composition's checks can give is shown in the operator's language
    (ChecksDialog's `check.<code>`), not as the server's English message."""
    source = Path(checks.__file__).read_text(encoding="utf-8")
    codes = set(re.findall(r'Finding\(\s*"([a-z_]+)"', source)) | {MIXED_RECIPIENTS}
    assert {"attachment_forgotten", "unsafe_header", "changed_by_other"} <= codes, codes
    i18n = (UI / "i18n.ts").read_text(encoding="utf-8")
    assert [c for c in sorted(codes) if i18n.count(f'"check.{c}":') != 2] == []
