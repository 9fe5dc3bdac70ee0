"""Named exceptions of the owner registry; the CLI prints each on one line and exits 1."""

from advsig.errors import AdvsigError


class RegistryError(AdvsigError):
    """The registry database cannot be opened, or is at a schema this advsig does not know."""


class OwnerNotFoundError(RegistryError):
    """An owner name that is not registered."""


class DuplicateOwnerError(RegistryError):
    """An owner name that is registered already."""


class CodeNotFoundError(RegistryError):
    """A code that is not registered for the given kit."""


class CodeSpaceExhaustedError(RegistryError):
    """No free code lies at the requested Hamming distance from every registered code."""


class ApiKeyError(RegistryError):
    """An API key name or role that is invalid, unknown or taken."""
