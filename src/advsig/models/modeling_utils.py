"""Strict safetensors save/load shared by every network."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from advsig.errors import CheckpointError
from advsig.utils import atomic_path


def save_weights(model: nn.Module, path: str | Path, *, dtype: torch.dtype | None = None) -> None:
    """Write ``model.state_dict()`` to ``path`` atomically; floats cast to ``dtype`` if given."""
    state = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        state[key] = tensor
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load safetensors into ``model`` strictly: any missing, unexpected or misshapen key raises.

    Half-precision files are upcast to the model's dtype.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not match the config "
            f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})"
        )
    for key, tensor in state.items():
        if tensor.shape != own[key].shape:
            raise CheckpointError(
                f"{path}: {key} has shape {tuple(tensor.shape)}, config expects {tuple(own[key].shape)}"
            )
        if tensor.is_floating_point():
            state[key] = tensor.to(own[key].dtype)
    model.load_state_dict(state, strict=True)
