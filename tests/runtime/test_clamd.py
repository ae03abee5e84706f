"""The INSTREAM client (services/ingestion/clamd.py) and the scanner's breaker
(services/ingestion/virus.py) against Debian's real clamd with the EICAR signature
(tests/clamd.py), and against a peer that accepts and never answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.devstack.infra import free_port
from services.ingestion.clamd import Address, Clamd, ScannerDown
from services.ingestion.virus import CLEAN, NOT_SCANNED, Scannable, VirusScanner
from services.runtime.clock import SystemClock
from services.runtime.events import INFECTED
from tests.clamd import EICAR, SIGNATURE
from tests.clamd import Clamd as ClamdServer


async def test_instream_finds_the_signature_in_any_chunking_and_passes_clean_data(
    clamd: ClamdServer,
) -> None:
    client = Clamd(Address.parse(clamd.address))
    await client.ping()
    assert (await client.instream(EICAR, 10)).startswith(SIGNATURE)  # type: ignore[union-attr]
    small = Clamd(Address.parse(clamd.address), chunk_bytes=7)
    assert (await small.instream(EICAR, 10)).startswith(SIGNATURE)  # type: ignore[union-attr]
    assert await client.instream(b"harmless " * 500_000, 30) is None  # 4.5 MB in chunks
    assert await client.instream(b"", 10) is None


async def test_a_closed_port_is_a_scanner_that_is_down() -> None:
    client = Clamd(Address("127.0.0.1", free_port()))
    with pytest.raises(ScannerDown):
        await client.instream(EICAR, 5)


@pytest.fixture
async def silent_peer() -> AsyncIterator[tuple[int, list[int]]]:
    """Accepts, reads whatever comes, never answers: (its port, connections seen)."""
    seen: list[int] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(1)
        try:
            while await reader.read(65536):
                pass
        finally:
            writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], seen
    finally:
        server.close()


async def test_a_hung_scanner_costs_one_wait_then_mail_is_not_scanned_at_once(
    silent_peer: tuple[int, list[int]],
) -> None:
    port, seen = silent_peer
    scanner = VirusScanner(
        Clamd(Address("127.0.0.1", port)), SystemClock(), timeout_s=0.3, retry_s=60
    )
    first = await scanner.scan([Scannable(0, "a.bin", b"data")])
    assert first.state == NOT_SCANNED and "did not answer" in first.error
    assert scanner.down and not scanner.due_for_probe()
    second = await scanner.scan([Scannable(0, "b.bin", b"data")])
    assert second.state == NOT_SCANNED and second.error == first.error
    assert len(seen) == 1  # the breaker: the second mail did not wait for it
    assert (await scanner.scan([])).state == ""  # nothing to scan is never "not scanned"


async def test_the_breaker_closes_when_clamd_answers_again(clamd: ClamdServer) -> None:
    scanner = VirusScanner(
        Clamd(Address.parse(clamd.address)), SystemClock(), timeout_s=5, retry_s=0.1
    )
    items = [Scannable(0, "ok.txt", b"fine"), Scannable(1, "x.com", EICAR)]
    clamd.stop()
    try:
        down = await scanner.scan(items)
        assert down.state == NOT_SCANNED and clamd.address in down.error
        assert scanner.down and not await scanner.probe()
    finally:
        clamd.start()
    assert await scanner.probe() and not scanner.down
    found = await scanner.scan(items)
    assert found.state == INFECTED and found.scanned_at is not None
    [finding] = found.findings
    assert (finding.index, finding.filename) == (1, "x.com")
    assert finding.signature.startswith(SIGNATURE)
    assert (await scanner.scan(items[:1])).state == CLEAN
