"""The project CA: where it lives, its fingerprint, and the trust settings a client needs.

The CA is mitmproxy's own: its configuration directory ("confdir") holds `mitmproxy-ca.pem`
(private key + certificate) and `mitmproxy-ca-cert.pem` (certificate only). Where that directory
is, in order:

1. `<data_dir>/certs` when the data directory was set explicitly (flag or HEADROOM_DATA_DIR), so
   a test or a second instance keeps its CA with the rest of its state;
2. `<repo>/certs` when headroom runs from a checkout (the folder beside `pyproject.toml`);
3. `~/.headroom/certs` otherwise (an installed wheel).

This module never imports mitmproxy (DESIGN.md): the CA is created by mitmproxy's confdir
mechanism in a child Python process, exactly as a proxy start would create it.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .settings import DEFAULT_DATA_DIR, Settings

CA_BASENAME = "mitmproxy"  # mitmproxy's CONF_BASENAME: the file names it reads and writes
CA_CERT_FILE = f"{CA_BASENAME}-ca-cert.pem"
CA_KEY_FILES = (f"{CA_BASENAME}-ca.pem", f"{CA_BASENAME}-ca.p12")  # hold the private key
BUNDLE_FILE = "headroom-ca-bundle.pem"
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

_REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class CAInfo:
    """The project CA's certificate file and its SHA-256 fingerprint (colon-separated hex)."""

    path: Path
    sha256: str


def checkout_certs_dir() -> Path | None:
    """`<repo>/certs` when this package runs from a source checkout, else None."""
    if (_REPO_ROOT / "pyproject.toml").is_file() and (_REPO_ROOT / "certs" / "README.md").is_file():
        return _REPO_ROOT / "certs"
    return None


def ca_dir(settings: Settings) -> Path:
    """The CA directory for these settings (see the module docstring for the order)."""
    if settings.data_dir != DEFAULT_DATA_DIR:
        return settings.data_path / "certs"
    return checkout_certs_dir() or settings.data_path / "certs"


def ensure_ca(confdir: Path) -> Path:
    """Create the CA in `confdir` if it is missing (via mitmproxy, in a child process).

    Returns the certificate file. Private-key files are made owner-only (0600) every time,
    in case the directory was copied or created under a loose umask.
    """
    confdir = Path(confdir)
    cert = confdir / CA_CERT_FILE
    if not cert.is_file():
        confdir.mkdir(parents=True, exist_ok=True)
        code = (
            "import sys; from mitmproxy.certs import CertStore; "
            f"CertStore.from_store(sys.argv[1], {CA_BASENAME!r}, 2048)"
        )
        done = subprocess.run([sys.executable, "-c", code, str(confdir)],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0 or not cert.is_file():
            raise RuntimeError(f"could not create the CA in {confdir}: {done.stderr.strip()[-500:]}")
    protect_keys(confdir)
    return cert


def protect_keys(confdir: Path) -> None:
    """chmod 0600 every file of `confdir` that holds the CA's private key."""
    for name in CA_KEY_FILES:
        path = Path(confdir) / name
        if path.exists():
            os.chmod(path, 0o600)


def fingerprint(pem: str) -> str:
    """SHA-256 of the first certificate's DER bytes, as `AB:CD:...` (what browsers show)."""
    start = pem.index("-----BEGIN CERTIFICATE-----")
    end = pem.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----")
    der = ssl.PEM_cert_to_DER_cert(pem[start:end])
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def ca_info(confdir: Path) -> CAInfo:
    """Path and fingerprint of the CA in `confdir`, creating the CA on first use."""
    cert = ensure_ca(confdir)
    return CAInfo(path=cert, sha256=fingerprint(cert.read_text()))


def system_roots() -> str:
    """The PEM text of the usual public roots: certifi's if importable, else the OS bundle."""
    try:
        import certifi
    except ImportError:
        certifi = None  # type: ignore[assignment]
    if certifi is not None:
        return Path(certifi.where()).read_text()
    if SYSTEM_BUNDLE.is_file():
        return SYSTEM_BUNDLE.read_text()
    return ""


def combined_bundle(ca_cert: Path) -> str:
    """Write system roots + the CA in `ca_cert` to a bundle beside it; return the bundle's path.

    SSL_CERT_FILE and REQUESTS_CA_BUNDLE *replace* a client's trust store rather than adding
    to it, so a file with our CA alone would break every other HTTPS host the tool talks to.
    The file is rewritten only when its content would change (several processes may ask).
    """
    ca_cert = Path(ca_cert)
    path = ca_cert.parent / BUNDLE_FILE
    ca = ca_cert.read_text()
    roots = system_roots()
    text = roots.rstrip("\n") + "\n\n# headroom project CA\n" + ca if roots else ca
    if not path.is_file() or path.read_text() != text:
        tmp = path.with_name(f".{BUNDLE_FILE}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return str(path)


def env_for_proxy(port: int, confdir: Path, host: str = "127.0.0.1") -> dict[str, str]:
    """Environment that routes a tool through the forward proxy and makes it trust our CA.

    Upper- and lower-case proxy names both, since tools disagree about which they read.
    """
    info = ca_info(confdir)
    bundle = combined_bundle(info.path)
    proxy = f"http://{host}:{port}"
    return {
        "HTTPS_PROXY": proxy,
        "https_proxy": proxy,
        "NODE_EXTRA_CA_CERTS": str(info.path),  # Node adds this file to its built-in roots
        "SSL_CERT_FILE": bundle,  # Python ssl/httpx, OpenSSL-based tools
        "REQUESTS_CA_BUNDLE": bundle,  # requests ignores SSL_CERT_FILE
        "CURL_CA_BUNDLE": bundle,  # curl
    }
