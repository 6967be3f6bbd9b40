"""Real TLS material for the Kafka security tests, made with the ``openssl`` binary: a CA,
a server certificate for ``localhost`` and 127.0.0.1 signed by it, and a client
certificate whose key is encrypted with a password."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

KEY_PASSWORD = "key-pass-4e1d"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Paths of the PEM files; the client key is encrypted with :data:`KEY_PASSWORD`."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    tool = shutil.which("openssl")
    assert tool, "openssl missing (Debian package openssl)"
    subprocess.run([tool, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_tls_files(folder: Path) -> TlsFiles:
    """Write a CA, a server and a client certificate into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    days = ("-days", "2")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-subj", "/CN=slawatch test CA", *days, cwd=folder,
    )  # fmt: skip
    (folder / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    (folder / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, extra in (("server", ()), ("client", ("-passout", f"pass:{KEY_PASSWORD}"))):
        encryption = () if extra else ("-nodes",)
        _openssl(
            "req", "-newkey", "rsa:2048", *encryption, *extra, "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN=slawatch test {name}", cwd=folder,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-extfile", f"{name}.ext", *days,
            cwd=folder,
        )  # fmt: skip
    return TlsFiles(
        ca_cert=folder / "ca.pem",
        ca_key=folder / "ca.key",
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        client_cert=folder / "client.pem",
        client_key=folder / "client.key",
    )
