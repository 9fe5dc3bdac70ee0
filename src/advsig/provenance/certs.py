"""Signing credentials for C2PA manifests: a user's certificate chain and key, or a dev chain.

C2PA readers check the claim signature against the certificate chain embedded in the manifest,
and check that chain against their own trust list. A certificate from a public C2PA CA makes
the manifest "trusted" everywhere; without one, advsig creates a development chain (a root CA
and a leaf it issued) once per user, so that ``advsig sign --c2pa`` works out of the box. Every
reader reports such manifests as valid but untrusted, unless told to trust the dev root
(``advsig detect --c2pa-trust <data dir>/c2pa-dev/ca.pem``).

What c2pa-rs requires of the leaf, and so what :func:`create_dev_chain` writes and
:func:`load_credentials` checks: not a CA, the ``digitalSignature`` key usage, an extended key
usage from the C2PA list (``emailProtection`` here), and the issuing chain after it in the PEM.

The private key is kept only in ``key.pem`` (mode 0600 in a 0700 folder) and in memory; it is
never logged, never put in a config file, and :class:`SigningCredentials` leaves it out of its
``repr``.
"""

from __future__ import annotations

import datetime
import logging
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from advsig.errors import ProvenanceError
from advsig.utils import user_data_dir

logger = logging.getLogger(__name__)

DEV_DIR_NAME = "c2pa-dev"
CHAIN_NAME = "chain.pem"  # leaf first, then the root that issued it
CA_NAME = "ca.pem"  # the dev root alone: what a reader may add to its trust anchors
KEY_NAME = "key.pem"
DEV_LEAF_DAYS = 5 * 365
DEV_CA_DAYS = 10 * 365
DEV_ORGANIZATION = "advsig development (untrusted)"

_warned_dev = False


@dataclass(frozen=True)
class SigningCredentials:
    """A certificate chain and its private key, both PEM, ready for ``c2pa.Signer``.

    Attributes:
        chain_pem: leaf certificate first, then its issuers.
        key_pem: the leaf's private key as unencrypted PKCS#8 PEM (never shown in ``repr``).
        alg: the C2PA signing algorithm the key calls for: es256, es384, es512, ps256, ed25519.
        source: where the chain came from (a file path), for messages.
        development: True for the dev chain advsig made itself (readers will not trust it).
    """

    chain_pem: str
    key_pem: str = field(repr=False)
    alg: str = "es256"
    source: str = ""
    development: bool = False


@dataclass(frozen=True)
class DevChain:
    """Files of the development chain in the user data folder."""

    folder: Path
    chain: Path
    ca: Path
    key: Path


def dev_chain_paths(data_dir: str | Path | None = None) -> DevChain:
    """Where the development chain lives: ``<data dir>/c2pa-dev/{chain,ca,key}.pem``."""
    folder = Path(data_dir) if data_dir is not None else user_data_dir()
    folder = folder / DEV_DIR_NAME
    return DevChain(folder, folder / CHAIN_NAME, folder / CA_NAME, folder / KEY_NAME)


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORGANIZATION),
        ]
    )


def _key_usage(*, signing: bool, ca: bool):
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=signing, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


def create_dev_chain(folder: str | Path) -> DevChain:
    """Write a fresh ES256 root CA and leaf into ``folder`` (which must not exist yet).

    Why a root and a leaf rather than one self-signed certificate: c2pa-rs refuses a CA
    certificate as the signer, and a self-signed leaf has no issuer to anchor trust in.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    folder = Path(folder)
    now = datetime.datetime.now(datetime.timezone.utc)
    start = now - datetime.timedelta(days=1)  # tolerate clocks a little behind
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("advsig development root")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + datetime.timedelta(days=DEV_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signing=True, ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("advsig development signer"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + datetime.timedelta(days=DEV_LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signing=True, ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    folder.mkdir(mode=0o700, parents=True)
    paths = DevChain(folder, folder / CHAIN_NAME, folder / CA_NAME, folder / KEY_NAME)
    # The key file is created 0600 before a byte is written, so it is never readable by others.
    fd = os.open(paths.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    paths.chain.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    paths.ca.write_bytes(ca.public_bytes(pem))
    return paths


def ensure_dev_chain(data_dir: str | Path | None = None) -> DevChain:
    """The development chain, created on first use; later calls reuse it.

    Safe against concurrent first uses (several ``accelerate launch`` processes): each writes
    a complete chain into its own temporary folder and renames it into place; a process that
    loses the race discards its own and uses the winner's, so chain and key always match.
    """
    paths = dev_chain_paths(data_dir)
    if paths.key.is_file() and paths.chain.is_file():
        return paths
    paths.folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = paths.folder.with_name(f".{DEV_DIR_NAME}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        create_dev_chain(tmp)
        try:
            os.rename(tmp, paths.folder)
        except OSError:
            if not (paths.key.is_file() and paths.chain.is_file()):
                raise ProvenanceError(
                    f"{paths.folder} exists but holds no complete development chain "
                    f"({CHAIN_NAME} and {KEY_NAME}); remove it to have a new one made"
                ) from None
        else:
            logger.info("created a development C2PA certificate chain in %s", paths.folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return paths


def _algorithm(private_key, path: Path) -> str:
    """The C2PA signing algorithm for a private key (RSA keys sign with RSA-PSS, as C2PA asks)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        curves = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if private_key.curve.name in curves:
            return curves[private_key.curve.name]
        raise ProvenanceError(
            f"{path}: EC curve {private_key.curve.name!r} is not one C2PA signs with "
            f"(use P-256, P-384 or P-521)"
        )
    if isinstance(private_key, rsa.RSAPrivateKey):
        return "ps256"
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise ProvenanceError(f"{path}: a {type(private_key).__name__} cannot sign C2PA manifests")


def _check_leaf(leaf, path: Path) -> None:
    """Refuse leaves c2pa-rs would refuse, with a message that says which extension is wrong."""
    from cryptography import x509

    try:
        if leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise ProvenanceError(
                f"{path}: the first certificate is a CA; C2PA signs with a leaf issued by it "
                "(put the leaf first, then its issuers)"
            )
    except x509.ExtensionNotFound:
        pass
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.digital_signature:
        raise ProvenanceError(
            f"{path}: the signing certificate lacks the digitalSignature key usage"
        )


def _warn_if_exposed(path: Path) -> None:
    mode = path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "%s: private key is readable by other users (mode %o); chmod 600 it",
            path, stat.S_IMODE(mode),
        )  # fmt: skip


def load_credentials(cert: str | Path, key: str | Path) -> SigningCredentials:
    """Read a PEM certificate chain and its unencrypted PEM private key, and check they match.

    Raises :class:`ProvenanceError` naming the file for an unreadable or encrypted file, a key
    that does not belong to the first certificate, or a leaf that cannot sign C2PA claims.

    Example:
        >>> creds = load_credentials("signer-chain.pem", "signer-key.pem")
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert, key = Path(cert).expanduser(), Path(key).expanduser()
    try:
        chain_bytes = cert.read_bytes()
        key_bytes = key.read_bytes()
    except OSError as exc:
        raise ProvenanceError(f"cannot read C2PA credentials: {exc}") from None
    try:
        certs = x509.load_pem_x509_certificates(chain_bytes)
    except ValueError as exc:
        raise ProvenanceError(f"{cert}: not a PEM certificate chain ({exc})") from None
    try:
        private_key = serialization.load_pem_private_key(key_bytes, password=None)
    except TypeError:
        raise ProvenanceError(
            f"{key}: the private key is encrypted; give an unencrypted PEM key (mode 600)"
        ) from None
    except ValueError:
        # cryptography's message never quotes the key, but say only what is safe anyway.
        raise ProvenanceError(f"{key}: not a PEM private key") from None
    _warn_if_exposed(key)
    leaf = certs[0]
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if leaf.public_key().public_bytes(der, pub) != private_key.public_key().public_bytes(der, pub):
        raise ProvenanceError(f"{key}: this private key does not belong to the first "
                              f"certificate of {cert}")  # fmt: skip
    _check_leaf(leaf, cert)
    if len(certs) == 1:
        logger.warning(
            "%s holds only the signing certificate; add its issuing chain after it, or C2PA "
            "readers cannot build a path to a trust anchor", cert,
        )  # fmt: skip
    key_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")  # fmt: skip
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs).decode("ascii")
    return SigningCredentials(chain_pem, key_pem, _algorithm(private_key, key), str(cert))


def resolve_credentials(
    cert: str | Path | None = None,
    key: str | Path | None = None,
    *,
    data_dir: str | Path | None = None,
) -> SigningCredentials:
    """The user's ``cert`` and ``key``, or the development chain when both are None.

    The development chain is created on first use (see :func:`ensure_dev_chain`) and a warning
    is logged once per process: readers will report its manifests as untrusted.
    """
    global _warned_dev
    if (cert is None) != (key is None):
        raise ProvenanceError(
            f"give both a C2PA certificate chain and its key, got cert={cert!r}, key={key!r}"
        )
    if cert is not None and key is not None:
        return load_credentials(cert, key)
    paths = ensure_dev_chain(data_dir)
    creds = load_credentials(paths.chain, paths.key)
    if not _warned_dev:
        logger.warning(
            "signing C2PA manifests with advsig's development certificate (%s): readers will "
            "report them untrusted. Pass --c2pa-cert/--c2pa-key from a C2PA-recognised CA for "
            "trusted manifests, or trust %s locally to test.", paths.chain, paths.ca,
        )  # fmt: skip
        _warned_dev = True
    return SigningCredentials(creds.chain_pem, creds.key_pem, creds.alg, creds.source, True)
