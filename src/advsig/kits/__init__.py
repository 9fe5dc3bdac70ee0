"""Kits shipped inside the package (``--kit base-v2-r48``). Loaded through importlib.resources.

``DEFAULT_KIT`` is the kit every command and API function uses when none is named. Since stop 31
it is a content-bound, keyed v2 signature: a residual lifted from its signed images does not
verify on other photos (BENCHMARKS.md). Since stop 40 it is ``base-v2-r48``: the same signature
and key as ``base-v2-odd`` (stop 31's default), brought down from ``robust-v2`` to 48 dB and
trained and calibrated on processed flat images too, so that its stated false-positive rate holds
on flat content, where ``base-v2-odd`` flags 2% of procedural flat images at FPR 1e-3. The v1 ``base`` kit reads its code
better and detects faster, but anyone holding one of its signed images can stamp its signature
onto a real photo, so a flag from it does not mean what a flag must mean.
"""

DEFAULT_KIT = "base-v2-r48"
