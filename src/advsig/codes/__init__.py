"""Bit codes and score calibration."""
