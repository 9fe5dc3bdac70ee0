"""Writing C2PA manifests into signed images, with advsig's signature as the soft binding.

A C2PA manifest is bound to the file's bytes (the hard binding, a hash): re-encoding, or any
platform that strips metadata, removes it. The soft binding assertion records an identifier
that lives in the pixels instead, so the manifest can be found again from the image alone:
here, advsig's invisible code. The assertion follows the C2PA shape (``c2pa.soft-binding``)::

    {"alg": "com.advsig.signature.v2",           # v1 for kits without content binding
     "alg_params": "{\"kit\": \"0d82fce60e69f145\", \"num_bits\": 32}",
     "name": "advsig invisible signature",
     "blocks": [{"scope": {}, "value": "<the code's bytes, base64, most significant first>"}],
     "pad": []}

``alg_params`` names the kit by fingerprint (its key fingerprint for v2 kits, a hash of the
injector's weights for v1 kits), never by a local folder path, so the manifest leaks no path.

Beside it, a ``c2pa.actions`` assertion says how the image came to be: ``c2pa.created`` with
the IPTC digital source type ``trainedAlgorithmicMedia`` (a generator's output) or
``compositeWithTrainedAlgorithmicMedia`` (a photo that advsig's network altered).

Claim thumbnails are off: on small images they dominate the file (a 96 px PNG grew from 28 KB
to 331 KB with one, 31 KB without, measured with c2pa-python 0.38.1).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from advsig.errors import ConfigError, ProvenanceError
from advsig.provenance.certs import SigningCredentials
from advsig.utils import atomic_path

if TYPE_CHECKING:
    from advsig.kit import Kit

logger = logging.getLogger(__name__)

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
SOURCE_TYPES = {
    "generated": IPTC + "trainedAlgorithmicMedia",
    "composite": IPTC + "compositeWithTrainedAlgorithmicMedia",
}
SOFT_BINDING_LABEL = "c2pa.soft-binding"
SOFT_BINDING_ALG = {True: "com.advsig.signature.v2", False: "com.advsig.signature.v1"}
SOFT_BINDING_NAME = "advsig invisible signature"
MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}
# Reading and signing never go to the network: no remote manifests, no OCSP responders.
OFFLINE_VERIFY = {"remote_manifest_fetch": False, "ocsp_fetch": False}
_CONTEXT_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}, "verify": OFFLINE_VERIFY}


def kit_fingerprint(kit: Kit) -> str:
    """16 hex digits naming ``kit`` without a path: its key fingerprint (v2), else a weights hash.

    Why the weights for v1 kits: they have no key, and their injector is what makes the code.
    """
    if kit.key_fingerprint:
        return str(kit.key_fingerprint)
    h = hashlib.sha256(b"advsig-injector-fingerprint\x00")
    for name, tensor in sorted(kit.injector.state_dict().items()):
        h.update(name.encode() + b"\x00")
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def code_to_value(code: str | int | None, num_bits: int) -> str:
    """The soft-binding ``value``: the code's ceil(num_bits / 8) bytes, big-endian, base64."""
    from advsig.codes.bits import hex_to_bits

    bits = hex_to_bits(code, num_bits)  # validates; None is all zeros, as `advsig sign` embeds
    value = 0
    for b in bits.tolist():
        value = (value << 1) | int(b)
    return base64.b64encode(value.to_bytes((num_bits + 7) // 8, "big")).decode("ascii")


def value_to_code(value: str, num_bits: int | None = None) -> str:
    """Inverse of :func:`code_to_value`: hex zero-padded to ceil(num_bits / 4) digits."""
    raw = base64.b64decode(value, validate=True)
    n = num_bits if num_bits else 8 * len(raw)
    return f"{int.from_bytes(raw, 'big'):0{(n + 3) // 4}x}"


@dataclass(frozen=True)
class ManifestSpec:
    """What every manifest of one signing run says (the per-file title is added when writing).

    Attributes:
        source_type: "generated" or "composite" (see the module docstring).
        code: the embedded code, hex.
        num_bits: the kit's code length.
        alg: soft-binding algorithm identifier.
        kit_fingerprint: see :func:`kit_fingerprint`.
    """

    source_type: str
    code: str
    num_bits: int
    alg: str
    kit_fingerprint: str

    @classmethod
    def for_kit(
        cls, kit: Kit, code: str | int | None, *, source_type: str = "generated"
    ) -> ManifestSpec:
        """The spec for signing with ``kit`` and ``code`` (None: the all-zeros default code)."""
        from advsig.codes.bits import bits_to_hex, hex_to_bits

        if source_type not in SOURCE_TYPES:
            raise ConfigError(
                f"C2PA source type must be one of {sorted(SOURCE_TYPES)}, got {source_type!r}"
            )
        if kit.num_bits < 1:
            raise ConfigError("this kit embeds no code, so there is no soft binding to record")
        hex_code = bits_to_hex(hex_to_bits(code, kit.num_bits))
        return cls(
            source_type, hex_code, kit.num_bits, SOFT_BINDING_ALG[kit.bound], kit_fingerprint(kit)
        )

    def definition(self, *, title: str, format: str) -> dict:
        """The manifest definition c2pa's ``Builder`` takes, for one output file."""
        from advsig import __version__

        agent = {"name": "advsig", "version": __version__}
        action = {
            "action": "c2pa.created",
            "digitalSourceType": SOURCE_TYPES[self.source_type],
            "softwareAgent": agent,
        }
        soft = {
            "alg": self.alg,
            "alg_params": json.dumps(
                {"kit": self.kit_fingerprint, "num_bits": self.num_bits}, sort_keys=True
            ),
            "name": SOFT_BINDING_NAME,
            "blocks": [{"scope": {}, "value": code_to_value(self.code, self.num_bits)}],
            "pad": [],
        }
        return {
            "claim_generator_info": [agent],
            "title": title,
            "format": MIME_TYPES[format],
            "assertions": [
                {"label": "c2pa.actions", "data": {"actions": [action]}},
                {"label": SOFT_BINDING_LABEL, "data": soft},
            ],
        }


def one_line(exc: BaseException) -> str:
    """c2pa's error text on one line (it spreads validation failures over several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _probe_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (128, 128, 128)).save(buf, format="PNG")
    return buf.getvalue()


class ManifestWriter:
    """Embeds one signing run's manifests, each signed with ``credentials``.

    Construction signs a tiny in-memory image, so a certificate c2pa refuses fails once, up
    front, with one message, instead of once per file.

    Example:
        >>> writer = ManifestWriter(resolve_credentials(), ManifestSpec.for_kit(kit, "c0ffee"))
        >>> store_json = writer.embed("plain.png", "signed.png", format="png")
    """

    def __init__(self, credentials: SigningCredentials, spec: ManifestSpec) -> None:
        import c2pa

        self.credentials = credentials
        self.spec = spec
        self.last_store_json: str | None = None  # of the last embed: what the registry keeps
        self.num_written = 0
        self._context = c2pa.Context.from_dict(_CONTEXT_SETTINGS)
        try:
            info = c2pa.C2paSignerInfo(
                credentials.alg, credentials.chain_pem.encode(), credentials.key_pem.encode(),
                None,
            )  # fmt: skip
            self._signer = c2pa.Signer.from_info(info)
        except (c2pa.C2paError, ValueError) as exc:
            raise ProvenanceError(
                f"{credentials.source}: c2pa refuses this signer ({one_line(exc)})"
            ) from None
        try:
            self._sign_stream(
                io.BytesIO(_probe_png()), io.BytesIO(), title="probe.png", format="png"
            )
        except c2pa.C2paError as exc:
            raise ProvenanceError(
                f"{credentials.source}: c2pa cannot sign with this certificate chain: "
                f"{one_line(exc)}"
            ) from None

    def _sign_stream(self, src, dst, *, title: str, format: str) -> None:
        """Sign ``src`` into ``dst`` (binary streams); c2pa's errors pass through."""
        import c2pa

        definition = self.spec.definition(title=title, format=format)
        with c2pa.Builder(definition, self._context) as builder:
            builder.sign(self._signer, MIME_TYPES[format], src, dst)

    def embed(self, src: str | Path, dst: str | Path, *, format: str) -> str:
        """Write ``src`` (a PNG or JPEG file) with a signed manifest to ``dst``, atomically.

        Returns the manifest store as c2pa reads it back from the written file (JSON text):
        what the registry keeps, so provenance can be recovered once the file lost it.
        """
        import c2pa

        if format not in MIME_TYPES:
            raise ConfigError(
                f"C2PA manifests are written for {sorted(MIME_TYPES)}, not {format!r}"
            )
        src, dst = Path(src), Path(dst)
        with atomic_path(dst) as tmp:
            try:
                with open(src, "rb") as s, open(tmp, "w+b") as d:
                    self._sign_stream(s, d, title=dst.name, format=format)
            except c2pa.C2paError as exc:
                raise ProvenanceError(f"{dst}: C2PA signing failed ({one_line(exc)})") from None
            try:
                with (
                    open(tmp, "rb") as f,
                    c2pa.Reader(MIME_TYPES[format], f, None, self._context) as reader,
                ):
                    store = reader.json()
            except c2pa.C2paError as exc:
                raise ProvenanceError(
                    f"{dst}: the manifest just written cannot be read ({one_line(exc)})"
                ) from None
        self.last_store_json = store
        self.num_written += 1
        return store
