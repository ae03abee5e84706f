"""Parsing off the event loop (services/ingestion/parsing.py): worker processes give the
same parse as in-process, in the order asked, and a worker that dies is replaced."""

from __future__ import annotations

import os
from concurrent.futures.process import BrokenProcessPool
from email.message import EmailMessage
from functools import partial

import pytest

from services.ingestion.parser import parse
from services.ingestion.parsing import MailParser


def _mail(n: int, size: int) -> bytes:
    m = EmailMessage()
    m["From"] = f"Sender {n} <s{n}@example.com>"
    m["Subject"] = f"Mail {n}"
    m.set_content(f"line {n}\n" * (size // 8))
    m.add_alternative(f"<p>mail <b>{n}</b></p>" * (size // 40), subtype="html")
    return m.as_bytes()


async def test_workers_parse_like_the_process_in_the_order_asked_and_outlive_a_death() -> None:
    parser = MailParser(workers=2)
    await parser.start()
    try:
        raws = [_mail(n, size) for n, size in enumerate([100, 40_000, 3_000, 90_000, 20_000])]
        got = await parser.parse_many(raws)
        assert [p.to_json() for p in got] == [parse(r, defer_html=True).to_json() for r in raws]
        assert got[1].html_deferred and got[1].html == ""
        full = await parser.parse(raws[1], full=True)
        assert full.to_json() == parse(raws[1]).to_json() and "<b>1</b>" in full.html
        with pytest.raises(BrokenProcessPool):  # a mail that kills its worker, as it were
            await parser._in_worker(partial(os._exit, 1))
        again = await parser.parse(raws[3])
        assert again.subject == "Mail 3"
    finally:
        await parser.close()
