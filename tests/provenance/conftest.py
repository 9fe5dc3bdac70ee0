"""C2PA fixtures: a throwaway certificate chain made here, the shipped ``small`` kit, isolation.

The chain is built with ``cryptography`` directly, not with advsig's dev-chain code, so the
tests check that advsig accepts a chain it did not make: root CA -> intermediate CA -> leaf
(the dev chain has no intermediate), its key in SEC1 rather than PKCS#8 form. The leaf's
extended key usage is ``emailProtection``: c2pa-python 0.38.1 (c2pa-rs 0.91.3) refuses
``documentSigning`` and C2PA's own claim-signing OID with "certificate missing required EKU"
(measured; ``timeStamping`` passes too), which ``test_certs`` pins down.

Why ``small``: it loads instantly and really detects on 96 px photos (every bit right on
lossless copies of the six embedded photos, measured), so recovery from the pixels is real.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from advsig.cli import app as cli_app

EMAIL_PROTECTION = "1.3.6.1.5.5.7.3.4"
DOCUMENT_SIGNING = "1.3.6.1.5.5.7.3.36"  # id-kp-documentSigning (RFC 9336)


@dataclass(frozen=True)
class ChainFiles:
    chain: Path  # leaf, intermediate, root
    key: Path
    root: Path
    other_key: Path  # a key that belongs to none of the certificates


def _write_chain(folder: Path, *, eku: str = EMAIL_PROTECTION) -> ChainFiles:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID, ObjectIdentifier

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def usage(*, ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
            encipher_only=False, decipher_only=False,
        )  # fmt: skip

    def cert(subject, issuer, key, issuer_key, *, ca: bool, eku=None):
        b = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(usage(ca=ca), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
            )
        )
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage([ObjectIdentifier(eku)]), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    root_key, mid_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = cert("test root", "test root", root_key, root_key, ca=True)
    mid = cert("test intermediate", "test root", mid_key, root_key, ca=True)
    leaf = cert("test signer", "test intermediate", leaf_key, mid_key, ca=False, eku=eku)
    pem = serialization.Encoding.PEM

    def key_pem(k) -> bytes:
        return k.private_bytes(
            pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )  # SEC1 "EC PRIVATE KEY": advsig hands c2pa PKCS#8 whatever it is given

    folder.mkdir(parents=True, exist_ok=True)
    files = ChainFiles(
        folder / "chain.pem", folder / "key.pem", folder / "root.pem", folder / "other.pem"
    )
    files.chain.write_bytes(b"".join(c.public_bytes(pem) for c in (leaf, mid, root)))
    files.key.write_bytes(key_pem(leaf_key))
    files.key.chmod(0o600)
    files.root.write_bytes(root.public_bytes(pem))
    files.other_key.write_bytes(key_pem(ec.generate_private_key(ec.SECP256R1())))
    files.other_key.chmod(0o600)
    return files


@pytest.fixture(scope="session")
def chain_files(tmp_path_factory: pytest.TempPathFactory) -> ChainFiles:
    return _write_chain(tmp_path_factory.mktemp("c2pa-chain"))


@pytest.fixture(scope="session")
def document_signing_chain(tmp_path_factory: pytest.TempPathFactory) -> ChainFiles:
    """A well-formed chain whose leaf has only the documentSigning EKU (c2pa refuses it)."""
    return _write_chain(tmp_path_factory.mktemp("c2pa-docsign"), eku=DOCUMENT_SIGNING)


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own user data folder and no ambient registry URL."""
    data = tmp_path / "data"
    monkeypatch.setenv("ADVSIG_DATA_DIR", str(data))
    monkeypatch.delenv("ADVSIG_DB", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return data


@pytest.fixture(scope="session")
def small_kit():
    from advsig.kit import Kit

    return Kit.from_pretrained("small")


@pytest.fixture(scope="session")
def cli():
    """Run ``advsig ARGS...`` in-process; returns typer's result (stdout and stderr apart)."""
    if not cli_app.app.registered_commands:
        cli_app._register()
    runner = CliRunner()

    def invoke(*args: str | Path):
        return runner.invoke(cli_app.app, [str(a) for a in args], terminal_width=200)

    return invoke
