"""A private OpenLDAP server for a test: its own slapd.conf, port and database folder (never the system one)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support import procs
from tests.support.broker import free_port, wait_port

SUFFIX = "dc=pocsync,dc=example"
ROOT_DN = f"cn=admin,{SUFFIX}"
SCHEMA = Path("/etc/ldap/schema")


def slapd_exe() -> str | None:
    exe = shutil.which("slapd") or "/usr/sbin/slapd"
    return exe if Path(exe).exists() else None


class Slapd:
    def __init__(
        self,
        base: Path,
        *,
        password: str = "example-admin-secret",
        tls: tuple[Path, Path] | None = None,
        syncprov: bool = False,
    ) -> None:
        self.base = base
        (base / "db").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.password = password
        self.exe = slapd_exe() or "slapd"
        self.conf = base / "slapd.conf"
        self.log = base / "slapd.log"
        modules = "/usr/lib/ldap" if Path("/usr/lib/ldap").exists() else "/usr/lib/x86_64-linux-gnu/ldap"
        tls_lines = f"TLSCertificateFile {tls[0]}\nTLSCertificateKeyFile {tls[1]}\n" if tls else ""
        self.conf.write_text(  # global directives (includes, TLS) before the database section
            "".join(f"include {SCHEMA}/{s}.schema\n" for s in ("core", "cosine", "inetorgperson"))
            + tls_lines
            + f"pidfile {base}/slapd.pid\nargsfile {base}/slapd.args\nmodulepath {modules}\nmoduleload back_mdb\n"
            + ("moduleload syncprov\n" if syncprov else "")
            + f'database mdb\nsuffix "{SUFFIX}"\nrootdn "{ROOT_DN}"\nrootpw {password}\n'
            f"directory {base}/db\nmaxsize 10485760\n"
            + ("index entryCSN,entryUUID eq\noverlay syncprov\n" if syncprov else "")
        )
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def start(self) -> Slapd:
        with self.log.open("wb") as log:
            urls = f"{self.url}/" + (f" ldaps://127.0.0.1:{self.tls_port}/" if self.tls_port else "")
            self.proc = subprocess.Popen(
                [self.exe, "-f", str(self.conf), "-h", urls, "-d", "0"], stdout=log, stderr=subprocess.STDOUT
            )
        if not wait_port(self.port, timeout=20):
            self.stop()
            raise RuntimeError(f"slapd did not start on port {self.port}:\n{self.log.read_text()}")
        return self

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    def ldapadd(self, ldif: bytes, *, modify: bool = False) -> None:
        """Load LDIF with the real ldapadd/ldapmodify (ldap-utils), bound as the root DN."""
        tool = "ldapmodify" if modify else "ldapadd"
        subprocess.run(
            [tool, "-x", "-H", self.url, "-D", ROOT_DN, "-w", self.password],
            input=ldif,
            check=True,
            capture_output=True,
            timeout=30,
        )

    def stop(self) -> None:
        procs.terminate(self.proc, timeout=10)
        self.proc = None
