"""RFC 8058 one-click unsubscribe without I/O (issue 20, OUT-6): the link's signed token
(tampered, cut or foreign tokens refused), the two header values (no line break can get
in), the one-click form body, and addresses as the suppression list keeps them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.outbound import suppression, survey_domain
from services.outbound import suppression_domain as sd
from services.runtime import mail as mime
from services.runtime.errors import InvalidArgument

TENANT = "0190a000-0000-7000-8000-000000000001"
CAMPAIGN = "0190a000-0000-7000-8000-0000000000c1"
RECIPIENT = "0190a000-0000-7000-8000-0000000000a1"
CONFIG = sd.UnsubscribeConfig(secret="s3cret", public_url="https://support.example.com/")


def _token(address: str = "Taro.Yamada@Example.JP", language: str = "ja") -> str:
    url = suppression.unsubscribe_url(
        CONFIG,
        tenant_id=TENANT,
        address=address,
        campaign_id=CAMPAIGN,
        recipient_id=RECIPIENT,
        language=language,
    )
    assert url.startswith("https://support.example.com/unsubscribe/")
    return url.rsplit("/", 1)[1]


def test_a_token_says_whose_address_from_which_campaign_in_which_language() -> None:
    got = sd.read_token("s3cret", _token())
    assert got == sd.Unsubscribe(TENANT, "taro.yamada@example.jp", CAMPAIGN, RECIPIENT, "ja")
    assert sd.read_token("s3cret", _token(language="fr")).language == "en"


def test_tampered_cut_foreign_and_garbage_tokens_are_refused() -> None:
    token = _token()
    body, _, sig = token.rpartition(".")
    flipped = body[:-1] + ("A" if body[-1] != "A" else "B") + "." + sig
    other = sd.sign_token("another-key", sd.read_token("s3cret", token))
    for bad in (flipped, token[:-2], other, "", "x" * 2000, token + "\r\n", "a b.c", "<x>"):
        with pytest.raises(sd.TokenRefused):
            sd.read_token("s3cret", bad)
    with pytest.raises(sd.TokenRefused):
        sd.read_token("", token)  # no key configured: nothing is accepted


def test_the_unsubscribe_key_is_derived_apart_from_the_survey_key() -> None:
    key = sd.derived_secret("deployment-key")
    assert key != survey_domain.derived_secret("deployment-key") and len(key) == 64
    cfg = suppression.config_from(
        own=None, secret_key="deployment-key", survey_secret=None, public_url="http://x"
    )
    assert cfg.secret == key and "deployment" not in repr(cfg) and key not in repr(cfg)
    none = suppression.config_from(
        own=None, secret_key=None, survey_secret=None, public_url="http://x"
    )
    assert none.secret == ""
    with pytest.raises(ValueError):
        suppression.unsubscribe_headers(
            sd.UnsubscribeConfig("", "http://x"),
            tenant_id=TENANT,
            address="a@example.com",
            campaign_id="",
            recipient_id="",
            language="en",
        )


def test_the_two_rfc_8058_headers_are_single_lines() -> None:
    headers = suppression.unsubscribe_headers(
        CONFIG,
        tenant_id=TENANT,
        address="a" * 60 + "@" + "sub." * 40 + "example.com",
        campaign_id=CAMPAIGN,
        recipient_id=RECIPIENT,
        language="en",
    )
    (name1, value1), (name2, value2) = headers
    assert name1 == "List-Unsubscribe" and name2 == "List-Unsubscribe-Post"
    assert value2 == "List-Unsubscribe=One-Click"
    assert value1.startswith("<https://support.example.com/unsubscribe/") and value1.endswith(">")
    assert all(32 < ord(c) < 127 for c in value1) and len(value1) < 998
    # built into a real mail, each stays one header
    out = mime.Outgoing(
        sender=mime.Mailbox("Support", "support@example.com"),
        to=[mime.Mailbox("", "a@example.com")],
        cc=[],
        subject="News",
        text="hello\n",
        extra_headers=tuple(headers),
    )
    msg = mime.build(out, message_id="m1@example.com", date=datetime.now(UTC))
    assert msg["List-Unsubscribe"] == value1 and msg["List-Unsubscribe-Post"] == value2


@pytest.mark.parametrize(
    "url",
    [
        "https://x.example/\r\nBcc: a@b",
        "https://x.example/<a>",
        "ftp://x",
        "https://x y",
        "https://ü",
    ],
)
def test_a_public_url_that_could_break_the_header_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        sd.UnsubscribeConfig(secret="k", public_url=url)


def test_only_rfc_8058_one_click_fields_unsubscribe() -> None:
    assert sd.is_one_click({"List-Unsubscribe": "One-Click"})
    assert not sd.is_one_click({"List-Unsubscribe": "one-click "})
    assert not sd.is_one_click({"unsubscribe": "1"})
    assert not sd.is_one_click({})


def test_addresses_are_checked_and_lower_cased() -> None:
    assert sd.check_address("  Taro@Example.JP ") == "taro@example.jp"
    for bad in ("", "taro", "Taro <taro@example.jp>", "a@b", "a\r\n@example.com", "a @example.com"):
        with pytest.raises(InvalidArgument) as err:
            sd.check_address(bad)
        assert err.value.field == "address"
    with pytest.raises(InvalidArgument):
        sd.check_reason("spam")
