"""Kits shipped inside the package (``--kit base-v2-odd``). Loaded through importlib.resources.

``DEFAULT_KIT`` is the kit every command and API function uses when none is named. Since stop 31
it is ``base-v2-odd``, the content-bound, keyed v2 signature: a residual lifted from its signed
images does not verify on other photos (BENCHMARKS.md). The v1 ``base`` kit reads its code
better and detects faster, but anyone holding one of its signed images can stamp its signature
onto a real photo, so a flag from it does not mean what a flag must mean.
"""

DEFAULT_KIT = "base-v2-odd"
