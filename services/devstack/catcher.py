"""`make run`'s outgoing mail catcher: an SMTP server (aiosmtpd) on this machine that the
local outbound service relays through, keeping every mail it is given as a .eml file in
`.data/outgoing/` instead of delivering it anywhere."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


class _Keep:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.count += 1
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{self.count:05d}.eml"
        data = envelope.original_content or b""
        (self.folder / name).write_bytes(data)
        return "250 kept in .data/outgoing"


class MailCatcher:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        handler = _Keep(self.folder)
        loop = asyncio.get_running_loop()

        def factory() -> Any:
            return SMTP(handler, hostname="catcher.localhost", ident="switchboard catcher")

        self._server = await loop.create_server(factory, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
