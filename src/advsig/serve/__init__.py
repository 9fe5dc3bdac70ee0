"""``advsig serve``: detection and attribution over HTTP.

Example:
    >>> from advsig.serve import ServeSettings, create_app
    >>> app = create_app(Kit.from_pretrained("base"), open_registry(), ServeSettings())
"""

from advsig.serve.app import create_app
from advsig.serve.batching import Batcher, BusyError
from advsig.serve.limits import ServeSettings

__all__ = ["Batcher", "BusyError", "ServeSettings", "create_app"]
