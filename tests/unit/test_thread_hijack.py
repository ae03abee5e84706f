"""ADR 0009, the pure rules: when a received mail may join a ticket, who is a stranger on
it, whom a reply goes to by default, and when a sender is verified (Authentication-Results
from a trusted host), with malformed headers that never raise."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.composition.recipients import Answered, Customer, default_recipients
from services.ingestion import authresults as ar
from services.ingestion.parser import parse, sender_auth
from services.tickets import thread_rules as tr

SUPPORT, SALES = uuid.uuid4(), uuid.uuid4()
TICKET = uuid.uuid4()


def found(reason: tr.Reason, *, inbox: uuid.UUID = SUPPORT, participant: bool) -> tr.Found:
    return tr.Found(TICKET, inbox, reason, participant)


# --- joining ------------------------------------------------------------------------------


@pytest.mark.parametrize("inbox", [SUPPORT, SALES, None])
@pytest.mark.parametrize("participant", [True, False])
def test_our_signed_message_id_joins_from_any_inbox_and_any_sender(
    inbox: uuid.UUID | None, participant: bool
) -> None:
    assert tr.may_join(found(tr.Reason.SIGNED, participant=participant), inbox)


@pytest.mark.parametrize("reason", [tr.Reason.REFERENCE, tr.Reason.SUBJECT_TAG])
def test_a_plain_reference_or_a_tag_joins_only_a_participant_of_the_same_inbox(
    reason: tr.Reason,
) -> None:
    assert tr.may_join(found(reason, participant=True), SUPPORT)
    assert not tr.may_join(found(reason, participant=False), SUPPORT)  # a stranger
    assert not tr.may_join(found(reason, participant=True), SALES)  # another inbox
    assert not tr.may_join(found(reason, participant=True), None)  # no inbox known
    assert not tr.may_join(found(reason, participant=False), SALES)


def test_nothing_else_joins() -> None:
    for reason in (tr.Reason.NEW, tr.Reason.SENT):
        assert not tr.may_join(found(reason, participant=True), SUPPORT)


def test_a_stranger_is_a_non_participant_whose_received_mail_joined() -> None:
    assert tr.is_stranger(channel="smtp", joined=True, sender_is_participant=False)
    assert tr.is_stranger(channel="imap", joined=True, sender_is_participant=False)
    assert not tr.is_stranger(channel="smtp", joined=True, sender_is_participant=True)
    assert not tr.is_stranger(channel="smtp", joined=False, sender_is_participant=False)
    assert not tr.is_stranger(channel="sent", joined=True, sender_is_participant=False)


# --- the reply's default recipients ----------------------------------------------------

OURS = {"support@desk.example"}
TARO = ("Taro", "taro@customer.example")
MALLORY = ("Mallory", "mallory@evil.example")
CUSTOMER = Customer("Taro", "taro@customer.example")


def test_a_reply_to_a_strangers_mail_goes_to_the_customer_and_reply_all_adds_none_of_its() -> None:
    theirs = Answered(
        MALLORY, reply_to=[("", "drop@evil.example")], cc=[("", "eve@evil.example")], stranger=True
    )
    for kind in ("reply", "reply_all"):
        assert default_recipients(kind, CUSTOMER, theirs, OURS) == (
            ["Taro <taro@customer.example>"],
            [],
        )


def test_a_reply_goes_to_the_customer_even_when_a_participant_wrote_last() -> None:
    colleague = Answered(("Hana", "hana@customer.example"), to=[("", "support@desk.example")])
    assert default_recipients("reply", CUSTOMER, colleague, OURS) == (
        ["Taro <taro@customer.example>"],
        [],
    )
    assert default_recipients("reply_all", CUSTOMER, colleague, OURS) == (
        ["Taro <taro@customer.example>"],
        ["Hana <hana@customer.example>"],
    )


def test_reply_to_is_honoured_only_on_the_customers_verified_mail() -> None:
    reply_to = [("", "elsewhere@evil.example")]
    forged = Answered(TARO, reply_to=reply_to)  # From says Taro; nobody vouches for it
    assert default_recipients("reply", CUSTOMER, forged, OURS)[0] == [
        "Taro <taro@customer.example>"
    ]
    vouched = Answered(TARO, reply_to=[("", "taro@home.example")], verified=True)
    assert default_recipients("reply", CUSTOMER, vouched, OURS)[0] == ["taro@home.example"]


def test_a_ticket_we_started_answers_whom_we_wrote_to() -> None:
    ours = Customer("Support", "support@desk.example", first_written_to=[TARO])
    answer = Answered(("Support", "support@desk.example"), to=[TARO])
    assert default_recipients("reply", ours, answer, OURS)[0] == ["Taro <taro@customer.example>"]
    assert default_recipients("new", ours, None, OURS)[0] == ["Taro <taro@customer.example>"]


def test_a_forward_starts_empty() -> None:
    assert default_recipients("forward", CUSTOMER, Answered(TARO), OURS) == ([], [])


# --- Authentication-Results ------------------------------------------------------------

TRUSTED = ar.trusted_ids(" MX.Desk.example , relay.desk.example,")


def test_the_setting_is_a_comma_separated_list_and_empty_trusts_none() -> None:
    assert TRUSTED == {"mx.desk.example", "relay.desk.example"}
    assert ar.trusted_ids("") == frozenset()
    header = "mx.desk.example; dmarc=pass header.from=customer.example"
    assert not ar.verdict([header], ["taro@customer.example"], frozenset()).verified


def test_a_typical_header_is_read() -> None:
    got = ar.parse(
        "mx.desk.example 1; spf=pass (sender is ok) smtp.mailfrom=bounce@customer.example;\r\n"
        '\tdkim=pass reason="good sig" header.d=customer.example header.s="s1" '
        "header.b=abc;\r\n dmarc=pass (p=reject) header.from=customer.example"
    )
    assert got is not None and got.authserv_id == "mx.desk.example"
    assert [(r.method, r.result) for r in got.results] == [
        ("spf", "pass"),
        ("dkim", "pass"),
        ("dmarc", "pass"),
    ]
    assert got.results[1].prop("header.d") == "customer.example"
    assert got.results[1].prop("header.s") == "s1"
    assert got.results[0].prop("smtp.mailfrom") == "bounce@customer.example"


@pytest.mark.parametrize(
    ("header", "method"),
    [
        ("mx.desk.example; dmarc=pass header.from=customer.example", "dmarc"),
        ("mx.desk.example; dmarc=pass", "dmarc"),
        ("mx.desk.example; dkim=pass header.d=Customer.Example.", "dkim"),
        ("mx.desk.example; dkim=pass header.i=@customer.example", "dkim"),
        ("mx.desk.example; spf=pass smtp.mailfrom=customer.example", "spf"),
        ('mx.desk.example; spf=pass smtp.mailfrom="a b"@customer.example', "spf"),
        ('"relay.desk.example"; dkim/1=pass header.d=customer.example', "dkim"),
        (
            "mx.desk.example; spf=pass smtp.mailfrom=customer.example; "
            "dmarc=pass header.from=customer.example",
            "dmarc",
        ),
    ],
)
def test_a_trusted_aligned_pass_verifies(header: str, method: str) -> None:
    v = ar.verdict([header], ["taro@customer.example"], TRUSTED)
    assert v.verified and v.method == method and v.domain == "customer.example"


@pytest.mark.parametrize(
    "header",
    [
        # not from a host we trust: anyone can write this into a mail
        "mx.evil.example; dmarc=pass header.from=customer.example",
        "dkim=pass header.d=customer.example",  # no authserv-id at all
        # not aligned with the From domain (strictly)
        "mx.desk.example; dkim=pass header.d=evil.example",
        "mx.desk.example; dkim=pass header.d=example",  # a parent: relaxed is DMARC's job
        "mx.desk.example; dkim=pass header.d=mail.customer.example",
        "mx.desk.example; spf=pass smtp.mailfrom=bounce@evil.example",
        "mx.desk.example; spf=pass smtp.helo=customer.example",
        "mx.desk.example; dmarc=pass header.from=evil.example",
        # not a pass
        "mx.desk.example; dkim=fail header.d=customer.example",
        "mx.desk.example; spf=softfail smtp.mailfrom=customer.example",
        "mx.desk.example; dkim=neutral header.d=customer.example",
        "mx.desk.example; none",
        # a trusted DMARC fail outweighs a pass
        "mx.desk.example; dkim=pass header.d=customer.example; dmarc=fail "
        "header.from=customer.example",
        # malformed: an unfinished comment or quoted string loses the whole header
        "mx.desk.example; dkim=pass (oops header.d=customer.example",
        'mx.desk.example; dkim=pass header.d="customer.example',
        "mx.desk.example dkim=pass header.d=customer.example",
    ],
)
def test_anything_else_is_unverified(header: str) -> None:
    assert not ar.verdict([header], ["taro@customer.example"], TRUSTED).verified


def test_a_dmarc_fail_in_another_trusted_header_outweighs_a_pass() -> None:
    headers = [
        "mx.desk.example; dkim=pass header.d=customer.example",
        "relay.desk.example; dmarc=fail header.from=customer.example",
    ]
    assert not ar.verdict(headers, ["taro@customer.example"], TRUSTED).verified


def test_several_or_no_from_addresses_are_never_verified() -> None:
    header = "mx.desk.example; dkim=pass header.d=customer.example"
    assert ar.verdict([header], ["taro@customer.example"], TRUSTED).verified
    assert not ar.verdict([header], ["taro@customer.example", "x@evil.example"], TRUSTED).verified
    assert not ar.verdict([header], [], TRUSTED).verified
    assert not ar.verdict([header], [""], TRUSTED).verified


def test_international_domains_compare_as_a_labels() -> None:
    header = "mx.desk.example; dkim=pass header.d=xn--wgv71a.jp"
    v = ar.verdict([header], ["taro@日本.jp"], TRUSTED)
    assert v.verified and v.domain == "xn--wgv71a.jp"


def test_the_parser_reads_the_headers_into_the_summarys_verdict() -> None:
    raw = (
        b"Authentication-Results: mx.desk.example;\r\n"
        b"  dkim=pass header.d=customer.example\r\n"
        b"Authentication-Results: mx.evil.example; dmarc=pass\r\n"
        b"From: Taro <taro@customer.example>\r\nTo: support@desk.example\r\n"
        b"Subject: hi\r\n\r\nbody\r\n"
    )
    parsed = parse(raw)
    assert len(parsed.auth_results) == 2
    assert "auth_results" not in parsed.to_json()  # names domains masking would not hide
    got = sender_auth(parsed, TRUSTED)
    assert got.verified and got.method == "dkim" and got.authserv_id == "mx.desk.example"
    assert not sender_auth(parsed, frozenset({"mx.other.example"})).verified
    forged = parse(raw.replace(b"mx.desk.example;", b"mx.desk.example.evil.example;"))
    assert not sender_auth(forged, TRUSTED).verified


_PIECES = st.sampled_from(
    [
        "mx.desk.example",
        ";",
        "=",
        " ",
        "(",
        ")",
        '"',
        "\\",
        "/",
        ".",
        "@",
        "dkim",
        "pass",
        "header.d",
        "customer.example",
        "dmarc",
        "none",
        "\r\n\t",
        "\x00",
        "é",
        "1",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join))
def test_malformed_headers_never_raise(value: str) -> None:
    got = ar.parse(value)
    assert got is None or isinstance(got.authserv_id, str)
    v = ar.verdict([value], ["taro@customer.example"], TRUSTED)
    if v.verified:  # a pass only ever comes from a trusted id, for the From domain
        assert v.authserv_id in TRUSTED and v.domain == "customer.example"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.text(max_size=60))
def test_any_text_never_raises(value: str, sender: str) -> None:
    ar.parse(value)
    ar.verdict([value, value[::-1]], [sender], TRUSTED)
    ar.normalize_domain(sender)


def test_a_very_long_header_is_read_only_so_far() -> None:
    value = "mx.desk.example; " + "dkim=pass header.d=evil.example; " * 2000
    got = ar.parse(value)
    assert got is not None and len(got.results) <= ar.MAX_RESULTS
