"""Assigning codes to owners (and their models) so that no two codes of a kit are close.

Why a distance: the detector decodes bits with errors (crops, JPEG...). Codes at distance >= d
from each other let attribution tolerate up to (d - 1) // 2 flipped bits before an image could
look closer to another owner's code.

Three strategies, all repeatable from an explicit seed:

* ``random``: uniformly random candidates, each checked against every code of the kit;
* ``systematic``: the smallest free value (a greedy lexicode), for small codes only;
* ``bch``: codewords of a BCH code (via the ``galois`` package), so that at least 2^k owners
  fit at the code's minimum distance; candidates are still checked against the registered codes.

The all-zeros code is reserved: it is what ``advsig sign`` embeds when no code is given, so it is
never allocated, and allocated codes keep ``min_distance`` from it too.

When random candidates run out, a code space of at most 2^ENUMERATION_MAX_BITS values is
enumerated, so "no code left" is proved, not guessed.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from advsig.errors import ConfigError
from advsig.registry.db import Registry
from advsig.registry.errors import CodeSpaceExhaustedError, OwnerNotFoundError
from advsig.registry.models import Code, Owner, OwnerModel
from advsig.registry.names import check_actor, check_name

logger = logging.getLogger(__name__)

STRATEGIES = ("random", "systematic", "bch")
RESERVED_CODES = (0,)  # the default code of `advsig sign` without --code
ENUMERATION_MAX_BITS = 20  # up to 2^20 candidates are checked exhaustively (about a second)
DEFAULT_MAX_TRIES = 20_000
WRITE_RETRIES = 5


@dataclass(frozen=True)
class Allocation:
    """A code just registered to an owner.

    Attributes:
        owner: owner name.
        model: the owner's model the code identifies, None for a code of the owner itself.
        kit: the kit label the code is registered under.
        code: hex, zero-padded to ceil(num_bits / 4) digits, most significant bit first.
        num_bits: code length.
        min_distance: the distance required from every other code of the kit.
        nearest_distance: the actual distance to the closest other code (reserved included).
        strategy: "random", "systematic" or "bch".
        tries: candidates examined.
        created_at: when it was registered (UTC).
        assigned_by: who registered it (OS user, or ``api-key:<name>`` for the service).
    """

    owner: str
    model: str | None
    kit: str
    code: str
    num_bits: int
    min_distance: int
    nearest_distance: int
    strategy: str
    tries: int
    created_at: datetime
    assigned_by: str

    def to_json_dict(self) -> dict:
        return {
            "owner": self.owner, "model": self.model, "kit": self.kit, "code": self.code,
            "num_bits": self.num_bits, "min_distance": self.min_distance,
            "nearest_distance": self.nearest_distance, "strategy": self.strategy,
            "tries": self.tries, "created_at": self.created_at.isoformat(),
            "assigned_by": self.assigned_by,
        }  # fmt: skip


def to_hex(value: int, num_bits: int) -> str:
    """int -> zero-padded lowercase hex, as ``advsig.codes.bits.bits_to_hex`` writes it."""
    return f"{value:0{(num_bits + 3) // 4}x}"


def parse_code(code: str, num_bits: int) -> int:
    """Hex code -> int, refusing values that do not fit in ``num_bits`` bits."""
    from advsig.errors import CodeError

    text = code.strip().lower().removeprefix("0x")
    try:
        value = int(text, 16)
    except ValueError:
        raise CodeError(f"code {code!r} is not a hexadecimal number") from None
    if value < 0 or value >= 1 << num_bits:
        raise CodeError(f"code {code!r} does not fit in {num_bits} bits")
    return value


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def default_min_distance(num_bits: int) -> int:
    """A quarter of the bits: tolerates num_bits / 8 flipped bits per image."""
    return max(1, num_bits // 4)


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (so Hamming distances are popcount(a ^ b))."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    as_bytes = x.view(np.uint8).reshape(*x.shape, 8)
    return np.unpackbits(as_bytes, axis=-1).sum(axis=-1)


class _CodeSet:
    """Registered values with a fast "distance to the nearest" for num_bits <= 64."""

    def __init__(self, values: list[int], num_bits: int) -> None:
        self.num_bits = num_bits
        self.values = values
        self.array = np.array(values, dtype=np.uint64) if num_bits <= 64 else None

    def nearest(self, candidate: int) -> int:
        if not self.values:
            return self.num_bits + 1
        if self.array is not None:
            return int(popcount(self.array ^ np.uint64(candidate)).min())
        return min(hamming(candidate, v) for v in self.values)

    def nearest_all(self, candidates: np.ndarray) -> np.ndarray:
        """Distance from each candidate (uint64 array) to its nearest registered value."""
        out = np.full(len(candidates), self.num_bits + 1, dtype=np.int64)
        for v in self.values:
            np.minimum(out, popcount(candidates ^ np.uint64(v)), out=out)
        return out


# ----------------------------------------------------------------------------- BCH
@dataclass(frozen=True)
class BchSpec:
    """A (possibly shortened) binary BCH code whose codewords are ``num_bits`` long.

    Lengths: BCH codes have length n = 2^m - 1 (7, 15, 31, 63, 127...). Other lengths use the
    code of the next such n, shortened by s = n - num_bits (the first s message bits fixed to
    0 and dropped), which keeps the minimum distance: [num_bits, k - s, >= d].
    """

    num_bits: int
    message_bits: int
    design_distance: int
    parent_n: int
    parent_k: int


def bch_spec(num_bits: int, min_distance: int) -> BchSpec:
    """The BCH code with the most messages whose design distance is at least ``min_distance``."""
    code = _bch(num_bits, min_distance)
    shorten = code.n - num_bits
    return BchSpec(num_bits, code.k - shorten, int(code.d), int(code.n), int(code.k))


@lru_cache(maxsize=16)
def _bch(num_bits: int, min_distance: int):
    """galois.BCH of the next length 2^m - 1 >= ``num_bits``, design distance >= min_distance."""
    if not 3 <= num_bits <= 64:
        raise ConfigError(f"BCH codes here need 3 to 64 bits, the kit has {num_bits}")
    try:
        import galois
    except ImportError as exc:  # pragma: no cover - galois is a dependency
        raise ConfigError(
            f"the bch strategy needs the galois package ({exc}): pip install 'advsig[bch]'"
        ) from None
    n = 2 ** max(3, math.ceil(math.log2(num_bits + 1))) - 1
    shorten = n - num_bits
    d = max(min_distance, 3)  # d <= 2 gets the Hamming code, the smallest BCH code
    # Pure-Python field arithmetic: building the code takes milliseconds instead of the
    # seconds numba needs to compile the default kernels (encoding runs in GF(2) either way).
    field = galois.GF(2 ** round(math.log2(n + 1)), compile="python-calculate")
    code = galois.BCH(n, d=d, extension_field=field) if d <= n else None
    if code is None or code.k - shorten < 1:
        raise ConfigError(
            f"no BCH code of length {num_bits} (shortened from {n}) reaches distance "
            f"{min_distance} with at least one message bit; lower --min-distance"
        )
    return code


def bch_encode(messages: np.ndarray, num_bits: int, min_distance: int) -> np.ndarray:
    """Codewords (uint64, ``num_bits`` bits MSB first) of messages of ``message_bits`` bits."""
    import galois

    code = _bch(num_bits, min_distance)
    k = code.k - (code.n - num_bits)
    messages = np.asarray(messages, dtype=np.uint64).reshape(-1)
    shifts = np.arange(k - 1, -1, -1, dtype=np.uint64)
    out = np.empty(len(messages), dtype=np.uint64)
    weights = np.uint64(1) << np.arange(num_bits - 1, -1, -1, dtype=np.uint64)
    for start in range(0, len(messages), 1 << 14):  # bounded memory for 2^20 messages
        chunk = messages[start : start + (1 << 14)]
        bits = ((chunk[:, None] >> shifts[None]) & np.uint64(1)).astype(np.int64)  # (b, k)
        words = np.asarray(code.encode(galois.GF2(bits)), dtype=np.uint64)  # (b, num_bits)
        out[start : start + len(chunk)] = (words * weights[None]).sum(axis=1, dtype=np.uint64)
    return out


# ----------------------------------------------------------------------------- search
def find_code(
    existing: list[int],
    *,
    num_bits: int,
    min_distance: int,
    strategy: str = "random",
    rng: random.Random,
    max_tries: int = DEFAULT_MAX_TRIES,
) -> tuple[int, int, int]:
    """A value at distance >= ``min_distance`` from every value in ``existing`` and the reserved.

    Returns (value, distance to the nearest, candidates tried). Raises
    :class:`CodeSpaceExhaustedError` when none is found, saying whether that was proved.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if num_bits < 1:
        raise ConfigError(f"num_bits must be at least 1, got {num_bits!r}")
    if not 1 <= min_distance <= num_bits:
        raise ConfigError(f"min_distance must be in [1, {num_bits}], got {min_distance!r}")
    taken = _CodeSet([*RESERVED_CODES, *existing], num_bits)
    if strategy == "bch":
        spec = bch_spec(num_bits, min_distance)
        space_bits = spec.message_bits

        def make(message: int) -> int:
            return int(bch_encode(np.array([message]), num_bits, min_distance)[0])

    else:
        space_bits = num_bits

        def make(message: int) -> int:
            return message

    tries = 0
    if strategy != "systematic":
        for _ in range(min(max_tries, 1 << space_bits)):
            tries += 1
            value = make(rng.getrandbits(space_bits))
            dist = taken.nearest(value)
            if dist >= min_distance:
                return value, dist, tries
    if space_bits > ENUMERATION_MAX_BITS:
        if strategy == "systematic":
            raise ConfigError(
                f"systematic allocation enumerates all 2^{num_bits} codes; use it for at most "
                f"{ENUMERATION_MAX_BITS} bits, or the random or bch strategy"
            )
        raise CodeSpaceExhaustedError(
            f"no {num_bits}-bit code at distance >= {min_distance} from the {len(existing)} "
            f"registered codes after {tries} random candidates (not proved: 2^{space_bits} "
            "candidates are too many to enumerate); lower --min-distance or use a new kit"
        )
    # Exhaustive: every candidate in increasing order; the first that fits, or a proof of none.
    if num_bits > 64:
        raise ConfigError(f"codes longer than 64 bits cannot be enumerated, got {num_bits}")
    values = np.arange(1 << space_bits, dtype=np.uint64)
    if strategy == "bch":
        values = bch_encode(values, num_bits, min_distance)
    dists = taken.nearest_all(values)
    ok = np.flatnonzero(dists >= min_distance)
    tries += len(values) if len(ok) == 0 else int(ok[0]) + 1
    if len(ok) == 0:
        raise CodeSpaceExhaustedError(
            f"no {num_bits}-bit code is at distance >= {min_distance} from the "
            f"{len(existing)} registered codes and the reserved all-zeros code: all "
            f"{len(values)} candidates were checked"
        )
    return int(values[ok[0]]), int(dists[ok[0]]), tries


def get_or_create_model(
    session: Session, owner: Owner, name: str, *, created_by: str
) -> OwnerModel:
    """``owner``'s model called ``name``, created (by ``created_by``) if it is new.

    Runs inside the caller's write transaction, so concurrent writers create it once.
    """
    name = check_name(name, "model")
    row = session.scalar(
        select(OwnerModel).where(OwnerModel.owner_id == owner.id, OwnerModel.name == name)
    )
    if row is None:
        row = OwnerModel(owner=owner, name=name, created_by=created_by)
        session.add(row)
        session.flush()
    return row


def allocate_code_in(
    session: Session,
    owner: str,
    *,
    kit: str,
    num_bits: int,
    model: str | None = None,
    min_distance: int | None = None,
    strategy: str = "random",
    rng: random.Random,
    max_tries: int = DEFAULT_MAX_TRIES,
    assigned_by: str | None = None,
) -> Allocation:
    """Allocate inside ``session``'s transaction, which must hold the write lock
    (:meth:`Registry.write` with ``lock_codes=True``); nothing is committed here."""
    d = default_min_distance(num_bits) if min_distance is None else min_distance
    actor = check_actor(assigned_by)
    model = None if model is None else check_name(model, "model")
    row = session.scalar(select(Owner).where(Owner.name == owner))
    if row is None:
        raise OwnerNotFoundError(
            f"owner {owner!r} is not registered; add it with: advsig registry add-owner {owner}"
        )
    registered = session.scalars(select(Code).where(Code.kit == kit)).all()
    for c in registered:
        if c.num_bits != num_bits:
            raise ConfigError(
                f"kit {kit!r} has {c.num_bits}-bit codes registered, not {num_bits}-bit ones"
            )
    existing = [int(c.value, 16) for c in registered]
    value, nearest, tries = find_code(
        existing, num_bits=num_bits, min_distance=d, strategy=strategy, rng=rng,
        max_tries=max_tries,
    )  # fmt: skip
    model_row = None
    if model is not None:
        model_row = get_or_create_model(session, row, model, created_by=actor)
    code = Code(
        owner=row, model=model_row, kit=kit, num_bits=num_bits, value=to_hex(value, num_bits),
        min_distance=d, strategy=strategy, status="active", assigned_by=actor,
    )  # fmt: skip
    session.add(code)
    session.flush()  # the UNIQUE(kit, value) constraint fires here, inside the transaction
    return Allocation(
        owner, model_row.name if model_row else None, kit, code.value, num_bits, d, nearest,
        strategy, tries, code.created_at, actor,
    )  # fmt: skip


def allocate_code(
    registry: Registry,
    owner: str,
    *,
    kit: str,
    num_bits: int,
    model: str | None = None,
    min_distance: int | None = None,
    strategy: str = "random",
    seed: int | None = None,
    max_tries: int = DEFAULT_MAX_TRIES,
    assigned_by: str | None = None,
) -> Allocation:
    """Register a new code for ``owner`` (or for its ``model``, created if new) under ``kit``,
    safe against concurrent allocators.

    ``assigned_by`` is recorded with the code (default: the OS user). ``seed`` makes the
    candidate sequence repeatable (None: from the OS). The check and the
    insert run in one transaction holding the write lock; a lock timeout or a lost race on the
    UNIQUE constraint is retried a few times with a fresh read.

    Example:
        >>> reg = open_registry("sqlite:///registry.sqlite3")
        >>> allocate_code(reg, "acme", kit="base", num_bits=32, model="gen-v2", seed=0).code
        '...'
    """
    rng = random.Random(seed)
    for attempt in range(WRITE_RETRIES):
        try:
            with registry.write(lock_codes=True) as session:
                return allocate_code_in(
                    session, owner, kit=kit, num_bits=num_bits, model=model,
                    min_distance=min_distance, strategy=strategy, rng=rng, max_tries=max_tries,
                    assigned_by=assigned_by,
                )  # fmt: skip
        except (OperationalError, IntegrityError) as exc:
            if attempt == WRITE_RETRIES - 1:
                raise
            logger.warning("allocation attempt %d failed (%s); retrying", attempt + 1, exc.orig)
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover
