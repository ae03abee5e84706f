"""Agentless notifications without I/O (issue 20, OUT-6): the idempotency key, the
variables, the words of a subject and body (unknown ones and missing values refused
naming them; a value never breaks the Subject header; HTML values escaped), the
fingerprint that tells a repeated request from another one; and which recipients a
DSN suppresses."""

from __future__ import annotations

import pytest

from services.outbound import notification_domain as nd
from services.outbound.suppression_domain import hard_bounced
from services.runtime.errors import InvalidArgument

CTX = nd.Context(
    to_name="山田 花子",
    to_address="hanako@customer.example",
    inbox_name="サポート",
    inbox_address="support@example.jp",
    variables={"order": "A-1001", "note": "line one\r\nBcc: evil@example.com", "html": "<b>"},
)


def _field(call: object) -> str:
    with pytest.raises(InvalidArgument) as err:
        call()  # type: ignore[operator]
    assert err.value.field is not None
    return err.value.field


def test_keys_and_variables_are_checked_naming_the_field() -> None:
    assert nd.check_key("order-1001:shipped") == "order-1001:shipped"
    for bad in ("", "with space", "x" * 201, "tab\t", "日本語"):
        assert _field(lambda bad=bad: nd.check_key(bad)) == "idempotency_key"
    assert nd.check_variables({"order_no": "1"}) == {"order_no": "1"}
    assert _field(lambda: nd.check_variables({"Order": "1"})) == "variables.Order"
    assert _field(lambda: nd.check_variables({"a": "x" * 2001})) == "variables.a"
    assert _field(lambda: nd.check_variables({f"v{n}": "" for n in range(51)})) == "variables"


def test_words_are_filled_in_and_unknown_or_missing_ones_refused() -> None:
    out = nd.render_all(
        subject="【{{inbox.name}}】ご注文 {{ var.order }}",
        text="{{customer.name}} 様 / {{to.address}} / {{var.order}}",
        body_html="<p>{{to.name}} {{var.html}}</p>",
        ctx=CTX,
        source="template_id",
    )
    assert out.subject == "【サポート】ご注文 A-1001"
    assert out.text == "山田 花子 様 / hanako@customer.example / A-1001\n"
    assert out.html == "<p>山田 花子 &lt;b&gt;</p>"
    # a value with a line break cannot add a header
    multi = nd.render_all(
        subject="{{var.note}}", text="{{var.note}}", body_html="", ctx=CTX, source="body"
    )
    assert "\r" not in multi.subject and "\n" not in multi.subject
    assert multi.text.startswith("line one\r\nBcc")  # the body keeps it: it is text
    for subject, text, source, field in (
        ("{{var.missing}}", "x", "body", "variables.missing"),
        ("x", "{{ticket.number}}", "body", "body"),
        ("{{original.subject}}", "x", "body", "subject"),
        ("{{ticket.number}}", "x", "template_id", "template_id"),
        ("  ", "x", "body", "subject"),
        ("x", "{{var.order}}{{to.phone}}", "body", "body"),
    ):
        got = _field(
            lambda s=subject, t=text, src=source: nd.render_all(
                subject=s, text=t, body_html="", ctx=CTX, source=src
            )
        )
        assert got == field, (subject, text)


def test_the_fingerprint_tells_another_request_from_the_same_one() -> None:
    base = {
        "inbox_id": "i",
        "template_id": "",
        "subject": "s",
        "body": "b",
        "to_address": "Hanako@Customer.example",
        "to_name": "",
        "variables": {"a": "1", "b": "2"},
    }
    same = {**base, "to_address": "hanako@customer.example", "variables": {"b": "2", "a": "1"}}
    assert nd.fingerprint(**base) == nd.fingerprint(**same)  # type: ignore[arg-type]
    for key, value in (("subject", "t"), ("variables", {"a": "1"}), ("to_name", "x")):
        assert nd.fingerprint(**base) != nd.fingerprint(**{**base, key: value})  # type: ignore[arg-type]


def test_a_dsn_suppresses_the_recipients_it_names_as_failed_for_good() -> None:
    sent = ["Taro@Example.jp", "hanako@example.jp"]
    assert hard_bounced(["5.1.1"], ["taro@example.jp"], sent) == ["taro@example.jp"]
    assert hard_bounced(["4.4.1", "5.1.1"], ["taro@example.jp", "HANAKO@example.jp"], sent) == [
        "hanako@example.jp"
    ]
    assert hard_bounced(["4.4.1"], ["taro@example.jp"], sent) == []  # a delay
    assert hard_bounced([], [], sent) == []  # nothing machine-readable
    # a block naming no recipient of ours (an alias): the mail's only recipient, if one
    assert hard_bounced(["5.1.1"], ["alias@elsewhere.example"], ["solo@example.jp"]) == [
        "solo@example.jp"
    ]
    assert hard_bounced(["5.1.1"], [""], sent) == []
