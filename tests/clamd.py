"""A real clamd (Debian's clamav-daemon) for the virus-scan tests: a throw-away
configuration on a free TCP port, and a signature database this file writes itself — the
EICAR test file's MD5 as an .hdb — since virus definitions cannot be downloaded here (no
freshclam). It can be stopped and started again on the same port."""

from __future__ import annotations

import base64
import hashlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from services.devstack.infra import free_port, spawn, stop_process

# The EICAR anti-virus test file (68 bytes), kept encoded so that no scanner on a
# developer's machine takes this source file for it.
EICAR = base64.b64decode(
    "WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNULUZJTEUhJEgrSCo="
)
SIGNATURE = "Eicar-Test-Signature"  # clamd reports it as "Eicar-Test-Signature.UNOFFICIAL"


def ping(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"zPING\0")
            return s.recv(16) == b"PONG\0"
    except OSError:
        return False


@dataclass
class Clamd:
    base: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Clamd:
        binary = shutil.which("clamd") or "/usr/sbin/clamd"
        if not Path(binary).exists():
            raise RuntimeError("clamd is not installed (apt-get install clamav-daemon)")
        db = self.base / "db"
        db.mkdir(parents=True, exist_ok=True)
        (db / "eicar.hdb").write_text(
            f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:{SIGNATURE}\n"
        )
        self.port = self.port or free_port()
        conf = self.base / "clamd.conf"
        conf.write_text(
            "Foreground yes\n"
            f"DatabaseDirectory {db}\n"
            f"TCPSocket {self.port}\n"
            "TCPAddr 127.0.0.1\n"
            f"LogFile {self.base / 'clamd.log'}\n"
            f"TemporaryDirectory {self.base}\n"
        )
        self.proc = spawn([binary, "-c", str(conf)], log=open(self.base / "out.log", "ab"))
        deadline = time.monotonic() + 60
        while not ping(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("clamd did not start:\n" + self.log())
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=20)

    def log(self) -> str:
        return "\n".join(
            (self.base / name).read_text(errors="replace")[-3000:]
            for name in ("out.log", "clamd.log")
            if (self.base / name).exists()
        )
