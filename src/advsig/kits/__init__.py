"""Kits shipped inside the package (``--kit base``). Loaded through importlib.resources."""
