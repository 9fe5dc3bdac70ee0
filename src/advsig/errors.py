"""Named exceptions. Every user-facing failure is one of these, with the bad value quoted."""


class AdvsigError(Exception):
    """Base class: the CLI prints the message on one line and exits 1."""


class ConfigError(AdvsigError):
    """An option or configuration value is invalid."""


class CheckpointError(AdvsigError):
    """A weights file or kit folder is missing, broken or does not match its config."""


class TrainingError(AdvsigError):
    """A training run cannot go on (e.g. its loss stopped being a finite number)."""


class KitNotFoundError(AdvsigError):
    """A kit name, folder or Hub id could not be resolved."""


class CodeError(AdvsigError):
    """A bit code (hex string) is malformed or has the wrong length."""


class ImageError(AdvsigError):
    """Base class for problems with one input image; folder runs report these and go on."""


class CorruptImageError(ImageError):
    """Empty, truncated or non-image file."""


class UnsupportedImageError(ImageError):
    """A readable image that advsig refuses (animated, unusual mode...)."""


class ImageTooLargeError(ImageError):
    """More pixels than the configured limit (decompression-bomb guard)."""


class ImageTooSmallError(ImageError):
    """Smaller than the networks need."""


class OutputError(AdvsigError):
    """An output location that would overwrite an input or is otherwise unusable."""


class KeyFileError(ConfigError):
    """A kit key file that cannot be read, is malformed, or would be exposed."""


class ProvenanceError(AdvsigError):
    """A C2PA certificate, private key or manifest that cannot be used (the file is named)."""
