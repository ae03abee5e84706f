"""A real Dovecot (Debian's dovecot-imapd) for the IMAP tests: a throw-away configuration
on free ports, users in a passwd file, Maildir under a temporary folder. Optionally TLS
(imaps and STARTTLS with a self-signed certificate) and optionally without IDLE (so the
polling path is exercised)."""

from __future__ import annotations

import datetime as dt
import imaplib
import ipaddress
import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from services.devstack.infra import free_port, port_in_use

MAIL_USER = "sbmail"


def _ensure_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(name)


def self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Dovecot:
    base: Path
    idle: bool = True
    tls: bool = False
    users: dict[str, str] = field(default_factory=lambda: {"support": "imap-secret"})
    port: int = 0
    tls_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    cert: Path | None = None
    cert_pair: tuple[Path, Path] | None = None
    oauth2_introspection_url: str = ""  # when set: XOAUTH2/OAUTHBEARER through this URL
    _mtime: int = 0

    def start(self) -> Dovecot:
        if shutil.which("dovecot") is None:
            raise RuntimeError("dovecot is not installed (apt-get install dovecot-imapd)")
        user = _ensure_user(MAIL_USER)
        self.base.mkdir(parents=True, exist_ok=True)
        for parent in [self.base, *self.base.parents]:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if not mode & 0o001:
                os.chmod(parent, mode | 0o011)
        home = self.base / "home"
        home.mkdir(exist_ok=True)
        shutil.chown(home, user.pw_uid, user.pw_gid)
        (self.base / "passwd").write_text(
            "".join(f"{u}:{{PLAIN}}{p}\n" for u, p in self.users.items())
        )
        self.port = free_port()
        ssl_lines = "ssl = no"
        if self.tls:
            self.cert, key = self.cert_pair or self_signed(self.base)
            self.tls_port = free_port()
            ssl_lines = f"ssl = yes\nssl_cert = <{self.cert}\nssl_key = <{key}"
        oauth = ""
        mechanisms = "plain login"
        if self.oauth2_introspection_url:
            (self.base / "oauth2.conf.ext").write_text(
                "introspection_mode = post\n"
                f"introspection_url = {self.oauth2_introspection_url}\n"
                "username_attribute = username\n"
                "active_attribute = active\n"
                "active_value = true\n"
                "force_introspection = yes\n"
            )
            mechanisms += " xoauth2 oauthbearer"
            oauth = (
                "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                f"  args = {self.base}/oauth2.conf.ext\n}}\n"
            )
        capability = ""
        if not self.idle:
            capability = (
                "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ "
                "UIDPLUS MOVE NAMESPACE UNSELECT"
            )
        conf = f"""
protocols = imap
listen = 127.0.0.1
base_dir = {self.base}/run
state_dir = {self.base}/state
log_path = {self.base}/dovecot.log
{ssl_lines}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
{capability}
{oauth}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.base}/passwd
}}
userdb {{
  driver = static
  args = uid={user.pw_uid} gid={user.pw_gid} home={home}/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = {self.tls_port}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""
        (self.base / "dovecot.conf").write_text(conf)
        (self.base / "state").mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            ["dovecot", "-F", "-c", str(self.base / "dovecot.conf")],
            stdout=open(self.base / "out.log", "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while not port_in_use(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("dovecot did not start:\n" + self.log())
            time.sleep(0.05)
        return self

    def log(self) -> str:
        parts = []
        for name in ("out.log", "dovecot.log"):
            p = self.base / name
            if p.exists():
                parts.append(p.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def cut_connections(self) -> None:
        """Kill the IMAP worker processes: every client connection drops mid-command."""
        subprocess.run(
            ["pkill", "-9", "-f", f"dovecot/imap .*{self.base.name}|dovecot/imap$"], check=False
        )

    def add_user(self, name: str, password: str) -> None:
        """Dovecot reads the passwd file at every login: a new user works at once."""
        self.users[name] = password
        path = self.base / "passwd"
        with open(path, "a") as f:
            f.write(f"{name}:{{PLAIN}}{password}\n")
        # Dovecot re-reads the file when its mtime changes; two users added within one
        # second would share an mtime, so move it forward by a whole second every time.
        self._mtime = max(self._mtime + 1, int(time.time()))
        os.utime(path, (self._mtime, self._mtime))
        deadline = time.monotonic() + 15  # and it may take it a moment: wait until it works
        while True:
            try:
                self.client(name).logout()
                return
            except imaplib.IMAP4.error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    # -- a mail client, as a customer's server would be filled ------------------------

    def client(self, user: str = "support") -> imaplib.IMAP4:
        m = imaplib.IMAP4("127.0.0.1", self.port)
        m.login(user, self.users[user])
        return m

    def append(self, raw: bytes, user: str = "support", folder: str = "INBOX") -> None:
        m = self.client(user)
        try:
            if folder != "INBOX":
                m.create(folder)
            typ, data = m.append(folder, None, None, raw)
            assert typ == "OK", data
        finally:
            m.logout()

    def flags(self, user: str = "support", folder: str = "INBOX") -> dict[int, str]:
        m = self.client(user)
        try:
            m.select(folder)
            _typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
            out: dict[int, str] = {}
            for line in data:
                if not line:
                    continue
                text = line.decode() if isinstance(line, bytes) else str(line)
                uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
                out[uid] = text.split("FLAGS (")[1].split(")")[0]
            return out
        finally:
            m.logout()

    def count(self, user: str = "support", folder: str = "INBOX") -> int:
        m = self.client(user)
        try:
            _typ, data = m.select(folder)
            return int(data[0])
        finally:
            m.logout()
