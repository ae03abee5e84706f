"""`python -m services.devstack run` (what `make run` calls)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

from services.runtime.secrets import new_key
from services.runtime.service import run as run_main

from .catcher import MailCatcher
from .demo import send_demo_mails
from .demo_chat import seed_demo_chat
from .infra import free_port
from .line_peer import LinePeer
from .stack import ROOT, START_ORDER, Stack, StackConfig

DEFAULT_DEMO_PASSWORD = "switchboard-demo"


async def run_stack() -> int:
    password = os.environ.get("SB_DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD
    catcher = MailCatcher(ROOT / ".data" / "outgoing", free_port())
    # LINE channels talk to a local stand-in for LINE's Messaging API (issue 21)
    line = LinePeer(port=free_port(), echo=True)
    config = StackConfig(
        smtp_relay=("127.0.0.1", catcher.port),
        # this machine's servers (the catcher, a local IMAP server) may be used as routes
        # and mailboxes by the demo's administrators; a deployment allows none by default
        connect_allow=os.environ.get("SB_CONNECT_ALLOW", "127.0.0.1,::1,localhost"),
        secret_key=os.environ.get("SB_SECRET_KEY") or _local_secret_key(ROOT / ".data"),
        data_dir=ROOT / ".data",
        demo_password=password,
        database_url=os.environ.get("SB_DATABASE_URL") or None,
        nats_url=os.environ.get("SB_NATS_URL") or None,
        redis_url=os.environ.get("SB_REDIS_URL") or None,
        log_level=os.environ.get("SB_LOG_LEVEL") or "info",
        extra_env={"ingestion": {"SB_LINE_API_URL": line.url, "SB_LINE_DATA_URL": line.url}},
    )
    stack = Stack(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("switchboard: starting PostgreSQL, NATS and Redis (data in ./.data)", flush=True)
    try:
        await catcher.start()
        await line.start()
        await stack.start_infra()
        await stack.seed()
        print("switchboard: starting services", flush=True)
        await stack.start_services()
        await stack.wait_healthy(timeout=90)
        marker = config.data_dir / "demo-mails-sent"
        if not marker.exists():
            count = await asyncio.to_thread(send_demo_mails, stack.smtp_port)
            marker.write_text(f"{count}\n")
        chat_key = ""
        try:
            chat_key = await asyncio.to_thread(
                seed_demo_chat, stack.gateway_url, password, config.data_dir / "demo-chat-widget"
            )
        except Exception as exc:  # the rest of the demo works without it
            print(f"switchboard: no demo chat widget: {exc}", file=sys.stderr, flush=True)
        _banner(stack, password, line, chat_key)
        await _supervise(stack, stop)
    except Exception as exc:
        print(f"switchboard: failed to start: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        print("switchboard: stopping", flush=True)
        await asyncio.to_thread(stack.stop)
        await catcher.stop()
        await line.stop()
        print("switchboard: stopped", flush=True)
    return 0


def _local_secret_key(data_dir: Path) -> str:
    """The key that encrypts intake credentials, made once and kept with the data."""
    path = data_dir / "secret.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(new_key() + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


async def _supervise(stack: Stack, stop: asyncio.Event) -> None:
    """Restart a service that dies (with a pause), until Ctrl-C."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        except TimeoutError:
            pass
        if stop.is_set():
            return
        for name in START_ORDER:
            proc = stack.procs.get(name)
            if proc is not None and proc.poll() is not None:
                print(f"switchboard: {name} exited ({proc.returncode}); restarting", flush=True)
                await asyncio.sleep(1)
                stack.start_process(name)


def _banner(stack: Stack, password: str, line: LinePeer, chat_key: str = "") -> None:
    shown = password if password == DEFAULT_DEMO_PASSWORD else "(the value of SB_DEMO_PASSWORD)"
    chat = f"{stack.gateway_url}/widget-demo/{chat_key}" if chat_key else "(not set up)"
    print(
        f"""
  Switchboard is running.

  Gateway      {stack.gateway_url}   (health: {stack.gateway_url}/healthz)
  API          {stack.gateway_url}/api/v1/openapi.yaml
  SMTP intake  127.0.0.1:{stack.smtp_port}  → support@demo.example, sales@demo.example
  Sent mail    kept in .data/outgoing/ (a local catcher stands in for the internet)
  LINE         a local peer stands in for LINE's API at {line.url} (access token
               {line.token}); replies to LINE customers are printed here.
               A customer's message: python -m services.devstack.line_peer send
               --url {stack.gateway_url}/hooks/line/<public key> --secret <channel secret>
  Web chat     {chat}   (a visitor's page with the widget)
  Metrics      {_metrics_ports(stack)}

  Logins       admin@demo.example, agent1@demo.example, agent2@demo.example,
               trainee@demo.example, supervisor@demo.example   password: {shown}

  Try:  curl -s -X POST {stack.gateway_url}/api/v1/sessions \\
          -H 'Content-Type: application/json' \\
          -d '{{"login":"agent1@demo.example","password":"{shown}"}}'

  Ctrl-C stops everything.
""",
        flush=True,
    )


def _metrics_ports(stack: Stack) -> str:
    """`curl 127.0.0.1:<port>/metrics`: each process's port, in start order."""
    ports = stack.config.ports.metrics
    text = "http://127.0.0.1:<port>/metrics: " + ", ".join(f"{n} {ports[n]}" for n in START_ORDER)
    return textwrap.fill(text, width=88, initial_indent="", subsequent_indent=" " * 15)


def main() -> None:
    if sys.argv[1:] != ["run"]:
        print("usage: python -m services.devstack run", file=sys.stderr)
        sys.exit(2)
    run_main(run_stack)


main()
