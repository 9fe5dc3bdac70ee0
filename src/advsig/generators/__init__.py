"""Signing generators: fine-tune them on signed images so that their samples carry the signature."""
