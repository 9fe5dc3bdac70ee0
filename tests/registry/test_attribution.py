"""Attribution: the p-value formula, and the three verdicts on results with known bits."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from advsig.errors import ConfigError
from advsig.registry.allocation import allocate_code, to_hex
from advsig.registry.attribution import (
    CodeBook,
    RegisteredCode,
    Verdict,
    attribute,
    match_p_value,
    weighted_match_p_value,
)
from advsig.registry.owners import add_owner, revoke_code
from advsig.types import DetectionResult


def _result(
    bits: str | None, *, signed: bool = True, confidence: tuple[float, ...] = ()
) -> DetectionResult:
    return DetectionResult(
        is_signed=signed, score=5.0, p_value=1e-6, threshold=1.0, fpr=1e-3, bits=bits,
        bit_confidence=confidence,
    )  # fmt: skip


def _flip(value: int, n_flips: int, num_bits: int, rng: random.Random) -> int:
    for i in rng.sample(range(num_bits), n_flips):
        value ^= 1 << i
    return value


def test_p_value_matches_enumeration_for_one_code():
    n = 10
    for d in range(n + 1):
        within = sum(1 for v in range(2**n) if v.bit_count() <= d)
        assert match_p_value(n, d, 1) == pytest.approx(within / 2**n)


def test_p_value_for_many_codes_is_the_complement_of_missing_all():
    q = sum(math.comb(32, i) for i in range(5)) / 2**32
    assert match_p_value(32, 4, 1000) == pytest.approx(1 - (1 - q) ** 1000, rel=1e-9)
    assert match_p_value(32, 4, 1000) <= 1000 * q  # never above the union bound
    assert match_p_value(32, 32, 5) == 1.0 and match_p_value(32, 0, 0) == 1.0


def test_p_value_matches_a_simulation_of_unsigned_bits():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 2**16, size=20, dtype=np.uint64)
    book = CodeBook("k", 16, [RegisteredCode(int(v), to_hex(int(v), 16), "o", "active")
                              for v in codes])  # fmt: skip
    draws = rng.integers(0, 2**16, size=20_000)
    hits = np.mean([book.distances(int(v)).min() <= 3 for v in draws])
    assert hits == pytest.approx(match_p_value(16, 3, 20), abs=0.02)


@pytest.fixture
def book_and_codes(sqlite_url: str):
    from advsig.registry.db import open_registry

    with open_registry(sqlite_url) as reg:
        owners = [f"owner{i}" for i in range(50)]
        for o in owners:
            add_owner(reg, o)
        codes = {
            o: allocate_code(
                reg, o, kit="base", num_bits=32, min_distance=8, seed=i,
                model="gen" if o == "owner1" else None,
            ).code
            for i, o in enumerate(owners)
        }  # fmt: skip
        revoke_code(reg, codes["owner7"], kit="base")
        yield CodeBook.load(reg, kit="base", num_bits=32), codes


def test_exact_and_noisy_codes_are_attributed(book_and_codes):
    book, codes = book_and_codes
    rng = random.Random(0)
    for owner, code in itertools.islice(codes.items(), 10):
        noisy = _flip(int(code, 16), 3, 32, rng)
        for bits in (code, to_hex(noisy, 32)):
            a = attribute(_result(bits), book)
            assert a.verdict is Verdict.ATTRIBUTED and a.owner == owner and a.code == code
            assert a.p_value < 1e-3 and a.num_codes == 50
    revoked = attribute(_result(codes["owner7"]), book)
    assert revoked.owner == "owner7" and revoked.code_status == "revoked"
    with_model = attribute(_result(codes["owner1"]), book)
    assert (with_model.owner, with_model.model) == ("owner1", "gen")
    assert attribute(_result(codes["owner2"]), book).model is None


def test_random_bits_get_owner_unknown(book_and_codes):
    book, _ = book_and_codes
    rng = random.Random(1)
    verdicts = [attribute(_result(to_hex(rng.getrandbits(32), 32)), book) for _ in range(500)]
    wrong = [a for a in verdicts if a.verdict is Verdict.ATTRIBUTED]
    assert len(wrong) <= 2  # expected about 500 * 1e-3
    unknown = next(a for a in verdicts if a.verdict is Verdict.OWNER_UNKNOWN)
    assert unknown.owner is None and "p=" in unknown.reason and unknown.p_value > 1e-3
    # The reason is shown to service clients: it names no registered code.
    for a in verdicts:
        if a.verdict is Verdict.OWNER_UNKNOWN:
            assert not any(c.code in a.reason for c in book.codes)


def test_not_signed_and_edge_cases(book_and_codes):
    book, codes = book_and_codes
    assert attribute(_result(None, signed=False), book).verdict is Verdict.NOT_SIGNED
    empty = CodeBook("base", 32, [])
    a = attribute(_result(next(iter(codes.values()))), empty)
    assert a.verdict is Verdict.OWNER_UNKNOWN and "no codes are registered" in a.reason
    with pytest.raises(ConfigError, match="confidence"):
        attribute(_result("00"), book, confidence=0)
    # A stricter confidence turns a noisy match into "owner unknown".
    code = codes["owner3"]
    noisy = to_hex(_flip(int(code, 16), 4, 32, random.Random(2)), 32)
    assert attribute(_result(noisy), book).verdict is Verdict.ATTRIBUTED
    strict = attribute(_result(noisy), book, confidence=1e-12)
    assert strict.verdict is Verdict.OWNER_UNKNOWN


def test_equally_near_owners_are_not_guessed():
    book = CodeBook("k", 8, [
        RegisteredCode(0b00001111, "0f", "a", "active"),
        RegisteredCode(0b11110000, "f0", "b", "active"),
    ])  # fmt: skip
    a = attribute(_result("3c"), book, confidence=0.9)  # 00111100: 4 bits from each
    assert a.verdict is Verdict.OWNER_UNKNOWN and a.tied_owners == ("a", "b")
    assert "2 owners are equally near" in a.reason
    public = a.public_json_dict()
    assert "tied_owners" not in public and "a" not in public["reason"].split()
    assert "num_codes" not in public and "code" not in public


def test_weighted_p_value_is_hamming_for_equal_weights_and_never_below_the_exact_one():
    for n in (8, 16, 32, 48):
        for d in range(0, n + 1, 3):
            assert weighted_match_p_value(np.full(n, 2.5), 2.5 * d, 7) == pytest.approx(
                match_p_value(n, d, 7), rel=1e-9, abs=1e-15
            )
    rng = np.random.default_rng(0)
    outcomes = np.array(list(itertools.product((0, 1), repeat=12)))  # all 2^12 coin flips
    for _ in range(30):
        w = rng.exponential(2.0, 12)
        dist = rng.uniform(0, w.sum())
        exact = float(np.mean(outcomes @ w <= dist))
        slack = float(np.mean(outcomes @ w <= dist + w.sum() * 12 / 2**14))
        assert exact - 1e-12 <= weighted_match_p_value(w, dist, 1) <= slack + 1e-12


def _confidences(rng: np.random.Generator, n: int) -> tuple[float, ...]:
    """Confidences spread like a detector's after light processing: many sure bits, some not."""
    logits = np.abs(rng.normal(0.0, 4.0, n))
    return tuple(float(c) for c in 1 / (1 + np.exp(-logits)))


def test_weighted_attribution_of_random_bits_keeps_the_stated_rate(book_and_codes):
    """Unsigned bit strings with arbitrary confidences: p <= alpha at most about alpha often."""
    book, _ = book_and_codes
    rng = np.random.default_rng(3)
    ps = []
    for _ in range(2000):
        bits = to_hex(int(rng.integers(0, 2**32)), 32)
        ps.append(attribute(_result(bits, confidence=_confidences(rng, 32)), book).p_value)
    ps = np.array(ps)
    for alpha in (0.01, 0.1, 0.5):
        assert np.mean(ps <= alpha) <= alpha + 3 * np.sqrt(alpha / 2000)


def test_flips_on_unsure_bits_are_forgiven_and_flips_on_sure_bits_are_not(book_and_codes):
    book, codes = book_and_codes
    code = int(codes["owner4"], 16)
    flipped = random.Random(5).sample(range(32), 6)  # bit positions, LSB = 0
    noisy = to_hex(_flip_at(code, flipped), 32)
    msb_first = {31 - i for i in flipped}
    unsure = tuple(0.55 if i in msb_first else 0.999 for i in range(32))
    sure = tuple(0.999 if i in msb_first else 0.9 for i in range(32))
    hamming = attribute(_result(noisy, confidence=unsure), book, weighted=False)
    assert hamming.verdict is Verdict.OWNER_UNKNOWN and hamming.distance == 6
    forgiven = attribute(_result(noisy, confidence=unsure), book)
    assert forgiven.verdict is Verdict.ATTRIBUTED and forgiven.owner == "owner4"
    assert forgiven.distance == 6 and "weighted" in forgiven.reason and forgiven.p_value < 1e-3
    assert attribute(_result(noisy, confidence=sure), book).verdict is Verdict.OWNER_UNKNOWN


def _flip_at(value: int, positions: list[int]) -> int:
    for i in positions:
        value ^= 1 << i
    return value
