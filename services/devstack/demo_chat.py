"""The demo's web chat (issue 21, ING-6): once, through the gateway's API as the demo
administrator, an inquiry form for the support inbox (offered when nobody is present)
and a chat widget whose allowed origins include the gateway itself, so that its demo
visitor page (`/widget-demo/<public key>`) can open the chat under `make run`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

from services.runtime.demo import SUPPORT_INBOX


def _call(base: str, method: str, path: str, body: Any, token: str = "") -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = Request(base + path, data=json.dumps(body).encode(), headers=headers, method=method)
    with urlopen(req, timeout=30) as resp:  # the local gateway
        return json.loads(resp.read() or b"null")


def seed_demo_chat(gateway_url: str, password: str, marker: Path) -> str:
    """The demo widget's public key (made the first time, then read from `marker`)."""
    if marker.exists():
        return marker.read_text().strip()
    token = _call(
        gateway_url,
        "POST",
        "/api/v1/sessions",
        {"login": "admin@demo.example", "password": password},
    )["token"]
    form = _call(
        gateway_url,
        "POST",
        "/api/v1/forms",
        {"inbox_id": str(SUPPORT_INBOX), "name": "Chat offline form"},
        token,
    )
    origins = sorted({gateway_url, gateway_url.replace("127.0.0.1", "localhost")})
    channel = _call(
        gateway_url,
        "POST",
        "/api/v1/channels",
        {
            "kind": "chat",
            "inbox_id": str(SUPPORT_INBOX),
            "name": "Support chat",
            "chat": {
                "allowed_origins": origins,
                "colour": "#0b57d0",
                "greeting_ja": "こんにちは。サポートチームです。ご用件をどうぞ。",
                "greeting_en": "Hello! This is the support team. How can we help?",
                "offline_form_id": form["id"],
                "position": "right",
            },
        },
        token,
    )
    key = str(channel["public_key"])
    marker.write_text(key + "\n")
    return key
