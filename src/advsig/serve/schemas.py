"""The service's request and response bodies, as they appear in the OpenAPI docs.

Responses are validated against these models before they leave, so a field that is not declared
here (a registered code in an attribution, another owner's name, raw logits) cannot reach a
client even if the code building the response put it there.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from advsig.registry.allocation import STRATEGIES
from advsig.registry.attribution import Verdict

VerdictName = Literal[tuple(v.value for v in Verdict)]  # type: ignore[valid-type]
StrategyName = Literal[STRATEGIES]  # type: ignore[valid-type]


class Health(BaseModel):
    status: Literal["ok"]
    kit: str = Field(description="Registry label of the served kit.")
    num_bits: int
    queued_images: int


class C2paSoftBinding(BaseModel):
    """advsig's ``c2pa.soft-binding`` assertion: the code the image's pixels carry."""

    alg: str = Field(description="Soft-binding algorithm, e.g. `com.advsig.signature.v2`.")
    code: str | None = Field(
        description="The code it names (hex). In a recovered manifest: null for detect keys."
    )
    kit: str | None = Field(description="Fingerprint of the kit that signed (never a path).")
    num_bits: int | None


class C2paManifest(BaseModel):
    """An image's active C2PA manifest in a few fields, as ``advsig detect --json`` prints it."""

    source: Literal["embedded", "registry"] = Field(
        description="`embedded`: read from the upload; `registry`: the copy kept at signing."
    )
    validation_state: str = Field(
        description="`trusted`, `valid` (intact, signer not on the service's trust list) or "
        "`invalid`; for a registry copy, the state right after signing."
    )
    reason: str | None = Field(description="Why it is invalid; else null.")
    trusted: bool
    label: str | None = Field(description="The active manifest's label (`urn:c2pa:...`).")
    claim_generator: str | None
    title: str | None = Field(description="The manifest's title (the signed file's name).")
    digital_source_type: str | None = Field(description="IPTC digital source type.")
    signer: str | None = Field(description="Signing certificate's common name and issuer.")
    code: str | None = Field(description="The soft binding's code (hex), repeated.")
    soft_binding: C2paSoftBinding | None
    failures: list[str] = Field(description="Every validation failure, `code: explanation`.")


class RecoveredManifest(BaseModel):
    """The manifest recorded for the registered code the image's bits matched.

    Provenance recovered from the pixels alone, after the file's own manifest was stripped.
    It is the manifest of the last image signed with that code, not necessarily of this one.
    """

    p_value: float = Field(description="The match's p-value (as in `attribution`).")
    distance: int = Field(description="Bits that differ from the matched code.")
    owner: str
    model: str | None
    code_status: Literal["active", "revoked"]
    recorded_at: str | None = Field(description="When the manifest was recorded (ISO 8601).")
    code: str | None = Field(
        default=None, description="The registered code (hex); admin keys only, else null."
    )
    manifest: C2paManifest


class DetectionItem(BaseModel):
    """One image, with the same fields as ``advsig detect --json``."""

    path: str | None = Field(description="The uploaded file's name.")
    signed: bool
    score: float | None = Field(description="Signature logit; null when the image failed.")
    p_value: float | None = Field(
        description="Estimated chance that an unsigned image scores at least this high."
    )
    threshold: float | None
    fpr: float | None
    bits: str | None = Field(description="Decoded code (hex); null when not signed.")
    bit_confidence: list[float] = Field(description="Per-bit confidence in [0.5, 1].")
    error: str | None = Field(description="Why this image could not be read; else null.")
    c2pa: C2paManifest | None = Field(
        default=None,
        description="The C2PA manifest embedded in the upload, validated (nothing is fetched "
        "over the network); null when it carries none or could not be read.",
    )


class DetectResponse(BaseModel):
    kit: str
    fpr: float
    results: list[DetectionItem] = Field(description="One per uploaded image, in upload order.")


class PublicAttribution(BaseModel):
    """Who signed the image. Names the matched owner only, never other owners or codes."""

    verdict: VerdictName
    model: str | None = Field(description="The owner's model the code was assigned to.")
    code_status: Literal["active", "revoked"] | None
    distance: int | None = Field(
        description="Bits that differ from the nearest registered code (nearest weighting each "
        "bit by the detector's confidence)."
    )
    p_value: float | None = Field(
        description="Chance that an unsigned image's bits get this close to some registered "
        "code (accounts for the number of registered codes)."
    )
    reason: str


class AttributionItem(DetectionItem):
    owner: str | None = Field(description="The owner's name when attributed, else null.")
    attribution: PublicAttribution | None = Field(description="Null when the image failed.")
    recovered_manifest: RecoveredManifest | None = Field(
        default=None,
        description="When the image is attributed and its code has a recorded C2PA manifest "
        "(`advsig sign --c2pa --db`): that manifest, with the match's p-value. Else null.",
    )


class AttributeResponse(BaseModel):
    kit: str
    fpr: float
    confidence: float
    results: list[AttributionItem]


class Stats(BaseModel):
    queued_images: int
    batches: int
    images: int
    mean_batch: float
    largest_batch: int
    busy_rejections: int
    compute_s: float
    batch_sizes: dict[str, int]


# ------------------------------------------------------------------- registry (admin only)
class NewOwner(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    contact: str | None = Field(default=None, max_length=320)


class NewCode(BaseModel):
    owner: str = Field(min_length=1, max_length=200)
    model: str | None = Field(
        default=None, min_length=1, max_length=200, description="Created for the owner if new."
    )
    min_distance: int | None = Field(default=None, ge=1, description="Default: num_bits / 4.")
    strategy: StrategyName = "random"
    seed: int | None = None


class ModelOut(BaseModel):
    name: str
    created_at: str
    created_by: str


class CodeOut(BaseModel):
    owner: str
    model: str | None
    kit: str
    code: str
    num_bits: int
    status: str
    min_distance: int
    strategy: str
    created_at: str
    assigned_by: str
    revoked_at: str | None
    revoked_by: str | None


class OwnerOut(BaseModel):
    name: str
    contact: str | None
    created_at: str
    created_by: str
    models: list[ModelOut]
    codes: list[CodeOut]


class Allocated(BaseModel):
    owner: str
    model: str | None
    kit: str
    code: str
    num_bits: int
    min_distance: int
    nearest_distance: int
    strategy: str
    tries: int
    created_at: str
    assigned_by: str


# The multipart body of /v1/detect and /v1/attribute. The endpoints parse it themselves (to
# count files before reading them), so FastAPI cannot derive this from their signature.
MULTIPART_IMAGES = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["images"],
                    "properties": {
                        "images": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "One or more image files (PNG, JPEG, WebP...).",
                        }
                    },
                }
            }
        },
    }
}
