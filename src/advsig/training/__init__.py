"""Joint training of the injector W and detector F on Accelerate."""

from advsig.training.trainer import train_signature

__all__ = ["train_signature"]
