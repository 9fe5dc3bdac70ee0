"""Signing credentials: the development chain is made once and kept private; user chains are
checked before c2pa sees them."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from advsig.errors import ProvenanceError
from advsig.provenance import certs
from advsig.provenance.certs import (
    create_dev_chain,
    dev_chain_paths,
    ensure_dev_chain,
    load_credentials,
    resolve_credentials,
)


def test_dev_chain_is_created_once_under_the_env_data_dir(
    isolated_data_dir: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(certs, "_warned_dev", False)
    with caplog.at_level(logging.WARNING, logger="advsig.provenance.certs"):
        first = resolve_credentials()
    paths = dev_chain_paths()
    assert paths.folder == isolated_data_dir / "c2pa-dev"
    assert first.development and first.alg == "es256"
    assert stat.S_IMODE(paths.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.folder.stat().st_mode) & 0o077 == 0
    assert "untrusted" in caplog.text and str(paths.ca) in caplog.text
    key_body = paths.key.read_text().splitlines()[1]
    assert key_body not in caplog.text and key_body not in repr(first)

    before = {p: p.read_bytes() for p in (paths.chain, paths.key, paths.ca)}
    mtimes = {p: p.stat().st_mtime_ns for p in before}
    second = resolve_credentials()
    assert second.chain_pem == first.chain_pem and second.key_pem == first.key_pem
    assert {p: p.read_bytes() for p in before} == before
    assert {p: p.stat().st_mtime_ns for p in before} == mtimes
    assert caplog.text.count("development certificate") == 1  # warned once per process


def test_a_chain_made_by_a_concurrent_process_is_reused(tmp_path: Path):
    """The loser of the rename race keeps the winner's chain, so chain and key always match."""
    winner = create_dev_chain(dev_chain_paths(tmp_path).folder)
    got = ensure_dev_chain(tmp_path)
    assert got.key.read_bytes() == winner.key.read_bytes()
    assert not list(tmp_path.glob(".c2pa-dev.tmp-*"))
    load_credentials(got.chain, got.key)  # still a matching pair


def test_an_incomplete_dev_folder_is_named(tmp_path: Path):
    dev_chain_paths(tmp_path).folder.mkdir(parents=True)
    (dev_chain_paths(tmp_path).folder / "stray.txt").write_text("x")
    with pytest.raises(ProvenanceError, match="c2pa-dev.*no complete development chain"):
        ensure_dev_chain(tmp_path)


def test_user_chain_is_loaded_as_pkcs8_with_its_algorithm(chain_files):
    creds = load_credentials(chain_files.chain, chain_files.key)
    assert creds.alg == "es256" and not creds.development
    assert creds.chain_pem.count("BEGIN CERTIFICATE") == 3
    assert creds.key_pem.startswith("-----BEGIN PRIVATE KEY-----")  # SEC1 input, PKCS#8 out
    assert "PRIVATE" not in repr(creds)


def test_credential_problems_name_the_file(chain_files, tmp_path: Path):
    with pytest.raises(ProvenanceError, match="does not belong"):
        load_credentials(chain_files.chain, chain_files.other_key)
    root_first = tmp_path / "root-first.pem"
    root_first.write_bytes(chain_files.root.read_bytes() + chain_files.chain.read_bytes())
    with pytest.raises(ProvenanceError, match="key.pem: .* first certificate of .*root-first"):
        load_credentials(root_first, chain_files.key)
    not_pem = tmp_path / "garbage.pem"
    not_pem.write_text("hello")
    with pytest.raises(ProvenanceError, match="garbage.pem: not a PEM certificate chain"):
        load_credentials(not_pem, chain_files.key)
    with pytest.raises(ProvenanceError, match="garbage.pem: not a PEM private key"):
        load_credentials(chain_files.chain, not_pem)
    with pytest.raises(ProvenanceError, match="give both"):
        resolve_credentials(chain_files.chain, None)


def test_a_ca_certificate_cannot_be_the_signer(tmp_path: Path):
    """A self-signed CA with its own key: the pair matches, so the CA check is what refuses."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (tmp_path / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "ca.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )  # fmt: skip
    )
    with pytest.raises(ProvenanceError, match="ca.pem: the first certificate is a CA"):
        load_credentials(tmp_path / "ca.pem", tmp_path / "ca.key")


def test_an_encrypted_key_is_refused_without_quoting_it(chain_files, tmp_path: Path):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(chain_files.key.read_bytes(), password=None)
    enc = tmp_path / "enc.pem"
    enc.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )  # fmt: skip
    )
    with pytest.raises(ProvenanceError, match="enc.pem: the private key is encrypted") as info:
        load_credentials(chain_files.chain, enc)
    assert "BEGIN" not in str(info.value)


def test_a_chain_c2pa_refuses_fails_once_up_front(document_signing_chain, small_kit):
    """Our checks pass (a matching leaf with digitalSignature); c2pa's EKU rule does not: the
    writer's probe signature turns that into one error before any image is written."""
    from advsig.provenance import ManifestSpec, ManifestWriter

    creds = load_credentials(document_signing_chain.chain, document_signing_chain.key)
    with pytest.raises(ProvenanceError, match="chain.pem: c2pa cannot sign .*EKU"):
        ManifestWriter(creds, ManifestSpec.for_kit(small_kit, "0001"))
