"""What an operator without see_customer_addresses searches (SEC-6), on real PostgreSQL and
Redis: the database's `sb_unaddressed` (tickets' migration 006) removes at least every
address and phone number that the masking of answers hides, so nothing hidden can be
found by searching for it; and the search rate per operator is a sliding window."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.runtime import redis_client
from services.runtime.clock import ManualClock
from services.runtime.db import Database, load_migrations, runtime_migrations, with_database
from services.runtime.errors import ResourceExhausted
from services.runtime.identity import Identity
from services.runtime.ids import IdGenerator
from services.runtime.masking import mask_text
from services.runtime.text import normalize
from services.tickets.search_limit import SearchLimiter
from tests.conftest import Infra


@pytest.fixture(scope="module")
async def db(infra: Infra) -> AsyncIterator[Database]:
    d = Database(with_database(infra.postgres.url, f"test_masked_{uuid.uuid4().hex[:8]}"))
    await d.open(runtime_migrations() + load_migrations("tickets", "services.tickets.migrations"))
    yield d
    await d.close()


async def unaddressed(db: Database, raw: str) -> str:
    """What a masked operator's search is compared with, for a message of text `raw`."""
    return str(await db.pool.fetchval("SELECT sb_unaddressed($1)", normalize(raw)))


# (text, what must not be found in it by a masked operator)
EXAMPLES = [
    ("Please write to taro.yamada@customer.example today", ["aro.yamada", "ustomer"]),
    ("メールはtaro@example.jpまでお願いします", ["aro", "xample"]),
    ("連絡先：ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", ["aro", "xample"]),
    ("<a href='mailto:a.bcd+efg@sub.example.co.jp'>me</a>", ["bcd", "efg", "ub.example"]),
    ('"hanako@example.com" <hanako@example.com>', ["anako"]),
    ("call 090-1234-5678.", ["1234", "567"]),
    ("TEL:03-1234-5678", ["1234", "567"]),
    ("電話09012345678まで", ["0123", "4567"]),
    ("お電話は０９０－１２３４－５６７８へ", ["1234", "567"]),
    ("+81 90 1234 5678 (mobile)", ["1234", "567", "81 90"]),
    ("(03) 1234-5678", ["1234"]),
]


@pytest.mark.parametrize(("raw", "hidden"), EXAMPLES)
async def test_nothing_the_masking_hides_is_left_to_search(
    db: Database, raw: str, hidden: list[str]
) -> None:
    shown = mask_text(raw)
    searched = await unaddressed(db, raw)
    for part in hidden:
        assert part not in shown  # the masking hides it …
        assert normalize(part) not in searched, (raw, searched)  # … and so does search


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("order 12345678901 shipped", ["order", "12345678901", "shipped"]),
        ("on 2026-12-04 at 10:30", ["2026-12-04", "10:30"]),
        ("請求書の件、山田です", ["請求書の件", "山田です"]),
        ("price ¥1,234,567", ["1,234,567"]),
    ],
)
async def test_text_without_addresses_or_phones_is_searched_as_it_is(
    db: Database, raw: str, kept: list[str]
) -> None:
    searched = await unaddressed(db, raw)
    for part in kept:
        assert normalize(part) in searched


# Text around an address or a phone number: Latin and Japanese letters, digits, the
# punctuation and brackets mail puts around them, ASCII and full-width — none of the
# characters the address or the number hides (q w v k j z, 8 7 6).
_AROUND = st.text(
    alphabet=st.sampled_from(list("abc XYZ:;,.()<>「」、。電話番号はまでＴＥＬ：（）-_/'\"+1０\n")),
    max_size=12,
)
_LOCAL = st.text(alphabet=st.sampled_from(list("qwvkjz.+_-")), max_size=12).map(lambda s: f"m{s}q")
_PHONE = st.sampled_from(
    [
        "090-8877-6655",
        "09088776655",
        "+81 90 8877 6655",
        "(03) 8877-6655",
        "０９０－８８７７－６６５５",
    ]
)
_HIDDEN = {"address": set("qwvkjz"), "phone": set("876")}
_FULL_WIDTH = {c: c + 0xFEE0 for c in range(0x21, 0x7F)}


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(before=_AROUND, local=_LOCAL, after=_AROUND, phone=_PHONE, full_width=st.booleans())
async def test_an_address_or_phone_in_any_surroundings_is_never_searchable(
    db: Database, before: str, local: str, after: str, phone: str, full_width: bool
) -> None:
    address = f"{local}@mqwvkjz.example"
    if full_width:
        address = address.translate(_FULL_WIDTH)
    for kind, secret in (("address", address), ("phone", phone)):
        raw = f"{before}{secret}{after}"
        if _HIDDEN[kind] & set(normalize(mask_text(raw))):
            continue  # the answer shows it (odd surroundings): nothing to keep from search
        searched = await unaddressed(db, raw)
        assert not _HIDDEN[kind] & set(searched), (raw, mask_text(raw), searched)


@pytest.fixture
async def limiter(infra: Infra) -> AsyncIterator[tuple[SearchLimiter, ManualClock]]:
    redis = redis_client.connect(infra.redis.url)
    clock = ManualClock(datetime(2026, 12, 7, 10, 0, tzinfo=UTC))
    yield SearchLimiter(redis, clock, IdGenerator(clock), per_minute=30), clock
    await redis.aclose()


async def test_the_31st_search_in_a_minute_waits_until_the_oldest_leaves_the_window(
    limiter: tuple[SearchLimiter, ManualClock],
) -> None:
    search_limit, clock = limiter
    me = Identity(tenant_id=str(uuid.uuid4()), operator_id=str(uuid.uuid4()))
    colleague = Identity(tenant_id=me.tenant_id, operator_id=str(uuid.uuid4()))
    await search_limit.count(me)  # at 10:00:00
    clock.advance(seconds=20)
    for _ in range(29):
        await search_limit.count(me)
    with pytest.raises(ResourceExhausted) as refused:
        await search_limit.count(me)
    assert refused.value.retry_after_s == 40 and refused.value.field == "q"
    await search_limit.count(colleague)  # each operator has their own window
    await search_limit.count(Identity(tenant_id=me.tenant_id))  # a service: not counted
    clock.advance(seconds=39)
    with pytest.raises(ResourceExhausted) as refused:  # refused searches did not count
        await search_limit.count(me)
    assert refused.value.retry_after_s == 1
    clock.advance(seconds=1)
    await search_limit.count(me)  # the first search left the window
    with pytest.raises(ResourceExhausted):
        await search_limit.count(me)
