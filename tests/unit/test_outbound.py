"""Outbound's rules without the system: how an SMTP outcome moves an item, back-off with
jitter, route choice, business hours and the automatic reply's conditions, rescheduled
Date headers, DKIM signing — and the SMTP client against a real aiosmtpd server, telling
apart what may be retried from what may already have been delivered."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import dkim
import pytest

from services.outbound import domain, signing
from services.outbound.api import retime
from services.outbound.domain import Hours, Outcome, Result, Route, State
from services.outbound.smtp import Hop, LeaseLost, SmtpClient
from services.runtime import mail
from services.runtime.errors import FailedPrecondition, InvalidArgument
from services.runtime.hosts import ConnectPolicy
from tests.conftest import CONNECT_ALLOW
from tests.smtp_peer import SmtpPeer


def test_outcomes_move_the_item() -> None:
    kw = {"base_s": 60, "cap_s": 3600, "rand": 0.5}
    assert domain.after_attempt(Result(Outcome.SENT, 250, ""), 1, 5, **kw).state is State.SENT
    assert (
        domain.after_attempt(Result(Outcome.PERMANENT, 550, ""), 1, 5, **kw).state is State.FAILED
    )
    assert domain.after_attempt(Result(Outcome.UNKNOWN, 0, ""), 1, 5, **kw).state is State.UNKNOWN
    move = domain.after_attempt(Result(Outcome.TEMPORARY, 451, ""), 1, 5, **kw)
    assert move.state is State.RETRYING and move.next_attempt_in_s == 45
    last = domain.after_attempt(Result(Outcome.TEMPORARY, 451, ""), 5, 5, **kw)
    assert last.state is State.FAILED
    assert [domain.outcome_of(c) for c in (250, 421, 451, 550, 554)] == [
        Outcome.SENT,
        Outcome.TEMPORARY,
        Outcome.TEMPORARY,
        Outcome.PERMANENT,
        Outcome.PERMANENT,
    ]


def test_backoff_grows_is_capped_and_jittered() -> None:
    waits = [domain.backoff_s(n, base_s=60, cap_s=3600, rand=1.0) for n in range(1, 10)]
    assert waits[:4] == [60, 120, 240, 480] and max(waits) == 3600
    low = domain.backoff_s(3, base_s=60, cap_s=3600, rand=0.0)
    assert low == 120  # half of the ceiling: never all at once, never immediately


def _route(scope: str, **kw: str) -> Route:
    return Route(
        id=kw.get("id", scope),
        name=scope,
        scope=scope,
        inbox_id=kw.get("inbox_id", ""),
        domain=kw.get("domain", ""),
        host="h",
        port=25,
        security="none",
        username="",
        password="",
        verify_certificate=True,
    )


def test_routes_by_recipient_domain_then_inbox_then_default() -> None:
    routes = [
        _route("default"),
        _route("inbox", inbox_id="i1"),
        _route("domain", domain="relay.market.example"),
    ]
    assert domain.choose_route(routes, "i1", ["a@relay.market.example"]).scope == "domain"
    assert domain.choose_route(routes, "i1", ["a@x.example"]).scope == "inbox"
    assert domain.choose_route(routes, "i2", ["a@x.example"]).scope == "default"
    assert domain.choose_route(routes[1:2], "i2", ["a@x.example"]) is None  # the relay
    with pytest.raises(FailedPrecondition):
        domain.choose_route(routes, "i1", ["a@relay.market.example", "b@x.example"])


def test_route_and_dkim_checks() -> None:
    good = dict(
        name=" Main ",
        scope="domain",
        inbox_id="",
        domain="Relay.例え.jp",
        host="smtp.x.example",
        port=587,
        security="starttls",
        username="u",
    )
    assert domain.check_route(**good) == ("Main", "relay.xn--r8jz45g.jp")
    for bad in ({"host": "a b"}, {"port": 0}, {"security": "ssl"}, {"username": "a\nb"}):
        with pytest.raises(InvalidArgument):
            domain.check_route(**{**good, **bad})
    assert domain.check_dkim_target("Example.COM", "SB2026") == ("example.com", "sb2026")
    with pytest.raises(InvalidArgument):
        domain.check_dkim_target("example.com", "bad selector")


def test_business_hours_in_the_inbox_time_zone() -> None:
    hours = domain.check_hours([Hours(1, "09:00", "18:00"), Hours(5, "09:00", "24:00")])
    tokyo = domain.zone("Asia/Tokyo")
    monday_10_tokyo = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
    assert domain.within_hours(monday_10_tokyo, hours, tokyo)
    assert not domain.within_hours(monday_10_tokyo, hours, domain.zone("UTC"))  # 01:00
    assert not domain.within_hours(monday_10_tokyo + timedelta(hours=9), hours, tokyo)  # 19:00
    friday_late = datetime(2026, 12, 11, 14, 59, tzinfo=UTC)  # 23:59 Friday in Tokyo
    assert domain.within_hours(friday_late, hours, tokyo)
    for bad in ([Hours(0, "09:00", "10:00")], [Hours(1, "18:00", "09:00")], [Hours(1, "9", "10")]):
        with pytest.raises(InvalidArgument):
            domain.check_hours(bad)
    with pytest.raises(InvalidArgument):
        domain.zone("Mars/Olympus")


def test_automatic_reply_conditions() -> None:
    now = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    rule = domain.AutoReplyRule(
        enabled=True,
        mode="outside_hours",
        hours=(Hours(1, "09:00", "18:00"),),
        tz=domain.zone("Asia/Tokyo"),
        template_id="t",
        period=timedelta(hours=24),
    )
    base = dict(
        now=now + timedelta(hours=12),  # 22:00 in Tokyo: outside hours
        automatic=False,
        junk=False,
        sender="c@x.example",
        own_addresses=frozenset({"help@us.example"}),
        last_sent=None,
    )
    assert domain.auto_reply_due(rule, **base) is None
    assert domain.auto_reply_due(rule, **{**base, "now": now}) == "within business hours"
    assert domain.auto_reply_due(rule, **{**base, "automatic": True}) == "automatic mail"
    assert domain.auto_reply_due(rule, **{**base, "junk": True}) == "spam or blocked"
    assert domain.auto_reply_due(rule, **{**base, "sender": "HELP@us.example"})
    recent = {**base, "last_sent": base["now"] - timedelta(hours=1)}
    assert domain.auto_reply_due(rule, **recent) == "already answered in the period"
    old = {**base, "last_sent": base["now"] - timedelta(hours=25)}
    assert domain.auto_reply_due(rule, **old) is None


def _message(**kw: object) -> bytes:
    out = mail.Outgoing(
        sender=mail.Mailbox("Help", "help@us.example"),
        to=[mail.Mailbox("顧客", "c@x.example")],
        cc=[],
        subject="件名です",
        text="本文です。\n.\n..line starting with dots\n",
        **kw,  # type: ignore[arg-type]
    )
    date = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    return mail.build(out, message_id="m1@us.example", date=date).as_bytes()


def test_extra_headers_are_checked_like_every_other_header() -> None:
    raw = _message(extra_headers=(("Auto-Submitted", "auto-replied"),))
    assert b"Auto-Submitted: auto-replied\r\n" in raw
    for name, value in (
        ("Auto-Submitted", "auto-replied\r\nBcc: v@evil.example"),
        ("Bcc", "v@evil.example"),
        ("X-Bad Name", "x"),
        ("From", "other@evil.example"),
    ):
        with pytest.raises(InvalidArgument):
            _message(extra_headers=((name, value),))


def test_a_rescheduled_mail_gets_the_new_date_and_loses_its_old_signature() -> None:
    pem = signing.generate_pem(1024)
    raw = signing.sign(_message(), domain="us.example", selector="s1", private_pem=pem)
    assert raw.startswith(b"DKIM-Signature:")
    moved = retime(raw, datetime(2026, 12, 25, 0, 0, tzinfo=UTC))
    assert b"DKIM-Signature" not in moved
    assert b"\r\nDate: Fri, 25 Dec 2026 00:00:00 +0000\r\n" in b"\r\n" + moved
    assert moved.count(b"Date:") == 1
    assert moved.split(b"\r\n\r\n", 1)[1] == raw.split(b"\r\n\r\n", 1)[1]


def test_dkim_signature_verifies_and_covers_what_matters() -> None:
    pem = signing.generate_pem(1024)
    txt = signing.dns_txt(signing.public_key_b64(pem)).encode()
    signed = signing.sign(
        _message(extra_headers=(("Auto-Submitted", "auto-replied"),)),
        domain="us.example",
        selector="s1",
        private_pem=pem,
    )

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return txt if name.decode().startswith("s1._domainkey.us.example") else b""

    assert dkim.verify(signed, dnsfunc=dns)
    header = signed.split(b"\r\n\r\n", 1)[0].decode()
    for h in ("from", "to", "subject", "date", "message-id", "auto-submitted"):
        assert h in header.split("h=", 1)[1].split(";", 1)[0].replace("\r\n ", "").lower()
    assert not dkim.verify(signed.replace(b"Subject:", b"Subject: X", 1), dnsfunc=dns)
    with pytest.raises(InvalidArgument):
        signing.public_key_b64("not a key")


# -- the SMTP client against a real server -----------------------------------------------


@pytest.fixture
def peer() -> SmtpPeer:
    p = SmtpPeer().start()
    yield p  # type: ignore[misc]
    p.stop()


def _client() -> SmtpClient:
    # the test server is on 127.0.0.1: allow-listed as in the test stack (issue 16)
    return SmtpClient(
        helo_name="sb.test",
        timeout_s=2,
        data_timeout_s=1,
        policy=ConnectPolicy.parse(CONNECT_ALLOW),
    )


async def _deliver(
    client: SmtpClient, peer: SmtpPeer, rcpts: list[str], marks: list[str] | None = None
) -> Result:
    async def before() -> None:
        if marks is not None:
            marks.append("data")

    hop = Hop("test", "127.0.0.1", peer.port, "none")
    return await client.deliver(hop, "help@us.example", rcpts, _message(), before)


async def test_the_client_reuses_its_connection_and_dot_stuffs(peer: SmtpPeer) -> None:
    client = _client()
    try:
        marks: list[str] = []
        for _ in range(3):
            r = await _deliver(client, peer, ["c@x.example"], marks)
            assert r.outcome is Outcome.SENT and r.code == 250
        assert marks == ["data"] * 3
        assert peer.handler.sessions == 1  # one connection, three mails
        assert [m.data == _message() for m in peer.received] == [True] * 3
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("rcpt", "outcome", "code", "reached_data"),
    [
        ("tempfail-rcpt@p.example", Outcome.TEMPORARY, 451, False),
        ("reject-rcpt@p.example", Outcome.PERMANENT, 550, False),
        ("busy@p.example", Outcome.TEMPORARY, 421, False),
        ("drop-rcpt@p.example", Outcome.TEMPORARY, 0, False),
        ("hang@p.example", Outcome.UNKNOWN, 0, True),
        ("drop-data@p.example", Outcome.UNKNOWN, 0, True),
        ("flaky1@p.example", Outcome.TEMPORARY, 451, True),
    ],
)
async def test_what_may_be_retried_and_what_may_have_been_delivered(
    peer: SmtpPeer, rcpt: str, outcome: Outcome, code: int, reached_data: bool
) -> None:
    client = _client()
    try:
        marks: list[str] = []
        r = await _deliver(client, peer, [rcpt], marks)
        assert (r.outcome, r.code) == (outcome, code), r
        assert (marks == ["data"]) is reached_data
        # the client is still usable afterwards
        assert (await _deliver(client, peer, ["ok@x.example"])).outcome is Outcome.SENT
    finally:
        await client.close()


async def test_a_lost_lease_abandons_the_mail_unsent(peer: SmtpPeer) -> None:
    client = _client()

    async def lost() -> None:
        raise LeaseLost()

    try:
        with pytest.raises(LeaseLost):
            await client.deliver(
                Hop("t", "127.0.0.1", peer.port, "none"),
                "a@us.example",
                ["c@x.example"],
                _message(),
                lost,
            )
        await asyncio.sleep(0.2)
        assert peer.received == []
    finally:
        await client.close()


async def test_nobody_listening_is_temporary() -> None:
    from services.devstack.infra import free_port

    client = _client()
    r = await client.deliver(
        Hop("t", "127.0.0.1", free_port(), "none"), "a@us.example", ["c@x.example"], b"x", _noop
    )
    assert r.outcome is Outcome.TEMPORARY and r.code == 0 and "connection failed" in r.message


async def _noop() -> None:
    return None


async def test_group_commit_coalesces_concurrent_writes_and_passes_errors_on() -> None:
    from services.outbound.batching import GroupCommit

    flushes: list[list[int]] = []

    async def flush(xs: list[int]) -> list[int]:
        flushes.append(list(xs))
        await asyncio.sleep(0.01)
        if 13 in xs:
            raise RuntimeError("database gone")
        return [x * 2 for x in xs]

    commit: GroupCommit[int, int] = GroupCommit(flush, parallel=1)  # type: ignore[arg-type]
    assert await asyncio.gather(*(commit.submit(i) for i in range(10))) == [
        i * 2 for i in range(10)
    ]
    assert flushes == [list(range(10))]  # one statement for the ten
    first = asyncio.ensure_future(commit.submit(100))
    await asyncio.sleep(0)  # its flush is at the database …
    later = await asyncio.gather(commit.submit(101), commit.submit(102))
    assert await first == 200 and later == [202, 204]
    assert flushes[1:] == [[100], [101, 102]]  # … the next ones wait and go together
    with pytest.raises(RuntimeError):
        await commit.submit(13)
    assert await commit.submit(4) == 8  # and it goes on
