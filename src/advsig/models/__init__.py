"""User-facing networks: the signature injector W and detector F, built by name."""

from advsig.models.detector import SignatureDetector
from advsig.models.factory import create_model, list_models
from advsig.models.injector import SignatureInjector

__all__ = ["SignatureDetector", "SignatureInjector", "create_model", "list_models"]
