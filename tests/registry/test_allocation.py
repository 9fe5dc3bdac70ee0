"""Code allocation: distances kept, repeatable, exhaustion proved, safe across processes."""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import random
import signal
import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from advsig.errors import ConfigError
from advsig.registry.allocation import (
    allocate_code,
    allocate_code_in,
    bch_encode,
    bch_spec,
    find_code,
    hamming,
)
from advsig.registry.db import Registry, open_registry
from advsig.registry.errors import CodeSpaceExhaustedError, OwnerNotFoundError
from advsig.registry.models import Code
from advsig.registry.names import default_actor
from advsig.registry.owners import add_owner, list_codes, list_owners, revoke_code

CTX = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()


def _values(reg: Registry, kit: str = "k") -> list[int]:
    return [int(c.code, 16) for c in list_codes(reg, kit=kit)]


def _assert_min_distance(values: list[int], d: int) -> None:
    assert len(set(values)) == len(values)
    for a, b in itertools.combinations([0, *values], 2):  # 0 is reserved
        assert hamming(a, b) >= d, (f"{a:x}", f"{b:x}")


def test_codes_keep_their_distance_and_are_repeatable(registry: Registry):
    add_owner(registry, "acme")
    allocs = [
        allocate_code(registry, "acme", kit="k", num_bits=16, min_distance=5, seed=i)
        for i in range(12)
    ]
    _assert_min_distance(_values(registry), 5)
    assert all(a.nearest_distance >= 5 and len(a.code) == 4 for a in allocs)
    # The same seed on an empty kit gives the same first code.
    add_owner(registry, "beta")
    again = allocate_code(registry, "beta", kit="other", num_bits=16, min_distance=5, seed=0)
    assert again.code == allocs[0].code


def test_codes_of_models_record_who_assigned_them(registry: Registry):
    before = datetime.now(timezone.utc)
    add_owner(registry, "acme", created_by="carol")
    a = allocate_code(registry, "acme", kit="k", num_bits=16, model="gen-v1", seed=0,
                      assigned_by="alice")  # fmt: skip
    b = allocate_code(registry, "acme", kit="k", num_bits=16, model="gen-v1", seed=1)
    c = allocate_code(registry, "acme", kit="k", num_bits=16, seed=2)
    assert (a.model, a.assigned_by) == ("gen-v1", "alice")
    assert (b.model, b.assigned_by) == ("gen-v1", default_actor())
    assert c.model is None and before <= a.created_at <= b.created_at <= c.created_at
    (owner,) = list_owners(registry)
    assert owner.created_by == "carol" and owner.created_at >= before
    assert [(m.name, m.created_by) for m in owner.models] == [("gen-v1", "alice")]  # made once
    assert [(x.model, x.assigned_by) for x in owner.codes] == [
        ("gen-v1", "alice"),
        ("gen-v1", default_actor()),
        (None, default_actor()),
    ]
    # The same model name under another owner is another model.
    add_owner(registry, "beta")
    d = allocate_code(registry, "beta", kit="k", num_bits=16, model="gen-v1", seed=3)
    assert d.model == "gen-v1" and len(list_owners(registry, owner="beta")[0].models) == 1
    with pytest.raises(ConfigError, match="model name"):
        allocate_code(registry, "beta", kit="k", num_bits=16, model="  ", seed=4)
    with pytest.raises(ConfigError, match="actor"):
        allocate_code(registry, "beta", kit="k", num_bits=16, assigned_by="", seed=4)


def test_exhaustion_is_proved_by_enumeration(registry: Registry):
    """8 bits at distance 5: a handful of codes fit; then every candidate is shown taken."""
    add_owner(registry, "acme")
    got = []
    with pytest.raises(CodeSpaceExhaustedError, match="all 256 candidates were checked"):
        for i in range(256):
            got.append(allocate_code(registry, "acme", kit="k", num_bits=8, min_distance=5, seed=i))
    values = _values(registry)
    _assert_min_distance(values, 5)
    assert 1 <= len(values) == len(got) <= 3  # A(8, 5) = 4 codewords, one being the reserved 0
    free = [v for v in range(256) if all(hamming(v, u) >= 5 for u in [0, *values])]
    assert free == []


def test_systematic_strategy_is_the_greedy_lexicode():
    taken: list[int] = []
    for _ in range(15):
        value, _, _ = find_code(
            taken, num_bits=7, min_distance=3, strategy="systematic", rng=random.Random(0)
        )
        taken.append(value)
    assert len(taken) == 15  # with the reserved 0: the 16 words of the Hamming(7, 4) code
    _assert_min_distance(taken, 3)
    with pytest.raises(CodeSpaceExhaustedError):
        find_code(taken, num_bits=7, min_distance=3, strategy="systematic", rng=random.Random(0))


def test_bch_strategy_allocates_codewords():
    spec = bch_spec(8, 3)  # BCH(15, 11) shortened by 7: [8, 4, >=3]
    assert (spec.parent_n, spec.message_bits) == (15, 4)
    import numpy as np

    words = set(bch_encode(np.arange(16), 8, 3).tolist())
    taken: list[int] = []
    for i in range(15):
        value, _, _ = find_code(
            taken, num_bits=8, min_distance=3, strategy="bch", rng=random.Random(i)
        )
        taken.append(value)
    assert set(taken) == words - {0}
    _assert_min_distance(taken, 3)
    with pytest.raises(CodeSpaceExhaustedError, match="all 16 candidates"):
        find_code(taken, num_bits=8, min_distance=3, strategy="bch", rng=random.Random(0))
    with pytest.raises(ConfigError, match="no BCH code of length 8"):
        bch_spec(8, 7)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"strategy": "gray"}, "strategy must be one of"),
        ({"min_distance": 0}, r"min_distance must be in \[1, 8\]"),
        ({"min_distance": 9}, "got 9"),
    ],
)
def test_bad_options_are_named(kwargs: dict, match: str):
    opts = {"num_bits": 8, "min_distance": 2, "strategy": "random", **kwargs}
    with pytest.raises(ConfigError, match=match):
        find_code([], rng=random.Random(0), **opts)


def test_unknown_owner_and_mixed_lengths_are_refused(registry: Registry):
    with pytest.raises(OwnerNotFoundError, match="'nobody'"):
        allocate_code(registry, "nobody", kit="k", num_bits=8, seed=0)
    add_owner(registry, "acme")
    allocate_code(registry, "acme", kit="k", num_bits=8, seed=0)
    with pytest.raises(ConfigError, match="8-bit codes registered, not 16-bit"):
        allocate_code(registry, "acme", kit="k", num_bits=16, seed=0)


def test_unique_constraint_backs_the_check(registry: Registry):
    add_owner(registry, "acme")
    a = allocate_code(registry, "acme", kit="k", num_bits=16, seed=0)
    with pytest.raises(IntegrityError), registry.write() as s:
        owner_id = s.scalar(select(Code.owner_id))
        s.add(Code(owner_id=owner_id, kit="k", num_bits=16, value=a.code, min_distance=1,
                   strategy="random", status="active", assigned_by="x"))  # fmt: skip


def test_revoked_codes_stay_reserved(registry: Registry):
    add_owner(registry, "acme")
    a = allocate_code(registry, "acme", kit="k", num_bits=8, min_distance=5, seed=0)
    info = revoke_code(registry, "0x" + a.code.upper(), kit="k", revoked_by="bob")
    assert info.status == "revoked" and info.revoked_at is not None and info.revoked_by == "bob"
    again = revoke_code(registry, a.code, kit="k", revoked_by="eve")  # no change
    assert (again.revoked_at, again.revoked_by) == (info.revoked_at, "bob")
    # The revoked code still counts: a fresh allocation keeps its distance from it.
    for i in range(3):
        try:
            b = allocate_code(registry, "acme", kit="k", num_bits=8, min_distance=5, seed=i)
        except CodeSpaceExhaustedError:
            break
        assert hamming(int(b.code, 16), int(a.code, 16)) >= 5


# --------------------------------------------------------------------------- processes
def _allocate_until_full(url: str, worker: int, start, out) -> None:
    """Allocate 16-bit codes at distance 7 until none is left.

    Why these numbers: a random code lands within 6 bits of another with probability ~23%, so
    two writers that read the same codes would soon insert two codes too close to each other.
    The search is slowed by 5 ms to widen the window between reading the codes and committing.
    Each process runs until no code is left, so both see the space fill up.
    """
    import advsig.registry.allocation as alloc

    real_find = alloc.find_code

    def slow_find(*args, **kwargs):
        found = real_find(*args, **kwargs)
        time.sleep(0.005)
        return found

    alloc.find_code = slow_find  # this forked child only
    codes = []
    try:
        with open_registry(url, migrate=False) as reg:
            list_codes(reg)  # connected and warm before the race starts
            start.wait(30)
            for i in itertools.count():
                seed = 1000 * worker + i
                codes.append(
                    allocate_code(reg, "acme", kit="k", num_bits=16, min_distance=7, seed=seed).code
                )
                time.sleep(0.005)  # SQLite's busy handler is not fair: let the other one in
    except CodeSpaceExhaustedError:
        out.put(("ok", codes))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        out.put(("error", repr(exc)))


def test_two_processes_allocate_concurrently_without_conflict(db_url: str):
    with open_registry(db_url) as reg:
        add_owner(reg, "acme")
    start, out = CTX.Barrier(2), CTX.Queue()
    procs = [CTX.Process(target=_allocate_until_full, args=(db_url, w, start, out)) for w in (1, 2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert all(kind == "ok" for kind, _ in results), results
    with open_registry(db_url) as reg:
        values = _values(reg)
    assert len(values) == sum(len(codes) for _, codes in results)
    _assert_min_distance(values, 7)


def _commit_one_then_hang(url: str, ready) -> None:
    with open_registry(url, migrate=False) as reg:
        allocate_code(reg, "acme", kit="k", num_bits=16, min_distance=4, seed=1)
        with reg.write(lock_codes=True) as s:
            rng = random.Random(2)
            for _ in range(20):
                allocate_code_in(s, "acme", kit="k", num_bits=16, min_distance=4, rng=rng)
            s.flush()
            ready.set()
            time.sleep(120)  # killed here, in the middle of an uncommitted write


def _allocate_forever(url: str, ready) -> None:
    with open_registry(url, migrate=False) as reg:
        for i in itertools.count():
            allocate_code(reg, "acme", kit="k", num_bits=16, min_distance=3, seed=i)
            if i == 3:
                ready.set()


def _check_consistent(url: str) -> list[int]:
    with open_registry(url) as reg:
        if reg.backend == "sqlite":
            with reg.read() as s:
                assert s.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        with reg.read() as s:
            assert s.scalar(select(func.count(Code.id)).where(Code.owner_id.is_(None))) == 0
        # The lock is gone with the process: a new write goes through at once.
        t0 = time.monotonic()
        allocate_code(reg, "acme", kit="fresh", num_bits=16, seed=0)
        assert time.monotonic() - t0 < 10
        return _values(reg)


@pytest.mark.parametrize("target", ["mid-transaction", "commit-loop"])
def test_kill_9_during_a_write_leaves_a_consistent_database(db_url: str, target: str):
    with open_registry(db_url) as reg:
        add_owner(reg, "acme")
    ready = CTX.Event()
    fn = _commit_one_then_hang if target == "mid-transaction" else _allocate_forever
    proc = CTX.Process(target=fn, args=(db_url, ready))
    proc.start()
    try:
        assert ready.wait(60), "the writer never got going"
        if target == "commit-loop":
            time.sleep(0.3)  # let it commit and start more transactions, then kill anywhere
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
    finally:
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
    assert proc.exitcode == -signal.SIGKILL
    values = _check_consistent(db_url)
    if target == "mid-transaction":
        assert len(values) == 1  # the committed code; none of the 20 uncommitted ones
    else:
        assert len(values) >= 4
        _assert_min_distance(values, 3)
