"""headroom_core.certs and the `headroom certs` text, without a proxy."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from headroom_core import certs, cli_tools
from headroom_core.settings import Settings


def test_ca_is_created_once_with_private_key_owner_only(tmp_path):
    info = certs.ca_info(tmp_path / "ca")
    assert info.path == tmp_path / "ca" / "mitmproxy-ca-cert.pem"
    for name in certs.CA_KEY_FILES:
        assert stat.S_IMODE((tmp_path / "ca" / name).stat().st_mode) == 0o600
    key_file = tmp_path / "ca" / "mitmproxy-ca.pem"
    assert b"PRIVATE KEY" in key_file.read_bytes()
    assert b"PRIVATE KEY" not in info.path.read_bytes()
    # a second call reuses the CA; a loosened key mode is tightened again
    key_file.chmod(0o644)
    again = certs.ca_info(tmp_path / "ca")
    assert again == info
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_fingerprint_matches_cryptography(tmp_path):
    info = certs.ca_info(tmp_path)
    cert = x509.load_pem_x509_certificate(info.path.read_bytes())
    expected = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    assert info.sha256.replace(":", "") == expected
    assert len(info.sha256.split(":")) == 32


def test_combined_bundle_is_system_roots_plus_our_ca(tmp_path):
    info = certs.ca_info(tmp_path)
    bundle = Path(certs.combined_bundle(info.path))
    text = bundle.read_text()
    assert text.endswith(info.path.read_text())
    roots = certs.system_roots()
    assert roots and text.startswith(roots.rstrip("\n"))
    loaded = x509.load_pem_x509_certificates(bundle.read_bytes())
    assert len(loaded) > 50  # the public roots are still there
    mtime = bundle.stat().st_mtime_ns
    certs.combined_bundle(info.path)
    assert bundle.stat().st_mtime_ns == mtime  # unchanged content: not rewritten


def test_ca_dir_precedence(tmp_path):
    assert certs.ca_dir(Settings(data_dir=str(tmp_path))) == tmp_path / "certs"
    checkout = certs.checkout_certs_dir()
    assert checkout is not None and (checkout / "README.md").is_file()  # tests run in a checkout
    assert certs.ca_dir(Settings()) == checkout


def test_env_for_proxy(tmp_path):
    env = certs.env_for_proxy(8123, tmp_path)
    assert env["HTTPS_PROXY"] == env["https_proxy"] == "http://127.0.0.1:8123"
    assert env["NODE_EXTRA_CA_CERTS"] == str(tmp_path / "mitmproxy-ca-cert.pem")
    assert env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == env["CURL_CA_BUNDLE"] \
        == str(tmp_path / certs.BUNDLE_FILE)


def test_certs_text_is_shell_lines(tmp_path):
    text = cli_tools.certs_text(Settings(forward_port=8099), tmp_path / "my ca")
    info = certs.ca_info(tmp_path / "my ca")
    assert info.sha256 in text and str(info.path) in text
    code = [line for line in text.splitlines() if not line.startswith("#")]
    assert code and all(line.startswith("export ") for line in code)
    assert "export HTTPS_PROXY=http://127.0.0.1:8099" in code
    assert f"export NODE_EXTRA_CA_CERTS='{info.path}'" in code  # quoted: the path has a space


def test_forward_mode_args(tmp_path):
    assert cli_tools.forward_mode_args(Settings()) == []
    args = cli_tools.forward_mode_args(Settings(forward=True, forward_port=8181), tmp_path)
    assert args == ["--mode", "regular@127.0.0.1:8181", "--set", f"confdir={tmp_path}"]
    assert (tmp_path / "mitmproxy-ca-cert.pem").is_file()
    v6 = cli_tools.forward_mode_args(Settings(forward=True, host="::1"), tmp_path)
    assert v6[:2] == ["--mode", "regular@8080"]


@pytest.mark.parametrize("host, expected", [("0.0.0.0", "127.0.0.1"), ("10.1.2.3", "10.1.2.3")])
def test_proxy_host(host, expected):
    assert cli_tools.proxy_host(Settings(host=host)) == expected
