"""Benchmarking advsig against attacks and other watermarks (metrics first; runner to come)."""
