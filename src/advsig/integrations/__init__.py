"""Adapters that sign the images of other libraries' generators as they come out.

One module per library, imported explicitly (``from advsig.integrations.diffusers import ...``),
so that importing advsig never pulls in a library a user does not have.
"""
