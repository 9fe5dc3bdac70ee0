"""Where generators live: shipped names, local folders, Hub ids, and the files advsig adds.

Family-neutral, so every family module (and the family registry) can import it without
importing each other.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from advsig.errors import ConfigError

# Written next to a generator's own files by advsig: what was done to the model (ignored by
# diffusers).
PROVENANCE_NAME = "advsig.json"
# An advsig GAN folder holds this file (factory import path, its kwargs, latent size).
GAN_CONFIG_NAME = "generator.json"


def shipped_generators() -> list[str]:
    """Names of the generator folders inside the package (``advsig/generators/shipped``)."""
    root = resources.files("advsig.generators") / "shipped"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def resolve_model_path(name_or_path: str | Path) -> str:
    """A local folder, a shipped generator name, or a Hub id (returned as is for diffusers)."""
    path = Path(name_or_path)
    if path.is_dir():
        return str(path)
    name = str(name_or_path)
    if name in shipped_generators():
        return str(resources.files("advsig.generators") / "shipped" / name)
    if name.count("/") == 1 and not path.exists():
        return name
    raise ConfigError(
        f"model {name!r} is not a folder, a shipped generator "
        f"({', '.join(shipped_generators()) or 'none'}) or a Hub id (owner/name)"
    )
