"""clamd's addresses and INSTREAM replies as services/ingestion/clamd.py reads them."""

from __future__ import annotations

import pytest

from services.ingestion.clamd import Address, ScanError, verdict_of


def test_addresses_and_replies_are_read_strictly() -> None:
    assert Address.parse("clamd.av.svc:3310") == Address(host="clamd.av.svc", port=3310)
    assert Address.parse("[::1]:3310") == Address(host="::1", port=3310)
    assert Address.parse("/run/clamav/clamd.ctl") == Address(path="/run/clamav/clamd.ctl")
    assert Address.parse("unix:/tmp/c.sock") == Address(path="/tmp/c.sock")
    for bad in ("clamd", "clamd:", ":3310", "clamd:99999", "unix:"):
        with pytest.raises(ValueError):
            Address.parse(bad)
    assert verdict_of("stream: OK") is None
    assert verdict_of("stream: Win.Test.EICAR_HDB-1 FOUND") == "Win.Test.EICAR_HDB-1"
    with pytest.raises(ScanError, match="size limit"):
        verdict_of("INSTREAM size limit exceeded. ERROR")
