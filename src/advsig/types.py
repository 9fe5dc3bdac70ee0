"""Result dataclasses returned by public functions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class DetectionResult:
    """Verdict for one image.

    Attributes:
        is_signed: ``score >= threshold``.
        score: the detector's signature logit (higher = more likely signed).
        p_value: estimated probability that an unsigned image scores at least ``score``
            (from the kit's calibration on clean validation images).
        threshold: the score threshold used, set for ``fpr`` on clean images.
        fpr: the false-positive rate the threshold was chosen for.
        bits: decoded code as a hex string, ``None`` if not signed or the kit has no code.
        bit_confidence: per-bit confidence in [0.5, 1] (sigmoid of |bit logit|), empty if no code.
        path: source file, when known.
        error: message when the image could not be read; all other fields are then neutral.
    """

    is_signed: bool
    score: float
    p_value: float
    threshold: float
    fpr: float
    bits: str | None = None
    bit_confidence: tuple[float, ...] = field(default_factory=tuple)
    path: str | None = None
    error: str | None = None

    def to_json_dict(self) -> dict:
        """Flat dict for ``--json`` output: keys path, signed, score, p_value, bits, error, ..."""
        d = asdict(self)
        d["signed"] = d.pop("is_signed")
        d["bit_confidence"] = list(d["bit_confidence"])
        return d


@dataclass(frozen=True)
class SignResult:
    """Outcome of signing one file."""

    src: str
    dst: str | None
    status: str  # "signed" | "skipped" | "failed"
    error: str | None = None
    psnr: float | None = None


@dataclass(frozen=True)
class TrainSummary:
    """What ``train_signature`` measured on held-out validation images at the end."""

    steps: int
    wall_time_s: float
    val_psnr_db: float
    val_tpr_at_1e3: float
    val_bit_accuracy: float | None
    num_val_clean: int
