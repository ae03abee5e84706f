"""The gateway's access rules read from openapi.yaml, the client address behind a trusted
proxy, and the masking of customers' addresses and phone numbers (pure code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from gateway import app as gateway_app
from gateway.access import load_spec, rules_of
from gateway.auth import client_address, parse_networks
from gateway.masking import mask
from services.runtime import permissions

SPEC = load_spec(Path(gateway_app.__file__).with_name("openapi.yaml"))
RULES = rules_of(SPEC)


def test_public_operations_are_exactly_the_ones_without_a_caller() -> None:
    public = sorted(r.operation_id for r in RULES.values() if r.public)
    assert public == sorted(
        [
            "livez",
            "readyz",
            "healthz",
            "getOpenApi",
            "getOpenApiJson",
            "createSession",
            "submitForm",
            "formSubmissionPreflight",
            # the satisfaction survey's page (issue 20): the signed token is the key
            "surveyPage",
            "surveyComment",
            # RFC 8058 one-click unsubscribe (issue 20): the signed token is the key
            "unsubscribePage",
            "unsubscribeOneClick",
            # LINE's webhook (issue 21): LINE's signature over the body is the key
            "lineWebhook",
            # the web chat's visitor side (issue 21): the widget key and visitor token
            "chatWidgetScript",
            "chatVisitorSocket",
            "chatWidgetDemo",
            # the API channel's inbound endpoint (issue 21): its HMAC signature is the key
            "receiveApiChannelMessages",
            # the web UI's page and bundles: the sign-in screen is part of them
            "getUi",
            "getUiAsset",
        ]
    )


def test_rules_name_permissions_targets_and_the_password_change_routes() -> None:
    assert RULES[("PATCH", "/api/v1/operators/{operator_id}")].permissions == (
        permissions.MANAGE_OPERATORS,
    )
    assert set(RULES[("GET", "/api/v1/operations.csv")].permissions) == {
        permissions.VIEW_OPERATION_LOG,
        permissions.EXPORT,
    }
    assert RULES[("PATCH", "/api/v1/tickets/{ticket_id}")].target == "ticket_id"  # a $ref
    assert RULES[("DELETE", "/api/v1/login-locks/{kind}/{key}")].target == "key"
    during = sorted(r.operation_id for r in RULES.values() if r.during_password_change)
    assert during == ["changePassword", "getMe", "listNotices", "logout"]


def _request(peer: str, forwarded: str = "") -> Any:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    req = make_mocked_request("GET", "/", headers=headers)
    req._transport_peername = (peer, 1234)  # type: ignore[attr-defined]
    transport = req.transport
    assert transport is not None
    transport.get_extra_info.side_effect = lambda name, default=None: (  # type: ignore[attr-defined]
        (peer, 1234) if name == "peername" else default
    )
    return req


PROXIES = parse_networks(["10.0.0.0/8", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("198.51.100.9", "", "198.51.100.9"),
        ("198.51.100.9", "203.0.113.5", "198.51.100.9"),  # not a proxy: header ignored
        ("10.1.2.3", "203.0.113.5", "203.0.113.5"),
        ("10.1.2.3", "6.6.6.6, 203.0.113.5, 10.9.9.9", "203.0.113.5"),  # right-most untrusted
        ("10.1.2.3", "garbage", "10.1.2.3"),
        ("10.1.2.3", "", "10.1.2.3"),
        ("fd00::1", "2001:db8::7", "2001:db8::7"),
        ("::ffff:198.51.100.9", "", "198.51.100.9"),
    ],
)
def test_the_client_address_comes_from_a_trusted_proxys_header_only(
    peer: str, forwarded: str, expected: str
) -> None:
    assert client_address(_request(peer, forwarded), PROXIES, "X-Forwarded-For") == expected


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_address(_request("10.1.2.3", "203.0.113.5"), (), "X-Forwarded-For") == (
        "10.1.2.3"
    )


def test_addresses_are_masked_wherever_they_stand() -> None:
    body = {
        "from": {"name": "Taro", "address": "taro.yamada@customer.example"},
        "subject": "Re: order (taro.yamada@customer.example)",
        "html": "<a href='mailto:a.b+c@sub.example.co.jp'>me</a>",
        "actor": {"kind": "customer", "id": "taro@x.jp"},
        "addresses": ["hanako@example.com"],
        "count": 3,
        "ok": True,
        "none": None,
    }
    masked = mask(body)
    assert masked["from"] == {"name": "Taro", "address": "t***@c***.example"}
    assert masked["subject"] == "Re: order (t***@c***.example)"
    assert masked["html"] == "<a href='mailto:a***@s***.jp'>me</a>"
    assert masked["actor"]["id"] == "t***@x***.jp"
    assert masked["addresses"] == ["h***@e***.com"]
    assert (masked["count"], masked["ok"], masked["none"]) == (3, True, None)
    assert body["from"]["address"] == "taro.yamada@customer.example"  # a copy


def test_full_width_addresses_are_masked_too() -> None:
    assert mask("連絡先：ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ") == "連絡先：ｔ***@ｅ***.ｊｐ"


def test_the_tenants_own_addresses_are_not_masked() -> None:
    body = {
        "to": [{"address": "Support@Shop.example"}, {"address": "taro@customer.example"}],
        "text": "Taro <taro@customer.example> wrote to support@shop.example:",
    }
    masked = mask(body, keep=frozenset({"support@shop.example"}))
    assert masked["to"] == [{"address": "Support@Shop.example"}, {"address": "t***@c***.example"}]
    assert masked["text"] == "Taro <t***@c***.example> wrote to support@shop.example:"
    # a look-alike is someone else's
    assert mask("xsupport@shop.example", keep=frozenset({"support@shop.example"})) == (
        "x***@s***.example"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call 090-1234-5678.", "call ***-****-**78."),
        ("+81 90 1234 5678", "+** ** **** **78"),
        ("(03) 1234-5678", "(**) ****-**78"),
        ("on 2026-12-04 at 10:30", "on 2026-12-04 at 10:30"),
        ("order 12345678901", "order 12345678901"),
        ("¥1,234,567", "¥1,234,567"),
        ("0191f000-0000-7000-8000-0000000000a3", "0191f000-0000-7000-8000-0000000000a3"),
        ("/api/v1/x/0120-123-456", "/api/v1/x/0120-123-456"),
        ("TEL:03-1234-5678", "TEL:**-****-**78"),
        ("TEL：03-1234-5678", "TEL：**-****-**78"),
        ("電話09012345678まで", "電話*********78まで"),
        ("お電話は０９０－１２３４－５６７８へ", "お電話は***－****－**７８へ"),
        ("10:0312345678", "10:0312345678"),
        ("A0901234567", "A0901234567"),
        ("10 0901234567", "10 ********67"),
    ],
)
def test_phone_numbers_in_text_are_masked_and_other_numbers_are_not(
    text: str, expected: str
) -> None:
    assert mask({"body": text})["body"] == expected


def test_phone_fields_keep_only_their_last_two_digits() -> None:
    assert mask({"phones": ["03-1234-5678", "12"], "phone": "x 1"}) == {
        "phones": ["**-****-**78", "12"],
        "phone": "x 1",
    }
