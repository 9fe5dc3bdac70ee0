"""Checks of the names people type (owners, models, keys) and of who made a change.

``created_by`` / ``assigned_by`` / ``revoked_by`` default to :func:`default_actor`, the OS user
running the CLI; the HTTP service records ``api-key:<key name>`` instead.
"""

from __future__ import annotations

import getpass

from advsig.errors import ConfigError
from advsig.registry.models import MAX_ACTOR

MAX_NAME = 200


def default_actor() -> str:
    """Who the CLI records as having made a change: the OS user name."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return "unknown"


def check_name(name: str, what: str = "owner") -> str:
    """A name without surrounding spaces, 1 to 200 printable characters."""
    clean = name.strip()
    if not clean or len(clean) > MAX_NAME or not clean.isprintable():
        raise ConfigError(f"{what} name {name!r} must be 1 to {MAX_NAME} printable characters")
    return clean


def check_actor(actor: str | None) -> str:
    """``actor`` without surrounding spaces, or :func:`default_actor` when None."""
    if actor is None:
        return default_actor()
    clean = actor.strip()
    if not clean or len(clean) > MAX_ACTOR or not clean.isprintable():
        raise ConfigError(f"actor {actor!r} must be 1 to {MAX_ACTOR} printable characters")
    return clean
