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


@dataclass(frozen=True)
class FlagStatistics:
    """How a set of images reads to a kit: share flagged at FPR 1e-2 and 1e-3, mean score, and,
    for an expected ``code``, bit accuracy and the share read exactly.

    ``bit_agreement_with_signed_code``: for another model's samples, how often their bits match
    the signed model's code (chance is 0.5).
    """

    num_samples: int
    flag_rate_1e2: float
    flag_rate_1e3: float
    mean_score: float
    code: str | None = None
    bit_accuracy: float | None = None
    exact_code_rate: float | None = None
    bit_agreement_with_signed_code: float | None = None

    def to_json_dict(self) -> dict:
        """The JSON keys of ``results.json`` (``flag_rate_1e-3``, ...); absent fields left out."""
        d = {
            "num_samples": self.num_samples,
            "flag_rate_1e-2": self.flag_rate_1e2,
            "flag_rate_1e-3": self.flag_rate_1e3,
            "mean_score": self.mean_score,
        }
        for name in ("code", "bit_accuracy", "exact_code_rate", "bit_agreement_with_signed_code"):
            if getattr(self, name) is not None:
                d[name] = getattr(self, name)
        return d


@dataclass(frozen=True)
class GeneratorEvaluation:
    """What ``evaluate_generators`` measured: per role, detection and sample quality."""

    num_images: int
    sample_steps: int
    seed: int
    code: str | None
    thresholds: dict[str, float]  # FPR as "0.01" / "0.001" -> score threshold
    models: dict[str, str]  # role -> source
    detection: dict[str, FlagStatistics]
    quality: dict

    def to_json_dict(self) -> dict:
        d = asdict(self)
        d["detection"] = {role: s.to_json_dict() for role, s in self.detection.items()}
        return d


@dataclass(frozen=True)
class PersistenceResult:
    """Flag statistics of a signed generator after each stage of an attacker's clean fine-tune."""

    family: str
    attacker_strategy: str
    model: str
    code: str | None
    config: dict
    thresholds: dict[str, float]
    milestones: list[tuple[int, FlagStatistics]]  # (attacker steps, statistics)
    fid_vs_real: list[float] = field(default_factory=list)  # per milestone: the attacker's quality
    feature_space: str = ""

    def to_json_dict(self) -> dict:
        fids = self.fid_vs_real or [None] * len(self.milestones)
        return {
            "attack": "finetune",
            "family": self.family,
            "attacker_strategy": self.attacker_strategy,
            "model": self.model,
            "code": self.code,
            "config": self.config,
            "thresholds": self.thresholds,
            "feature_space": self.feature_space,
            "milestones": [
                {"attacker_steps": steps, **stats.to_json_dict(), "fid_vs_real": fid}
                for (steps, stats), fid in zip(self.milestones, fids)
            ],
        }


@dataclass(frozen=True)
class FamilyDemoResult:
    """One generator family's part of ``advsig demo``: a signed fine-tune, a control fine-tune
    and the original, sampled with the same seeds and read by the same kit."""

    family: str
    model: str
    strategy: str
    kit: str
    code: str | None
    finetune_steps: int
    finetune_wall_time_s: dict[str, float | None]  # "signed" / "control" -> seconds
    sample_steps: int
    fpr: float
    threshold: float
    evaluation: GeneratorEvaluation
    live: bool = True  # fine-tuned in this run (else read from the shipped fine-tunes)

    def flag_rate(self, role: str) -> float:
        """Share of ``role``'s samples flagged at FPR 1e-3 (``signed``, ``original``, ``control``)."""
        return self.evaluation.detection[role].flag_rate_1e3

    def to_json_dict(self) -> dict:
        """The ``generators.<family>`` entry of the demo's ``summary.json``."""
        signed = self.evaluation.detection["signed"]
        return {
            **{
                f"{role}_flag_rate": self.flag_rate(role)
                for role in ("signed", "original", "control")
            },
            "bit_accuracy": signed.bit_accuracy,
            "exact_code_rate": signed.exact_code_rate,
            "num_samples": self.evaluation.num_images,
            "fpr": self.fpr,
            "threshold": self.threshold,
            "code": self.code,
            "kit": self.kit,
            "model": self.model,
            "family": self.family,
            "strategy": self.strategy,
            "finetune_steps": self.finetune_steps,
            "live": self.live,
            "finetune_wall_time_s": self.finetune_wall_time_s,
            "sample_steps": self.sample_steps,
            "quality": self.evaluation.quality,
            "detection": {r: s.to_json_dict() for r, s in self.evaluation.detection.items()},
        }
