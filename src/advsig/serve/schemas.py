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


class DetectResponse(BaseModel):
    kit: str
    fpr: float
    results: list[DetectionItem] = Field(description="One per uploaded image, in upload order.")


class PublicAttribution(BaseModel):
    """Who signed the image. Names the matched owner only, never other owners or codes."""

    verdict: VerdictName
    model: str | None = Field(description="The owner's model the code was assigned to.")
    code_status: Literal["active", "revoked"] | None
    distance: int | None = Field(description="Hamming distance to the nearest registered code.")
    p_value: float | None = Field(
        description="Chance that an unsigned image's bits get this close to some registered "
        "code (accounts for the number of registered codes)."
    )
    reason: str


class AttributionItem(DetectionItem):
    owner: str | None = Field(description="The owner's name when attributed, else null.")
    attribution: PublicAttribution | None = Field(description="Null when the image failed.")


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
