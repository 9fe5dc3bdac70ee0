"""Who signed this image: the decoded bits against the registered codes, with a p-value.

The detector first says whether an image is signed at all. If it is, the decoded n bits are
compared with the M codes registered for the kit, each bit weighted by how sure the detector is
of it: bit i's weight is its log-likelihood ratio ``w_i = |bit logit|`` (from
``DetectionResult.bit_confidence``), and a code's weighted distance is the sum of the weights of
the bits it disagrees with. The nearest code, at weighted distance D, names the owner only if
that closeness would be unlikely by chance: for a bit string that carries no registered code,
each bit disagrees with a code as a fair coin flip whatever its weight, so

    p = 1 - (1 - P(sum_i w_i X_i <= D))^M,   X_i independent fair coins,

computed exactly (up to a conservative rounding of the weights) over the 2^n outcomes. With
equal weights (a result without confidences, or ``weighted=False``) D is the Hamming distance d
and this is ``1 - (1 - P(Binom(n, 1/2) <= d))^M``. Why weights: after lossy processing the
flipped bits are mostly the ones the detector was least sure of, so a match several bits off in
Hamming terms can still be certain (measured in BENCHMARKS.md, "C2PA recovery after stripping").

Only when p <= ``confidence`` (default 1e-3) is the owner named; otherwise the answer is
"signed, owner unknown". Two owners tied at the nearest distance are never guessed between.

``Attribution.reason`` never names a code or an owner other than the attributed one, so it can be
shown to anyone; ``tied_owners`` (the CLI shows it) is left out of :meth:`public_json_dict`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from advsig.errors import ConfigError
from advsig.registry.allocation import parse_code, popcount
from advsig.registry.db import Registry
from advsig.registry.models import Code, Owner, OwnerModel
from advsig.types import DetectionResult

if TYPE_CHECKING:
    from advsig.kit import Kit

DEFAULT_CONFIDENCE = 1e-3


class Verdict(str, Enum):
    """The three answers attribution gives."""

    ATTRIBUTED = "attributed"
    OWNER_UNKNOWN = "signed, owner unknown"
    NOT_SIGNED = "not signed"


@dataclass(frozen=True)
class RegisteredCode:
    """One row of the code book."""

    value: int
    code: str
    owner: str
    status: str
    model: str | None = None


@dataclass(frozen=True)
class Attribution:
    """Attribution of one image.

    Attributes:
        verdict: attributed, signed with owner unknown, or not signed.
        owner: the owner's name when attributed, else None.
        model: the owner's model the code was assigned to, when attributed and it has one.
        code: the nearest registered code (hex) when attributed, else None.
        code_status: "active" or "revoked" for the attributed code.
        decoded: the bits the detector read (hex), None when not signed.
        distance: Hamming distance from ``decoded`` to the nearest registered code (nearest by
            weighted distance, see the module docstring).
        p_value: chance that an unsigned random bit string lies this close to some registered
            code (see the module docstring); None when not signed or nothing is registered.
        num_codes: M, the number of registered codes compared against.
        reason: one line saying why, for people; names no other owner or code.
        tied_owners: the owners equally near when that prevented attribution (admins only).
    """

    verdict: Verdict
    owner: str | None = None
    model: str | None = None
    code: str | None = None
    code_status: str | None = None
    decoded: str | None = None
    distance: int | None = None
    p_value: float | None = None
    num_codes: int = 0
    reason: str = ""
    tied_owners: tuple[str, ...] = ()

    def to_json_dict(self) -> dict:
        """Everything, for the registry's operators (the CLI)."""
        d = asdict(self)
        d["verdict"] = self.verdict.value
        d["tied_owners"] = list(self.tied_owners)
        return d

    def public_json_dict(self) -> dict:
        """What a detection client may see: the verdict and the matched owner only.

        Leaves out the registered code, the number of registered codes and tied owners:
        they describe the registry and other owners, not this image.
        """
        return {
            "verdict": self.verdict.value, "owner": self.owner, "model": self.model,
            "code_status": self.code_status, "distance": self.distance, "p_value": self.p_value,
            "reason": self.reason,
        }  # fmt: skip


def match_p_value(num_bits: int, distance: int, num_codes: int) -> float:
    """P(a uniform random ``num_bits`` string lies within ``distance`` of any of ``num_codes``).

    Exact for codes far apart; when codes are close together their balls overlap, and the
    formula (independent balls) overestimates p, which only makes attribution more cautious.
    """
    if num_codes <= 0:
        return 1.0
    if not 0 <= distance <= num_bits:
        raise ConfigError(f"distance must be in [0, {num_bits}], got {distance!r}")
    ball = sum(math.comb(num_bits, i) for i in range(distance + 1))
    q = ball / 2**num_bits  # P(Binom(n, 1/2) <= d)
    if q >= 1.0:
        return 1.0
    return float(-math.expm1(num_codes * math.log1p(-q)))


WEIGHT_GRID = 1 << 14  # weights are rounded down to multiples of sum(w) / WEIGHT_GRID
MAX_BIT_WEIGHT = 16.0  # float32 sigmoid saturates near |logit| 16.6: confidence 1.0 means >= this


def bit_weights(result: DetectionResult, num_bits: int) -> np.ndarray:
    """Each decoded bit's log-likelihood ratio ``|logit|``, from its confidence; (n,) float64.

    Equal weights (plain Hamming matching) when the result carries no confidences.
    """
    conf = np.asarray(result.bit_confidence, dtype=np.float64)
    if conf.shape != (num_bits,):
        return np.ones(num_bits)
    c = np.clip(conf, 0.5, 1.0)
    with np.errstate(divide="ignore"):
        w = np.log(c) - np.log1p(-c)
    return np.minimum(w, MAX_BIT_WEIGHT)


def weighted_match_p_value(weights: np.ndarray, distance: float, num_codes: int) -> float:
    """P(a random bit string lies within weighted ``distance`` of any of ``num_codes`` codes).

    For one code, P(sum_i w_i X_i <= distance) with X_i independent fair coins: the exact
    distribution of the sum by dynamic programming over the weights rounded *down* to a grid
    of sum(w) / WEIGHT_GRID. Rounding down can only add outcomes to the event, so the p-value
    is never below the exact one (and within sum(w) * n / WEIGHT_GRID of the distance of it).
    With equal weights it equals :func:`match_p_value`.
    """
    w = np.asarray(weights, dtype=np.float64)
    if num_codes <= 0:
        return 1.0
    if w.ndim != 1 or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ConfigError("bit weights must be a 1-d array of finite values >= 0")
    total = float(w.sum())
    if total <= 0 or distance >= total:
        return 1.0
    if distance < 0:
        raise ConfigError(f"weighted distance must be >= 0, got {distance!r}")
    step = total / WEIGHT_GRID
    units = np.floor(w / step * (1 + 1e-12)).astype(np.int64)  # equal weights stay equal
    mass = np.zeros(int(units.sum()) + 1)
    mass[0] = 1.0
    reach = 0
    for u in units:  # add one fair coin of weight u
        if u:
            mass[u : reach + u + 1] += mass[: reach + 1]
            mass[: reach + u + 1] *= 0.5
            reach += u
    limit = int(math.floor(distance / step * (1 + 1e-9)))
    q = min(float(mass[: limit + 1].sum()), 1.0)  # a weight-0 bit moves nothing
    if q >= 1.0:
        return 1.0
    return float(-math.expm1(num_codes * math.log1p(-q)))


class CodeBook:
    """The codes registered for one kit, held in memory for fast nearest-code search.

    Example:
        >>> book = CodeBook.load(open_registry(), kit="base", num_bits=32)
        >>> attribute(kit.detect(images)[0], book).verdict
        <Verdict.ATTRIBUTED: 'attributed'>
    """

    def __init__(self, kit: str, num_bits: int, codes: Sequence[RegisteredCode]) -> None:
        if num_bits < 1:
            raise ConfigError(f"attribution needs a kit with a code, got num_bits={num_bits!r}")
        self.kit = kit
        self.num_bits = num_bits
        self.codes = list(codes)
        self._array = (
            np.array([c.value for c in self.codes], dtype=np.uint64) if num_bits <= 64 else None
        )

    @classmethod
    def load(cls, registry: Registry, *, kit: str, num_bits: int) -> CodeBook:
        """Every code registered under ``kit``, revoked ones included (their images exist)."""
        with registry.read() as session:
            rows = session.execute(
                select(Code.value, Code.num_bits, Code.status, Owner.name, OwnerModel.name)
                .join(Owner, Code.owner_id == Owner.id)
                .outerjoin(OwnerModel, Code.model_id == OwnerModel.id)
                .where(Code.kit == kit)
                .order_by(Code.id)
            ).all()
        for row in rows:
            if row[1] != num_bits:
                raise ConfigError(
                    f"kit {kit!r}: registered codes have {row[1]} bits, the kit decodes "
                    f"{num_bits}; is the registry label pointing at another kit?"
                )
        codes = [
            RegisteredCode(int(value, 16), value, owner, status, model)
            for value, _, status, owner, model in rows
        ]
        return cls(kit, num_bits, codes)

    def __len__(self) -> int:
        return len(self.codes)

    def distances(self, value: int) -> np.ndarray:
        """Hamming distance from ``value`` to every registered code, (M,) int64."""
        if self._array is not None:
            return popcount(self._array ^ np.uint64(value)).astype(np.int64)
        return np.array([(value ^ c.value).bit_count() for c in self.codes], dtype=np.int64)

    def disagreements(self, value: int) -> np.ndarray:
        """Which bits of every registered code differ from ``value``: (M, n) bool, most
        significant bit first (the order of the detector's bit logits)."""
        shifts = np.arange(self.num_bits - 1, -1, -1)
        if self._array is not None:
            x = self._array ^ np.uint64(value)
            return ((x[:, None] >> shifts.astype(np.uint64)) & np.uint64(1)).astype(bool)
        rows = [[((value ^ c.value) >> int(i)) & 1 for i in shifts] for c in self.codes]
        return np.array(rows, dtype=bool).reshape(len(self.codes), self.num_bits)


def attribute(
    result: DetectionResult,
    book: CodeBook,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    weighted: bool = True,
) -> Attribution:
    """Attribute one detection result (see the module docstring for the rule).

    ``weighted=False`` ignores the bits' confidences: plain Hamming matching.
    """
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence!r}")
    m = len(book)
    if result.error is not None or not result.is_signed:
        return Attribution(
            Verdict.NOT_SIGNED, num_codes=m, reason="the detector finds no signature"
        )
    if result.bits is None:
        return Attribution(
            Verdict.OWNER_UNKNOWN, num_codes=m, reason="the kit decodes no bits to attribute"
        )
    value = parse_code(result.bits, book.num_bits)
    if m == 0:
        return Attribution(
            Verdict.OWNER_UNKNOWN, decoded=result.bits, num_codes=0,
            reason=f"no codes are registered for kit {book.kit!r}",
        )  # fmt: skip
    weights = bit_weights(result, book.num_bits) if weighted else np.ones(book.num_bits)
    differ = book.disagreements(value)  # (M, n)
    far = differ @ weights  # (M,) weighted distance to every code
    nearest_at = np.flatnonzero(far <= far.min() + 1e-9 * max(float(weights.sum()), 1.0))
    nearest = [book.codes[i] for i in nearest_at]
    d = int(differ[nearest_at[0]].sum())
    p = weighted_match_p_value(weights, float(far.min()), m)
    how = " (bits weighted by the detector's confidence)" if np.ptp(weights) > 0 else ""
    common = {"decoded": result.bits, "distance": d, "p_value": p, "num_codes": m}
    owners = tuple(sorted({c.owner for c in nearest}))
    if len(owners) > 1:
        return Attribution(
            Verdict.OWNER_UNKNOWN, **common, tied_owners=owners,
            reason=f"codes of {len(owners)} owners are equally near, {d} bits away",
        )  # fmt: skip
    if p > confidence:
        return Attribution(
            Verdict.OWNER_UNKNOWN, **common,
            reason=(
                f"the nearest registered code is {d} of {book.num_bits} bits away; an unsigned "
                f"bit string gets this close{how} with p={p:.2g} > {confidence:g}"
            ),
        )  # fmt: skip
    hit = nearest[0]
    return Attribution(
        Verdict.ATTRIBUTED, owner=hit.owner, model=hit.model, code=hit.code,
        code_status=hit.status, **common,
        reason=f"{d} of {book.num_bits} bits differ from {hit.owner}'s code{how} (p={p:.2g})",
    )  # fmt: skip


def attribute_files(
    kit: Kit,
    files: Sequence[Path],
    book: CodeBook,
    *,
    fpr: float = 1e-3,
    confidence: float = DEFAULT_CONFIDENCE,
    batch_size: int = 16,
    progress: bool = False,
) -> list[tuple[DetectionResult, Attribution]]:
    """Detect every file with ``kit``, then attribute each signed one; unreadable files are
    "not signed" with the detection result's ``error`` set."""
    from advsig.detection import detect_files

    if kit.num_bits != book.num_bits:
        raise ConfigError(f"kit decodes {kit.num_bits} bits, code book has {book.num_bits}")
    results = detect_files(kit, files, fpr=fpr, batch_size=batch_size, progress=progress)
    return [(r, attribute(r, book, confidence=confidence)) for r in results]


def detection_json(result: DetectionResult) -> dict:
    """``result`` as ``advsig detect --json`` prints it: ``to_json_dict`` with NaN as null."""
    d = result.to_json_dict()
    for key, value in d.items():
        if isinstance(value, float) and math.isnan(value):
            d[key] = None
    return d


def attribution_json(
    result: DetectionResult, attribution: Attribution | None, *, public: bool = False
) -> dict:
    """One image's answer: the ``advsig detect --json`` fields, ``owner`` and ``attribution``.

    ``public`` (the HTTP service) gives :meth:`Attribution.public_json_dict`, else everything.
    An image that could not be read (``result.error``) has null ``owner`` and ``attribution``.
    """
    if result.error is not None or attribution is None:
        return {**detection_json(result), "owner": None, "attribution": None}
    detail = attribution.public_json_dict() if public else attribution.to_json_dict()
    detail.pop("owner")  # given once, at the top level
    return {**detection_json(result), "owner": attribution.owner, "attribution": detail}
