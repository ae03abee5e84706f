"""Import .eml, mbox or zip files through the gateway, as an administrator would.

  python -m services.ingestion.import_cli --inbox Support FILE [FILE ...]

The password comes from SB_IMPORT_PASSWORD or a prompt. Each file becomes an import job;
the tool shows its progress and exits 0 when every job is done, 1 when one failed.
A job keeps going if the tool is stopped; running the tool again on the same file creates
nothing new (the mails are deduplicated).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp


async def _json(resp: aiohttp.ClientResponse) -> Any:
    body = await resp.json(content_type=None)
    if resp.status >= 400:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        raise SystemExit(f"error {resp.status}: {err.get('message', body)}")
    return body


def _line(name: str, job: dict[str, Any]) -> str:
    total = job["total"] if job["total"] is not None else "?"
    return (
        f"{name}: {job['state']} {job['done']}/{total} "
        f"({job['created']} new, {job['duplicates']} already there, {len(job['failures'])} failed)"
    )


async def run(args: argparse.Namespace) -> int:
    password = os.environ.get("SB_IMPORT_PASSWORD") or getpass.getpass(
        f"password for {args.login}: "
    )
    async with aiohttp.ClientSession(args.url) as http:
        async with http.post(
            "/api/v1/sessions", json={"login": args.login, "password": password}
        ) as r:
            token = (await _json(r))["token"]
        auth = {"Authorization": f"Bearer {token}"}
        async with http.get("/api/v1/inboxes", headers=auth) as r:
            inboxes = (await _json(r))["items"]
        match = [i for i in inboxes if args.inbox in (i["id"], i["name"])]
        if not match:
            names = ", ".join(i["name"] for i in inboxes)
            print(f"no inbox {args.inbox!r}; there are: {names}", file=sys.stderr)
            return 2
        inbox = match[0]
        jobs: dict[str, str] = {}
        for path in args.files:
            params = {"inbox_id": inbox["id"], "filename": path.name}
            if args.kind:
                params["kind"] = args.kind
            with path.open("rb") as f:
                async with http.post("/api/v1/imports", params=params, data=f, headers=auth) as r:
                    job = await _json(r)
            jobs[job["id"]] = path.name
            print(
                f"{path.name}: import {job['id']} queued ({job['kind']}, {job['size_bytes']} bytes)"
            )
        failed = False
        pending = dict(jobs)
        while pending:
            await asyncio.sleep(args.interval)
            for job_id, name in list(pending.items()):
                async with http.get(f"/api/v1/imports/{job_id}", headers=auth) as r:
                    job = await _json(r)
                print(_line(name, job), flush=True)
                if job["state"] in ("done", "failed"):
                    del pending[job_id]
                    failed |= job["state"] == "failed"
                    for f in job["failures"][:20]:
                        print(f"  #{f['index']} {f['name']}: {f['problem']}")
                    if job["error"]:
                        print(f"  error: {job['error']}")
    return 1 if failed else 0


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--inbox", required=True, help="the inbox's name or id")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="the gateway")
    p.add_argument("--login", default="admin@demo.example")
    p.add_argument("--kind", choices=["eml", "mbox", "zip"], help="default: detected")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between progress lines")
    args = p.parse_args()
    for f in args.files:
        if not f.is_file():
            p.error(f"no such file: {f}")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
