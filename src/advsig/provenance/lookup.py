"""Provenance that survives metadata stripping: manifests kept per code in the registry.

``advsig sign --c2pa --db URL`` records, for the code it signed with, the manifest store of the
last image it wrote (:func:`record_manifest`). An image whose manifest was stripped (a
re-encode, an upload to a platform that drops metadata) still carries the code in its pixels:
attribution decodes it and matches it to a registered code with a p-value, and
:func:`recover_manifest` returns that code's stored manifest. The manifest is the one of *an*
image signed with the code (the last one), not necessarily of this very image: it says who
signed with which kit and how the image came to be, not which file it was.

Example:
    >>> book = CodeBook.load(reg, kit=kit_label("base"), num_bits=kit.num_bits)
    >>> found = attribute(kit.detect([image])[0], book)
    >>> recovered = recover_manifest(reg, found, kit=kit_label("base"))
    >>> recovered.p_value, recovered.manifest.digital_source_type
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from advsig.errors import ProvenanceError
from advsig.provenance.summary import ManifestSummary, summarize_store
from advsig.registry.allocation import parse_code, to_hex
from advsig.registry.attribution import Attribution, Verdict
from advsig.registry.db import Registry
from advsig.registry.errors import CodeNotFoundError
from advsig.registry.models import Code, utcnow


@dataclass(frozen=True)
class RecoveredManifest:
    """A registered code's stored manifest, found from an image's decoded code.

    Attributes:
        manifest: the stored manifest's summary (``source="registry"``; its validation state is
            the one c2pa reported right after signing).
        owner / model: who holds the code.
        code: the registered code (hex) the image was matched to.
        code_status: "active" or "revoked".
        distance: Hamming distance between the decoded bits and ``code``.
        p_value: chance that an unsigned image's bits get this close to some registered code
            (see ``advsig.registry.attribution``): how sure the match is.
        recorded_at: when the manifest was recorded (UTC).
        store_json: the whole stored manifest store (JSON text), for operators.
    """

    manifest: ManifestSummary
    owner: str
    model: str | None
    code: str
    code_status: str
    distance: int
    p_value: float
    recorded_at: datetime | None
    store_json: str = field(repr=False, default="")

    def to_json_dict(self) -> dict:
        """Everything but the raw store, for the registry's operators (the CLI)."""
        return {
            "p_value": self.p_value, "distance": self.distance, "owner": self.owner,
            "model": self.model, "code": self.code, "code_status": self.code_status,
            "recorded_at": self.recorded_at.isoformat() if self.recorded_at else None,
            "manifest": self.manifest.to_json_dict(),
        }  # fmt: skip

    def public_json_dict(self) -> dict:
        """As :meth:`to_json_dict` without the registered code, like attribution's public view.

        The manifest summary stays: it is what the owner published inside the signed image.
        """
        d = self.to_json_dict()
        d.pop("code")
        return d


def _find_code(session, kit: str, code: str) -> Code:
    """The row of ``code`` under ``kit``: two lookups on the (kit, value) unique index."""
    num_bits = session.scalar(select(Code.num_bits).where(Code.kit == kit).limit(1))
    if num_bits is None:
        raise CodeNotFoundError(f"no codes are registered for kit {kit!r}")
    value = to_hex(parse_code(code, num_bits), num_bits)
    match = session.scalar(select(Code).where(Code.kit == kit, Code.value == value))
    if match is None:
        raise CodeNotFoundError(f"code {code!r} is not registered for kit {kit!r}")
    return match


def record_manifest(
    registry: Registry, *, kit: str, code: str, store_json: str, recorded_at: datetime | None = None
) -> str:
    """Keep ``store_json`` as the manifest ``code`` (registered under ``kit``) was signed with.

    Replaces any earlier one. Returns the registered code (normalised hex). Raises
    :class:`CodeNotFoundError` when the code is not registered for that kit, and
    :class:`ProvenanceError` when ``store_json`` is not a manifest store.
    """
    summary = summarize_store(store_json, source="registry")  # refuses non-JSON early
    if summary.label is None:
        raise ProvenanceError(
            f"not a C2PA manifest store (no active manifest): {store_json[:80]!r}"
        )
    with registry.write() as session:
        row = _find_code(session, kit, code)
        row.c2pa_manifest = store_json
        row.c2pa_manifest_at = recorded_at or utcnow()
        session.flush()
        return row.value


def stored_manifest(registry: Registry, *, kit: str, code: str) -> tuple[str, datetime] | None:
    """(manifest store JSON, when recorded) kept for ``code`` under ``kit``, None if none."""
    with registry.read() as session:
        row = _find_code(session, kit, code)
        if row.c2pa_manifest is None:
            return None
        return row.c2pa_manifest, row.c2pa_manifest_at


def recover_manifest(
    registry: Registry, attribution: Attribution, *, kit: str
) -> RecoveredManifest | None:
    """The stored manifest of the code ``attribution`` matched, with the match's p-value.

    None unless the image was attributed (a unique registered code within the confidence)
    and a manifest was recorded for that code. ``kit`` is the registry label the code book was
    loaded under (``advsig.registry.kit_label``). Two indexed lookups; cheap enough per image.
    """
    if attribution.verdict is not Verdict.ATTRIBUTED or attribution.code is None:
        return None
    try:
        found = stored_manifest(registry, kit=kit, code=attribution.code)
    except CodeNotFoundError:
        return None  # revoked codes stay registered, so only a changed registry gets here
    if found is None:
        return None
    store_json, recorded_at = found
    return RecoveredManifest(
        manifest=summarize_store(store_json, source="registry"),
        owner=attribution.owner or "", model=attribution.model, code=attribution.code,
        code_status=attribution.code_status or "active", distance=attribution.distance or 0,
        p_value=float(attribution.p_value if attribution.p_value is not None else 1.0),
        recorded_at=recorded_at, store_json=store_json,
    )  # fmt: skip
