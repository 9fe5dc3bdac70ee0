"""The owner registry: who holds which code of which kit, and who signed an image.

Example:
    >>> from advsig.registry import add_owner, allocate_code, open_registry
    >>> reg = open_registry()                      # $ADVSIG_DB or a SQLite file in user data
    >>> add_owner(reg, "acme")
    >>> allocate_code(reg, "acme", kit="base", num_bits=32, model="gen-v2", seed=0).code
"""

from advsig.registry.allocation import Allocation, allocate_code, find_code
from advsig.registry.attribution import (
    Attribution,
    CodeBook,
    Verdict,
    attribute,
    attribution_json,
    detection_json,
    match_p_value,
    weighted_match_p_value,
)
from advsig.registry.db import Registry, default_db_url, kit_label, open_registry
from advsig.registry.errors import (
    CodeNotFoundError,
    CodeSpaceExhaustedError,
    DuplicateOwnerError,
    OwnerNotFoundError,
    RegistryError,
)
from advsig.registry.names import default_actor
from advsig.registry.owners import (
    CodeInfo,
    ModelInfo,
    OwnerInfo,
    add_owner,
    list_codes,
    list_owners,
    revoke_code,
)

__all__ = [
    "Allocation",
    "Attribution",
    "CodeBook",
    "CodeInfo",
    "CodeNotFoundError",
    "CodeSpaceExhaustedError",
    "DuplicateOwnerError",
    "ModelInfo",
    "OwnerInfo",
    "OwnerNotFoundError",
    "Registry",
    "RegistryError",
    "Verdict",
    "add_owner",
    "allocate_code",
    "attribute",
    "attribution_json",
    "default_actor",
    "default_db_url",
    "detection_json",
    "find_code",
    "kit_label",
    "list_codes",
    "list_owners",
    "match_p_value",
    "weighted_match_p_value",
    "open_registry",
    "revoke_code",
]
