"""A registry with keys and one registered code, and the tiny kit served in-process."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from advsig.kit import Kit
from advsig.registry.allocation import allocate_code
from advsig.registry.db import Registry, open_registry
from advsig.registry.keys import create_key
from advsig.registry.owners import add_owner
from advsig.serve import ServeSettings

KIT_LABEL = "tiny"


@dataclass
class Keys:
    detect: str
    admin: str
    slow: str  # 2 requests per minute


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with open_registry(f"sqlite:///{tmp_path / 'registry.sqlite3'}") as reg:
        yield reg


@pytest.fixture
def keys(registry: Registry) -> Keys:
    add_owner(registry, "acme")
    allocate_code(registry, "acme", kit=KIT_LABEL, num_bits=8, min_distance=2, seed=0)
    return Keys(
        detect=create_key(registry, "web", role="detect").key,
        admin=create_key(registry, "ops", role="admin").key,
        slow=create_key(registry, "slow", role="detect", rate_per_minute=2).key,
    )


@pytest.fixture
def settings() -> ServeSettings:
    return ServeSettings(
        kit_label=KIT_LABEL, max_request_bytes=400_000, max_image_pixels=200_000, max_images=4,
        max_wait_ms=5.0, key_cache_s=0.0, codebook_ttl_s=0.0, fpr=0.01, confidence=0.5,
    )  # fmt: skip


@pytest.fixture
def png_bytes(photo_cache: dict[str, Path]) -> dict[str, bytes]:
    """The small photos (at most 96 px a side) as PNG bytes."""
    return {name: path.read_bytes() for name, path in photo_cache.items()}


@pytest.fixture
def client(tiny_kit: Kit, registry: Registry, keys: Keys, settings: ServeSettings):
    from fastapi.testclient import TestClient

    from advsig.serve import create_app

    with TestClient(create_app(tiny_kit, registry, settings)) as c:
        yield c
