"""Alembic migrations of the registry schema (run through :func:`advsig.registry.db.upgrade`)."""
