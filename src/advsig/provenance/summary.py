"""Reading C2PA manifests back: what ``advsig detect`` and attribution report about one.

c2pa validates while it reads. Its ``validation_state`` is ``Invalid`` when anything fails
(the image's bytes no longer match the manifest's hash, an assertion was altered, a bad
signature), ``Valid`` when the manifest is intact but its signer is not on the reader's trust
list (every development certificate, see ``certs.py``), and ``Trusted`` when it is intact and
trusted. advsig reports these as ``invalid`` / ``valid`` / ``trusted``, with the failure codes
and c2pa's explanation as the reason. A manifest so damaged that c2pa cannot parse it at all is
``invalid`` with c2pa's error as the reason.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from advsig.errors import ProvenanceError
from advsig.provenance.manifest import (
    OFFLINE_VERIFY,
    SOFT_BINDING_LABEL,
    one_line,
    value_to_code,
)

logger = logging.getLogger(__name__)

UNTRUSTED_CODE = "signingCredential.untrusted"
ACTIONS_LABELS = ("c2pa.actions", "c2pa.actions.v2")


@dataclass(frozen=True)
class SoftBinding:
    """advsig's soft-binding assertion as found in a manifest."""

    alg: str
    code: str | None
    kit_fingerprint: str | None
    num_bits: int | None

    def to_json_dict(self) -> dict:
        return {
            "alg": self.alg, "code": self.code, "kit": self.kit_fingerprint,
            "num_bits": self.num_bits,
        }  # fmt: skip


@dataclass(frozen=True)
class ManifestSummary:
    """The active C2PA manifest of an image, or of a registry record, in a few fields.

    Attributes:
        source: "embedded" (read from the file) or "registry" (the copy kept when signing).
        validation_state: "trusted", "valid" (intact, signer not trusted) or "invalid"; for a
            registry copy, the state c2pa reported right after signing.
        reason: why it is invalid (failure codes and explanations), None otherwise.
        trusted: whether the reader trusts the signer's certificate chain.
        label: the active manifest's label (``urn:c2pa:...``).
        claim_generator: who wrote the claim, ``name/version`` entries joined by spaces.
        title: the manifest's title (the file name when advsig signed it).
        digital_source_type: the IPTC source type of the first action that has one.
        signer: the signing certificate's common name and issuer.
        soft_binding: advsig's soft binding (None when the manifest has none).
        failures: every failure as ``code: explanation``, untrusted signer included.
    """

    source: str
    validation_state: str
    reason: str | None = None
    trusted: bool = False
    label: str | None = None
    claim_generator: str | None = None
    title: str | None = None
    digital_source_type: str | None = None
    signer: str | None = None
    soft_binding: SoftBinding | None = None
    failures: tuple[str, ...] = field(default_factory=tuple)

    @property
    def code(self) -> str | None:
        """The code the soft binding records (hex), when there is one."""
        return self.soft_binding.code if self.soft_binding else None

    @property
    def is_valid(self) -> bool:
        return self.validation_state in ("valid", "trusted")

    def to_json_dict(self) -> dict:
        """Flat JSON for ``--json`` outputs; ``code`` repeats the soft binding's code."""
        return {
            "source": self.source, "validation_state": self.validation_state,
            "reason": self.reason, "trusted": self.trusted, "label": self.label,
            "claim_generator": self.claim_generator, "title": self.title,
            "digital_source_type": self.digital_source_type, "signer": self.signer,
            "code": self.code,
            "soft_binding": self.soft_binding.to_json_dict() if self.soft_binding else None,
            "failures": list(self.failures),
        }  # fmt: skip

    def describe(self) -> str:
        """One short line for text output: state, source type, code."""
        state = self.validation_state
        if state == "valid":
            state = "valid (untrusted signer)"
        if self.reason and state == "invalid":
            state = f"invalid: {self.reason}"
        parts = [state]
        if self.digital_source_type:
            parts.append(self.digital_source_type.rsplit("/", 1)[-1])
        if self.code:
            parts.append(f"code {self.code}")
        return ", ".join(parts)


def _claim_generator(manifest: dict) -> str | None:
    info = manifest.get("claim_generator_info") or []
    names = [
        f"{i['name']}/{i['version']}" if i.get("version") else str(i["name"])
        for i in info
        if isinstance(i, dict) and i.get("name")
    ]
    return " ".join(names) or manifest.get("claim_generator")


def _source_type(assertions: list[dict]) -> str | None:
    for a in assertions:
        if a.get("label") in ACTIONS_LABELS:
            for action in (a.get("data") or {}).get("actions") or []:
                if isinstance(action, dict) and action.get("digitalSourceType"):
                    return str(action["digitalSourceType"])
    return None


def _soft_binding(assertions: list[dict]) -> SoftBinding | None:
    for a in assertions:
        if a.get("label") != SOFT_BINDING_LABEL:
            continue
        data = a.get("data") or {}
        try:
            params = json.loads(data.get("alg_params") or "{}")
        except (TypeError, ValueError):
            params = {}
        params = params if isinstance(params, dict) else {}
        num_bits = params.get("num_bits") if isinstance(params.get("num_bits"), int) else None
        blocks = data.get("blocks") or []
        code = None
        if blocks and isinstance(blocks[0], dict) and isinstance(blocks[0].get("value"), str):
            try:
                code = value_to_code(blocks[0]["value"], num_bits)
            except ValueError:
                code = None  # another tool's soft binding, not base64 bytes
        kit = params.get("kit") if isinstance(params.get("kit"), str) else None
        return SoftBinding(str(data.get("alg", "")), code, kit, num_bits)
    return None


def _failures(store: dict) -> list[dict]:
    results = store.get("validation_results") or {}
    active = results.get("activeManifest") or {}
    found = list(active.get("failure") or [])
    # Older stores (and ingredient problems) report in the flat validation_status list.
    known = {(f.get("code"), f.get("url")) for f in found}
    for status in store.get("validation_status") or []:
        if (status.get("code"), status.get("url")) not in known:
            found.append(status)
    return found


def summarize_store(store_json: str, *, source: str = "embedded") -> ManifestSummary:
    """A :class:`ManifestSummary` of a manifest store as ``c2pa.Reader.json()`` writes it."""
    try:
        store = json.loads(store_json)
    except (TypeError, ValueError) as exc:
        raise ProvenanceError(
            f"not a C2PA manifest store ({exc}): {str(store_json)[:80]!r}"
        ) from None
    if not isinstance(store, dict):
        raise ProvenanceError(f"not a C2PA manifest store: {str(store_json)[:80]!r}")
    label = store.get("active_manifest")
    manifest = (store.get("manifests") or {}).get(label) or {}
    assertions = [a for a in manifest.get("assertions") or [] if isinstance(a, dict)]
    failures = _failures(store)
    serious = [f for f in failures if f.get("code") != UNTRUSTED_CODE]
    # c2pa's own verdict when it gives one; stores without it: any failure but an untrusted
    # signer makes the manifest invalid, which is the rule c2pa applies.
    state = str(store.get("validation_state") or ("Invalid" if serious else "Valid")).lower()
    reason = None
    if state == "invalid":
        shown = serious or failures
        reason = "; ".join(
            f"{f.get('code')}: {f.get('explanation', '')}".rstrip(": ") for f in shown
        )
        reason = reason or "c2pa reports the manifest invalid"
    sig = manifest.get("signature_info") or {}
    signer = ", ".join(
        str(v) for v in (sig.get("common_name"), sig.get("issuer")) if v
    ) or None  # fmt: skip
    return ManifestSummary(
        source=source,
        validation_state=state,
        reason=reason,
        trusted=state == "trusted",
        label=label,
        claim_generator=_claim_generator(manifest),
        title=manifest.get("title"),
        digital_source_type=_source_type(assertions),
        signer=signer,
        soft_binding=_soft_binding(assertions),
        failures=tuple(f"{f.get('code')}: {f.get('explanation', '')}" for f in failures),
    )


def _reader_context(trust_anchors: str | Path | None):
    """A c2pa context that never goes to the network, trusting ``trust_anchors`` (PEM) if given.

    Why offline: an image may name a remote manifest URL; fetching it from a detection run or
    service would let any uploaded image make advsig issue HTTP requests.
    """
    import c2pa

    settings: dict = {"verify": dict(OFFLINE_VERIFY)}
    if trust_anchors is not None:
        try:
            pem = Path(trust_anchors).expanduser().read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProvenanceError(f"{trust_anchors}: cannot read trust anchors ({exc})") from None
        if "BEGIN CERTIFICATE" not in pem:
            raise ProvenanceError(f"{trust_anchors}: no PEM certificate to trust")
        settings["trust"] = {"trust_anchors": pem}
    return c2pa.Context.from_dict(settings)


def read_manifest(
    source: str | Path | bytes,
    *,
    format: str | None = None,
    trust_anchors: str | Path | None = None,
) -> ManifestSummary | None:
    """The active C2PA manifest embedded in an image, validated; None if it has none.

    ``source`` is a file path, or the file's bytes (an upload) with an optional ``format``
    (MIME type such as ``"image/png"``; c2pa detects it from the bytes when None).
    ``trust_anchors`` is a PEM file of root certificates to trust (say, advsig's development
    root); without it c2pa's built-in trust applies and advsig's dev manifests read as "valid",
    not "trusted". Nothing is fetched over the network (no remote manifests, no OCSP). A format
    c2pa does not read (BMP) counts as having no manifest.

    Example:
        >>> summary = read_manifest("signed/photo.png")
        >>> summary.validation_state, summary.digital_source_type, summary.code
        ('valid', 'http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia', 'c0ffee')
    """
    import c2pa

    context = _reader_context(trust_anchors)
    is_bytes = isinstance(source, (bytes, bytearray))
    name = "uploaded image" if is_bytes else str(source)
    try:
        if is_bytes:
            reader = c2pa.Reader.try_create(format, io.BytesIO(source), None, context)
        else:
            reader = c2pa.Reader.try_create(str(source), None, None, context)
        if reader is None:
            return None
        with reader:
            store = reader.json()
    except c2pa.C2paError.NotSupported:
        return None
    except c2pa.C2paError.Io as exc:
        raise ProvenanceError(f"{name}: cannot read ({one_line(exc)})") from None
    except c2pa.C2paError as exc:
        opener = (lambda: io.BytesIO(source)) if is_bytes else (lambda: open(source, "rb"))
        if not _has_manifest_store(opener):
            return None  # c2pa cannot parse the container, but there was no manifest to read
        # A manifest is there but broken beyond parsing: that is an invalid manifest, not none.
        message = one_line(exc)
        logger.debug("%s: c2pa cannot read the manifest: %s", name, message)
        return ManifestSummary(source="embedded", validation_state="invalid", reason=message)
    return summarize_store(store, source="embedded")


def _has_manifest_store(opener: Callable[[], BinaryIO], chunk: int = 1 << 20) -> bool:
    """Whether the file holds a C2PA JUMBF box (its "jumb" type and "c2pa" label).

    Why: c2pa raises the same "could not be parsed" for a truncated file with a manifest and for
    an odd file without one; only the first is a broken manifest worth reporting.
    """
    seen_jumb = seen_label = False
    tail = b""
    try:
        with opener() as f:
            while block := f.read(chunk):
                data = tail + block
                seen_jumb = seen_jumb or b"jumb" in data
                seen_label = seen_label or b"c2pa\x00" in data
                if seen_jumb and seen_label:
                    return True
                tail = data[-8:]
    except OSError:
        return False
    return False
