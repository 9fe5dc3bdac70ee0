"""Training checkpoints made only of safetensors and JSON, written atomically, rotated.

A checkpoint folder ``checkpoint-{step}`` holds the networks, the optimizer state, every
process's RNG states and ``state.json``. It is written under a temporary name and renamed when
complete, so ``resume="latest"`` after a ``kill -9`` finds only whole checkpoints.
Why not ``accelerator.save_state``: it pickles optimizer and RNG state, and advsig never unpickles.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from advsig.errors import CheckpointError
from advsig.models.modeling_utils import load_weights, save_weights

_NAME = re.compile(r"^checkpoint-(\d+)$")


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for pid, pstate in state["state"].items():
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for flat, value in list(tensors.items()) + list(meta["scalars"].items()):
        pid, key = flat.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def _tmp_dir(root: Path, step: int) -> Path:
    return root / f".checkpoint-{step}.tmp"


def write_process_rng(root: Path, step: int, rank: int, data_generator: torch.Generator) -> None:
    """Each process writes its own RNG states into the (shared) temporary folder."""
    tmp = _tmp_dir(root, step)
    tmp.mkdir(parents=True, exist_ok=True)
    states = {"torch": torch.get_rng_state(), "data": data_generator.get_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state()
    save_file(states, str(tmp / f"rng-{rank}.safetensors"))


def finish_checkpoint(
    root: Path,
    step: int,
    *,
    models: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    state: dict,
    keep: int,
) -> Path:
    """Main process: write weights + optimizer + state.json, rename into place, rotate old ones.

    ``models`` maps a file stem to a network, e.g. ``{"injector": W, "detector": F}``.
    """
    tmp = _tmp_dir(root, step)
    tmp.mkdir(parents=True, exist_ok=True)
    for name, model in models.items():
        save_weights(model, tmp / f"{name}.safetensors")
    tensors, meta = _flatten_optimizer(optimizer.state_dict())
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    (tmp / "optimizer.json").write_text(json.dumps(meta))
    (tmp / "state.json").write_text(json.dumps({**state, "step": step}, indent=2))
    final = root / f"checkpoint-{step}"
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_dir() and (p / "state.json").is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def resolve_resume(root: Path, resume: str | None) -> Path | None:
    """``None`` -> None; ``"latest"`` -> newest complete checkpoint (or None); else that folder."""
    if resume is None:
        return None
    if resume == "latest":
        found = list_checkpoints(root)
        return found[-1] if found else None
    path = Path(resume)
    if not (path / "state.json").is_file():
        raise CheckpointError(f"{path}: not a complete advsig checkpoint")
    return path


def load_checkpoint(
    path: Path,
    *,
    models: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    rank: int,
    data_generator: torch.Generator,
) -> dict:
    """Restore networks, optimizer and this process's RNGs; return ``state.json``."""
    for name, model in models.items():
        load_weights(model, path / f"{name}.safetensors")
    try:
        tensors = load_file(str(path / "optimizer.safetensors"))
        meta = json.loads((path / "optimizer.json").read_text())
        optimizer.load_state_dict(_unflatten_optimizer(tensors, meta))
        state = json.loads((path / "state.json").read_text())
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: broken checkpoint ({exc})") from exc
    rng_file = path / f"rng-{rank}.safetensors"
    if rng_file.is_file():
        rng = load_file(str(rng_file))
        torch.set_rng_state(rng["torch"])
        data_generator.set_state(rng["data"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"])
    return state
