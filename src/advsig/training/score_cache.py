"""Clean scores an interrupted calibration already computed, kept stage by stage.

Why: recalibrating a robust kit photo by photo under the grid's 11 pixel processings scores
tens of thousands of clean crops, hours on a CPU, and with mirror reads twice that (stop 43's
run was stopped unfinished twice). Killed, it started over. Each stage (the unprocessed crops,
then one processing at a time) is written atomically once scored, under a fingerprint of
everything that decides its scores: the detector's weights and read options, the crops'
pixels and sources, the processings. A rerun with the same fingerprint reads the stages back;
any change scores them anew.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import torch

from advsig.utils import write_text_atomic

CACHE_DIR_NAME = ".calibration-cache"


def kit_fingerprint(kit, recipe: dict) -> str:
    """A digest of what decides a kit's clean scores: detector weights, read options, recipe.

    ``recipe``: the crops' and processings' settings (JSON-serialisable).
    """
    digest = hashlib.sha256()
    config = kit.config_dict()
    for name in ("calibration", "thresholds", "training"):  # refitted or bookkeeping: no score
        config.pop(name, None)
    digest.update(json.dumps({"kit": config, "recipe": recipe}, sort_keys=True).encode())
    state = kit.detector.state_dict() if kit.detector is not None else {}
    for name in sorted(state):
        tensor = state[name].detach().to("cpu", torch.float32).contiguous()
        digest.update(name.encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:32]


def images_digest(images: list[torch.Tensor]) -> str:
    """A digest of images as 8-bit pixels, shapes included: the crops a stage scores.

    Why the pixels and not the options that cut them: ``--data FOLDER`` may change between
    two runs with the same options, and stale scores would then be read back.
    """
    digest = hashlib.sha256()
    for img in images:
        digest.update(str(tuple(img.shape)).encode())
        digest.update((img.detach().cpu() * 255).round().to(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


class ScoreCache:
    """Stage name -> JSON-serialisable scores, kept in ``folder`` for one ``fingerprint``."""

    def __init__(self, folder: str | Path, fingerprint: str) -> None:
        self.folder = Path(folder)
        self.fingerprint = fingerprint
        self.reused: list[str] = []

    def _path(self, stage: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stage)
        return self.folder / f"{safe}.json"

    def get(self, stage: str, compute: Callable[[], dict]) -> dict:
        """``stage``'s cached value when its fingerprint matches, else ``compute()``, saved."""
        path = self._path(stage)
        if path.exists():
            try:
                saved = json.loads(path.read_text())
            except (OSError, ValueError):
                saved = None  # a damaged file is scored again, not trusted
            if isinstance(saved, dict) and saved.get("fingerprint") == self.fingerprint:
                self.reused.append(stage)
                return saved["value"]
        value = compute()
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"fingerprint": self.fingerprint, "stage": stage, "value": value}
        write_text_atomic(path, json.dumps(record))
        return value

    def clear(self) -> None:
        """Drop the folder once the calibration it served is written."""
        shutil.rmtree(self.folder, ignore_errors=True)
