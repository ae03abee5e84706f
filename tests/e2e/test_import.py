"""Import (DAT-2) through the gateway and the command-line tool: every real-world mail of
the shared corpora and of CPython's test data goes in without an escaped exception and
comes back byte-identical; original dates are kept; the same file twice creates nothing
new; a job survives a SIGKILL of ingestion; broken files get clear outcomes."""

from __future__ import annotations

import asyncio
import hashlib
import io
import mailbox
import os
import signal
import sys
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from services.devstack.stack import ROOT, Stack
from services.runtime.db import with_database
from tests import shared
from tests.helpers import Tenant, all_tickets, api_get, create_tenant, eventually, login, make_mail

pytestmark = pytest.mark.e2e


def corpus_files() -> list[Path]:
    import test as cpython_tests

    roots = [
        shared.required(),
        Path(os.path.dirname(cpython_tests.__file__)) / "test_email" / "data",
    ]
    files: list[Path] = []
    for root in roots:
        if root.exists():
            files += [
                p
                for p in root.rglob("*")
                if p.is_file()
                and p.suffix.lower() in {".eml", ".raw", ".txt", ""}
                and "LICENSE" not in p.name
                and p.stat().st_size < 5_000_000
            ]
    return sorted(files)


async def _upload(
    stack: Stack, token: str, inbox_id: str, data: bytes, filename: str, kind: str = ""
) -> tuple[int, Any]:
    params = {"inbox_id": inbox_id, "filename": filename}
    if kind:
        params["kind"] = kind
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/imports",
            params=params,
            data=data,
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            return resp.status, await resp.json()


async def _finished(stack: Stack, token: str, job_id: str, timeout: float = 120) -> Any:
    async def probe() -> Any:
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{stack.gateway_url}/api/v1/imports/{job_id}",
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                if resp.status == 503:
                    return None
                job = await resp.json()
                return job if job["state"] in ("done", "failed") else None

    return await eventually(probe, timeout=timeout, every=0.3)


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


async def _raw(stack: Stack, token: str, message_id: str) -> bytes:
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{stack.gateway_url}/api/v1/messages/{message_id}/raw",
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "message/rfc822"
            return await resp.read()


@pytest.fixture
async def tenant(stack: Stack) -> Tenant:
    return await create_tenant(stack)


async def test_every_corpus_mail_imports_and_comes_back_byte_identical(
    stack: Stack, tenant: Tenant
) -> None:
    files = corpus_files()
    assert len(files) > 250
    members = {f"{i:04d}-{p.name}.eml": p.read_bytes() for i, p in enumerate(files)}
    token = await login(stack, tenant.login, tenant.password)
    code, job = await _upload(stack, token, tenant.inbox_id, _zip(members), "corpora.zip")
    assert code == 201, job
    job = await _finished(stack, token, job["id"], timeout=240)
    assert job["state"] == "done" and job["total"] == len(files) == job["done"]
    # Only empty files may fail; every other mail is a message (or a dedupe of one).
    assert all(f["problem"] == "empty message" for f in job["failures"]), job["failures"]
    assert job["created"] + job["duplicates"] + len(job["failures"]) == len(files)

    # Count mails, not tickets: a corpus mail that references another one joins that
    # one's ticket when it is filed after it (the order of filing decides).
    def mails(tickets: list[dict[str, Any]]) -> int:
        return sum(int(t["message_count"]) for t in tickets)

    async def all_listed() -> list[dict[str, Any]]:
        # Corpus mails with spam verdicts are in the trash (ING-5): count both lists.
        tickets = await all_tickets(stack, token) + await all_tickets(stack, token, "trash")
        return tickets if mails(tickets) >= job["created"] else []

    tickets = await eventually(all_listed, timeout=120)
    assert mails(tickets) == job["created"]
    wanted = {hashlib.sha256(d).hexdigest() for d in members.values()}

    async def round_trip(ticket: dict[str, Any]) -> list[str]:
        code, detail = await api_get(stack, token, f"/api/v1/tickets/{ticket['id']}")
        assert code == 200
        return [
            hashlib.sha256(await _raw(stack, token, m["id"])).hexdigest()
            for m in detail["messages"]
        ]

    got: list[str] = []
    for i in range(0, len(tickets), 20):  # every one of them, twenty at a time
        for hashes in await asyncio.gather(*(round_trip(t) for t in tickets[i : i + 20])):
            got += hashes
    assert set(got) <= wanted  # each mail comes back exactly as one of the files
    assert len(set(got)) == len(got) == job["created"]
    print(f"{len(files)} corpus mails: {job['created']} tickets, {job['duplicates']} dupes")


async def test_importing_the_same_file_twice_creates_nothing_new_and_keeps_dates(
    stack: Stack, tenant: Tenant
) -> None:
    token = await login(stack, tenant.login, tenant.password)
    mails = []
    for i in range(5):
        m = make_mail(f"Old mail {i}")
        del m["Date"]
        m["Date"] = f"Tue, 0{i + 1} Mar 2022 10:00:00 +0900"
        mails.append(m)
    path = Path(stack.config.data_dir) / f"old-{uuid.uuid4().hex[:6]}.mbox"
    mb = mailbox.mbox(path)
    for m in mails:
        mb.add(m)
    mb.close()
    data = path.read_bytes()
    code, first = await _upload(stack, token, tenant.inbox_id, data, path.name)
    assert code == 201 and first["kind"] == "mbox"
    first = await _finished(stack, token, first["id"])
    assert (first["state"], first["created"], first["duplicates"]) == ("done", 5, 0)
    code, second = await _upload(stack, token, tenant.inbox_id, data, path.name)
    second = await _finished(stack, token, second["id"])
    assert (second["state"], second["created"], second["duplicates"]) == ("done", 0, 5)

    # the job is done once ingestion stored them; tickets files them a moment later
    async def filed() -> list[str] | None:
        tickets = [
            t for t in await all_tickets(stack, token) if t["subject"].startswith("Old mail")
        ]
        return sorted(t["received_at"] for t in tickets) if len(tickets) >= 5 else None

    assert await eventually(filed, timeout=30) == [f"2022-03-0{i + 1}T01:00:00Z" for i in range(5)]


async def test_an_import_survives_a_sigkill_of_ingestion(stack: Stack, tenant: Tenant) -> None:
    token = await login(stack, tenant.login, tenant.password)
    count = 1000  # enough that the job is still running when ingestion is killed
    tag = f"Bulk {uuid.uuid4().hex[:6]}"
    members = {f"{i:04d}.eml": make_mail(f"{tag} #{i:04d}").as_bytes() for i in range(count)}
    code, job = await _upload(stack, token, tenant.inbox_id, _zip(members), "bulk.zip")
    assert code == 201

    async def started() -> bool:
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{stack.gateway_url}/api/v1/imports/{job['id']}",
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                return (await resp.json())["done"] > 20

    await eventually(started, timeout=60)
    stack.kill("ingestion", signal.SIGKILL)
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_ingestion"))
    try:  # killed half-way: what the job had recorded by then
        done = await conn.fetchval(
            "SELECT done FROM import_jobs WHERE id = $1", uuid.UUID(job["id"])
        )
    finally:
        await conn.close()
    assert 0 < done < count
    stack.start_process("ingestion")
    job = await _finished(stack, token, job["id"], timeout=180)
    assert (job["state"], job["done"], job["total"]) == ("done", count, count)

    async def all_there() -> list[str]:
        subjects = [
            t["subject"] for t in await all_tickets(stack, token) if t["subject"].startswith(tag)
        ]
        return subjects if len(subjects) >= count else []

    subjects = await eventually(all_there, timeout=120)
    assert sorted(subjects) == [f"{tag} #{i:04d}" for i in range(count)]
    await stack.wait_healthy(timeout=30)


async def test_broken_files_get_clear_outcomes(stack: Stack, tenant: Tenant) -> None:
    token = await login(stack, tenant.login, tenant.password)
    code, body = await _upload(stack, token, tenant.inbox_id, b"", "empty.eml")
    assert code == 400 and body["error"]["field"] == "data"
    code, body = await _upload(stack, token, tenant.inbox_id, b"x", "x.eml", kind="tar")
    assert code == 400 and body["error"]["field"] == "kind"
    code, body = await _upload(stack, token, str(uuid.uuid4()), b"x", "x.eml")
    assert code == 404 and body["error"]["field"] == "inbox_id"
    code, job = await _upload(stack, token, tenant.inbox_id, b"PK\x03\x04garbage", "bad.zip")
    assert code == 201
    job = await _finished(stack, token, job["id"])
    assert job["state"] == "failed" and "zip" in job["error"]
    bomb = _zip({"bomb.eml": b"\0" * (120 * 1024 * 1024), "ok.eml": make_mail("fine").as_bytes()})
    code, job = await _upload(stack, token, tenant.inbox_id, bomb, "bomb.zip")
    job = await _finished(stack, token, job["id"])
    assert job["state"] == "done" and job["created"] == 1
    [failure] = job["failures"]
    assert failure["name"] == "bomb.eml" and "larger than" in failure["problem"]
    agent = await login(stack)  # not an administrator
    code, body = await _upload(stack, agent, tenant.inbox_id, b"x", "x.eml")
    assert code == 403
    await stack.wait_healthy(timeout=10)


async def test_the_command_line_tool_imports_and_reports(stack: Stack, tenant: Tenant) -> None:
    path = Path(stack.config.data_dir) / "cli.zip"
    tag = f"CLI {uuid.uuid4().hex[:6]}"
    path.write_bytes(_zip({f"{i}.eml": make_mail(f"{tag} {i}").as_bytes() for i in range(3)}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.ingestion.import_cli",
        str(path),
        "--inbox",
        "Help",
        "--url",
        stack.gateway_url,
        "--login",
        tenant.login,
        "--interval",
        "0.3",
        env={**os.environ, "SB_IMPORT_PASSWORD": tenant.password},
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    started = time.monotonic()
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    text = out.decode()
    assert proc.returncode == 0, text
    assert "cli.zip: done 3/3 (3 new, 0 already there, 0 failed)" in text
    print(f"CLI import of 3 mails: {time.monotonic() - started:.1f}s")
