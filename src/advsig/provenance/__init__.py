"""C2PA Content Credentials for signed images, with advsig's code as the soft binding.

``advsig sign --c2pa`` embeds a signed C2PA manifest (how the image was made, and a
``c2pa.soft-binding`` assertion naming advsig's code) in each PNG or JPEG it writes;
``advsig detect`` reads and validates it; the registry keeps each code's manifest, so
``advsig registry attribute`` recovers provenance from the pixels after metadata was stripped.

Example:
    >>> from advsig.provenance import ManifestSpec, ManifestWriter, read_manifest, resolve_credentials
    >>> writer = ManifestWriter(resolve_credentials(), ManifestSpec.for_kit(kit, "c0ffee"))
    >>> store_json = writer.embed("plain.png", "signed.png", format="png")
    >>> read_manifest("signed.png").validation_state
    'valid'
"""

from advsig.provenance.certs import (
    SigningCredentials,
    dev_chain_paths,
    ensure_dev_chain,
    load_credentials,
    resolve_credentials,
)
from advsig.provenance.manifest import (
    SOURCE_TYPES,
    ManifestSpec,
    ManifestWriter,
    kit_fingerprint,
)
from advsig.provenance.summary import ManifestSummary, SoftBinding, read_manifest, summarize_store

__all__ = [
    "SOURCE_TYPES",
    "ManifestSpec",
    "ManifestSummary",
    "ManifestWriter",
    "SigningCredentials",
    "SoftBinding",
    "dev_chain_paths",
    "ensure_dev_chain",
    "kit_fingerprint",
    "load_credentials",
    "read_manifest",
    "resolve_credentials",
    "summarize_store",
]
