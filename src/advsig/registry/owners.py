"""Owners, their models and their codes: add, list, revoke. Allocation lives in ``allocation.py``.

Every write records who made it: ``created_by`` / ``assigned_by`` / ``revoked_by`` default to
:func:`default_actor` (the OS user) and the service passes ``api-key:<key name>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from advsig.registry.allocation import parse_code, to_hex
from advsig.registry.db import Registry
from advsig.registry.errors import CodeNotFoundError, DuplicateOwnerError, OwnerNotFoundError
from advsig.registry.models import Code, Owner, utcnow
from advsig.registry.names import check_actor, check_name


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


@dataclass(frozen=True)
class ModelInfo:
    """A model of an owner."""

    name: str
    created_at: datetime
    created_by: str

    def to_json_dict(self) -> dict:
        return {
            "name": self.name, "created_at": _iso(self.created_at), "created_by": self.created_by
        }  # fmt: skip


@dataclass(frozen=True)
class CodeInfo:
    """A registered code as the CLI and the admin endpoints show it."""

    owner: str
    model: str | None
    kit: str
    code: str
    num_bits: int
    status: str
    min_distance: int
    strategy: str
    created_at: datetime
    assigned_by: str
    revoked_at: datetime | None
    revoked_by: str | None

    def to_json_dict(self) -> dict:
        return {
            "owner": self.owner, "model": self.model, "kit": self.kit, "code": self.code,
            "num_bits": self.num_bits, "status": self.status, "min_distance": self.min_distance,
            "strategy": self.strategy, "created_at": _iso(self.created_at),
            "assigned_by": self.assigned_by, "revoked_at": _iso(self.revoked_at),
            "revoked_by": self.revoked_by,
        }  # fmt: skip


@dataclass(frozen=True)
class OwnerInfo:
    """An owner with its models and codes (``codes`` may be filtered to one kit)."""

    name: str
    contact: str | None
    created_at: datetime
    created_by: str
    models: tuple[ModelInfo, ...] = ()
    codes: tuple[CodeInfo, ...] = ()

    @property
    def num_codes(self) -> int:
        return len(self.codes)

    def to_json_dict(self) -> dict:
        return {
            "name": self.name, "contact": self.contact, "created_at": _iso(self.created_at),
            "created_by": self.created_by, "models": [m.to_json_dict() for m in self.models],
            "codes": [c.to_json_dict() for c in self.codes],
        }  # fmt: skip


def add_owner(
    registry: Registry, name: str, *, contact: str | None = None, created_by: str | None = None
) -> OwnerInfo:
    """Register an owner; a name that exists already raises :class:`DuplicateOwnerError`."""
    name = check_name(name)
    actor = check_actor(created_by)
    try:
        with registry.write() as session:
            if session.scalar(select(Owner.id).where(Owner.name == name)) is not None:
                raise DuplicateOwnerError(f"owner {name!r} is registered already")
            owner = Owner(name=name, contact=contact, created_by=actor)
            session.add(owner)
            session.flush()
            return OwnerInfo(owner.name, owner.contact, owner.created_at, owner.created_by)
    except IntegrityError:  # another process added the same name between our check and insert
        raise DuplicateOwnerError(f"owner {name!r} is registered already") from None


def code_info(code: Code) -> CodeInfo:
    return CodeInfo(
        code.owner.name, code.model.name if code.model else None, code.kit, code.value,
        code.num_bits, code.status, code.min_distance, code.strategy, code.created_at,
        code.assigned_by, code.revoked_at, code.revoked_by,
    )  # fmt: skip


def list_owners(
    registry: Registry, *, kit: str | None = None, owner: str | None = None
) -> list[OwnerInfo]:
    """Owners by name, each with its models and codes (oldest first).

    ``kit`` keeps only the codes of that kit (owners without any are still listed); ``owner``
    lists that owner only, and raises :class:`OwnerNotFoundError` if it is not registered.
    """
    with registry.read() as session:
        query = (
            select(Owner)
            .options(
                selectinload(Owner.models),
                selectinload(Owner.codes).selectinload(Code.model),
            )
            .order_by(Owner.name)
        )
        if owner is not None:
            query = query.where(Owner.name == owner)
        rows = session.scalars(query).all()
        if owner is not None and not rows:
            raise OwnerNotFoundError(f"owner {owner!r} is not registered")
        out = []
        for o in rows:
            models = tuple(
                ModelInfo(m.name, m.created_at, m.created_by)
                for m in sorted(o.models, key=lambda m: m.id)
            )
            codes = tuple(
                code_info(c)
                for c in sorted(o.codes, key=lambda c: c.id)
                if kit is None or c.kit == kit
            )
            out.append(OwnerInfo(o.name, o.contact, o.created_at, o.created_by, models, codes))
        return out


def list_codes(
    registry: Registry, *, kit: str | None = None, owner: str | None = None
) -> list[CodeInfo]:
    """Registered codes, optionally of one kit and/or one owner, oldest first."""
    with registry.read() as session:
        query = (
            select(Code)
            .join(Owner, Code.owner_id == Owner.id)
            .options(selectinload(Code.owner), selectinload(Code.model))
            .order_by(Code.id)
        )
        if kit is not None:
            query = query.where(Code.kit == kit)
        if owner is not None:
            if session.scalar(select(Owner.id).where(Owner.name == owner)) is None:
                raise OwnerNotFoundError(f"owner {owner!r} is not registered")
            query = query.where(Owner.name == owner)
        return [code_info(c) for c in session.scalars(query)]


def revoke_code(
    registry: Registry, code: str, *, kit: str, revoked_by: str | None = None
) -> CodeInfo:
    """Mark a code revoked. It stays reserved and attributable: its signed images still exist.

    Revoking a revoked code changes nothing (the first revocation's time and actor stay).
    """
    actor = check_actor(revoked_by)
    with registry.write() as session:
        rows = session.scalars(select(Code).where(Code.kit == kit)).all()
        if not rows:
            raise CodeNotFoundError(f"no codes are registered for kit {kit!r}")
        value = to_hex(parse_code(code, rows[0].num_bits), rows[0].num_bits)
        match = next((c for c in rows if c.value == value), None)
        if match is None:
            raise CodeNotFoundError(f"code {code!r} is not registered for kit {kit!r}")
        if match.status != "revoked":
            match.status = "revoked"
            match.revoked_at = utcnow()
            match.revoked_by = actor
        session.flush()
        return code_info(match)
