"""Small helpers with no advsig dependencies: atomic writes, the user data folder."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

DATA_DIR_ENV = "ADVSIG_DATA_DIR"


def user_data_dir() -> Path:
    """Where advsig keeps per-user files (registry database, development C2PA certificate).

    ``$ADVSIG_DATA_DIR`` when set (tests, containers, several isolated setups on one account),
    else ``platformdirs.user_data_dir("advsig")``.
    """
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("advsig"))


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; on success it replaces ``path`` in one ``os.replace``.

    Why: a crash or ``kill -9`` mid-write must never leave a half-written output that a later
    run would mistake for a finished one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def temp_sibling_dir(out: str | Path) -> Path:
    """A fresh temporary sibling folder of ``out`` to write a whole output folder into."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    return tmp


def swap_in_dir(tmp: Path, out: str | Path) -> Path:
    """Replace ``out`` with the finished ``tmp`` folder (the old one is moved aside, then removed).

    Why: a crash mid-save leaves either the old folder or the new one, never a mix.
    """
    out = Path(out)
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    return out
