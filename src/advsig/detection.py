"""Detecting files and folder trees, streamed in bounded batches, sharded across processes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from advsig.data.io import DEFAULT_MAX_PIXELS, list_images, load_image
from advsig.errors import ConfigError, ImageError
from advsig.kit import Kit
from advsig.signing import PIXEL_BUDGET, shard, work_image
from advsig.types import DetectionResult


def collect_files(paths: Sequence[str | Path]) -> tuple[list[Path], list[DetectionResult]]:
    """Image files under ``paths`` (files or folders), plus error results for missing paths."""
    files: list[Path] = []
    missing: list[DetectionResult] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            missing.append(_error_result(p, f"{p}: no such file or folder"))
            continue
        files += list_images(p)
    return sorted(dict.fromkeys(files)), missing


def _error_result(path: Path, message: str) -> DetectionResult:
    return DetectionResult(
        is_signed=False, score=math.nan, p_value=math.nan, threshold=math.nan, fpr=math.nan,
        path=str(path), error=message,
    )  # fmt: skip


def detect_files(
    kit: Kit,
    files: Sequence[Path],
    *,
    fpr: float = 1e-3,
    batch_size: int = 16,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    process_index: int = 0,
    num_processes: int = 1,
    progress: bool = True,
) -> list[DetectionResult]:
    """One :class:`DetectionResult` per file of this process's shard, in file order.

    Unreadable files give a result with ``error`` set; the rest of the batch is unaffected.
    Memory is bounded by ``batch_size`` images and a pixel budget, however many files there are.
    """
    if not 0 < fpr < 1:
        raise ConfigError(f"fpr must be in (0, 1), got {fpr!r}")
    kit.threshold(fpr)  # an injector-only or uncalibrated kit fails now, before any file is read
    mine = shard(list(files), process_index, num_processes)
    results: list[DetectionResult] = []
    bar = tqdm(total=len(mine), desc="detect", unit="img", disable=not progress)
    batch, paths, pixels = [], [], 0

    def flush() -> None:
        nonlocal batch, paths, pixels
        if batch:
            logits = kit.logits(batch, batch_size=batch_size)
            sizes = [tuple(w.shape[-2:]) for w in batch]
            results.extend(
                kit.results_from_logits(logits, fpr=fpr, paths=[str(p) for p in paths], sizes=sizes)
            )
            bar.update(len(batch))
        batch, paths, pixels = [], [], 0

    for f in mine:
        try:
            # Only the working-resolution copy is kept, so big photos cost little while queued.
            work = work_image(load_image(f, max_pixels=max_pixels).image, kit.work_size, f)
        except ImageError as exc:
            flush()  # keep results in file order
            results.append(_error_result(f, str(exc)))
            bar.update(1)
            continue
        if batch and (len(batch) >= batch_size or pixels + work.numel() > PIXEL_BUDGET):
            flush()
        batch.append(work)
        paths.append(f)
        pixels += work.numel()
    flush()
    bar.close()
    return results
