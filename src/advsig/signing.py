"""Signing files and folder trees: relative paths kept, atomic writes, resumable, sharded."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from advsig.codes.bits import hex_to_bits
from advsig.data.datasets import fit_within, fitted_size
from advsig.data.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    MIN_SIDE,
    LoadedImage,
    list_images,
    load_image,
)
from advsig.data.writers import FORMATS, save_image
from advsig.errors import ImageError, ImageTooSmallError, OutputError, ProvenanceError
from advsig.kit import Kit
from advsig.types import SignResult

if TYPE_CHECKING:
    from advsig.provenance.manifest import ManifestWriter

logger = logging.getLogger(__name__)

PIXEL_BUDGET = 16_000_000  # pixels loaded at once: bounds memory whatever the batch size


def plan_outputs(
    src: str | Path, dst: str | Path, *, format: str = "png"
) -> list[tuple[Path, Path]]:
    """(input, output) pairs for signing ``src`` (a file or folder) into ``dst``.

    A folder keeps its relative layout; the suffix becomes ``.png`` or ``.jpg``. Refuses any plan
    that would write over an input or give two inputs one output.
    """
    if format not in FORMATS:
        raise OutputError(f"format must be one of {sorted(FORMATS)}, got {format!r}")
    src, dst = Path(src), Path(dst)
    ext = FORMATS[format]
    if src.is_file():
        out = (
            dst.with_suffix(ext)
            if dst.suffix.lower() in IMAGE_EXTENSIONS
            else dst / src.with_suffix(ext).name
        )
        pairs = [(src, out)]
    elif src.is_dir():
        if dst.exists() and not dst.is_dir():
            raise OutputError(f"output {dst} exists and is not a folder; choose another")
        s, d = src.resolve(), dst.resolve()
        if d == s or s in d.parents:
            raise OutputError(
                f"output folder {dst} is inside the input folder {src}; choose another"
            )
        pairs = [(f, dst / f.relative_to(src).with_suffix(ext)) for f in list_images(src)]
    else:
        raise OutputError(f"{src}: no such file or folder")
    seen: dict[Path, Path] = {}
    for inp, out in pairs:
        if out.resolve() == inp.resolve():
            raise OutputError(f"{out}: would overwrite its input; choose another destination")
        if out in seen:
            raise OutputError(f"{seen[out]} and {inp} would both be written to {out}")
        seen[out] = inp
    return pairs


def shard(items: list, index: int, count: int) -> list:
    """Every ``count``-th item starting at ``index``: each item goes to exactly one process."""
    return items[index::count]


def check_work_size(height: int, width: int, work_size: int, path: str | Path) -> None:
    """Raise ImageTooSmallError when an image fitted within ``work_size`` has a side below MIN_SIDE.

    Why: a very elongated image (say 2000x32) passes ``load_image`` but shrinks to a sliver the
    networks cannot use. Pure arithmetic: no pixel is resized to find out.
    """
    h, w = fitted_size(height, width, work_size)
    if min(h, w) < MIN_SIDE:
        raise ImageTooSmallError(
            f"{path}: {width}x{height} is too elongated; fitted to the kit's working size "
            f"{work_size} it is {w}x{h}, below the minimum side {MIN_SIDE}"
        )


def work_image(image: torch.Tensor, work_size: int, path: str | Path) -> torch.Tensor:
    """``image`` (3, H, W) fitted within the kit's ``work_size``, where the networks run."""
    check_work_size(*image.shape[-2:], work_size, path)
    return fit_within(image, work_size)  # (3, h, w)


def _chunks(
    pairs: list[tuple[Path, Path]], batch_size: int, max_pixels: int, work_size: int
) -> Iterator[list]:
    """Load inputs lazily, yielding lists of (pair, LoadedImage | ImageError) within a pixel budget."""
    chunk: list = []
    pixels = 0
    for pair in pairs:
        try:
            loaded: LoadedImage | ImageError = load_image(pair[0], max_pixels=max_pixels)
            check_work_size(*loaded.image.shape[-2:], work_size, pair[0])
            n = loaded.image.shape[-1] * loaded.image.shape[-2]
        except ImageError as exc:
            loaded, n = exc, 0
        if chunk and (len(chunk) >= batch_size or pixels + n > PIXEL_BUDGET):
            yield chunk
            chunk, pixels = [], 0
        chunk.append((pair, loaded))
        pixels += n
    if chunk:
        yield chunk


def _write(
    signed: torch.Tensor,
    out: Path,
    *,
    alpha,
    format: str,
    quality: int,
    manifest_writer: ManifestWriter | None,
) -> None:
    """Save one signed image (3, H, W) to ``out``; with a writer, embed a C2PA manifest too.

    The plain image goes to a hidden sibling first and the manifest writer moves the result
    into ``out`` atomically, so ``out`` never exists without its manifest (a resumed run would
    otherwise skip it).
    """
    if manifest_writer is None:
        save_image(signed, out, alpha=alpha, format=format, quality=quality)
        return
    plain = out.with_name(f".{out.name}.plain-{os.getpid()}")
    try:
        save_image(signed, plain, alpha=alpha, format=format, quality=quality)
        manifest_writer.embed(plain, out, format=format)
    finally:
        plain.unlink(missing_ok=True)


def sign_files(
    kit: Kit,
    src: str | Path,
    dst: str | Path,
    *,
    code: str | int | None = None,
    format: str = "png",
    quality: int = 95,
    batch_size: int = 8,
    overwrite: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    process_index: int = 0,
    num_processes: int = 1,
    progress: bool = True,
    on_result: Callable[[SignResult], None] | None = None,
    manifest_writer: ManifestWriter | None = None,
) -> list[SignResult]:
    """Sign every image under ``src`` into ``dst``; returns one result per input file.

    Existing outputs are skipped (a re-run resumes) unless ``overwrite``. Bad files become
    ``status="failed"`` results with the error, and the run goes on. With several processes
    (``accelerate launch``) each handles its own shard of the sorted file list. A
    ``manifest_writer`` (:class:`advsig.provenance.ManifestWriter`) embeds a signed C2PA
    manifest in every output (it keeps the last one, for the registry).

    Example:
        >>> sign_files(Kit.from_pretrained("base"), "photos/", "signed/", code="c0ffee")
    """
    hex_to_bits(code, kit.num_bits)  # a bad code fails now, not after loading (or skipping) files
    pairs = shard(plan_outputs(src, dst, format=format), process_index, num_processes)
    results: list[SignResult] = []

    def record(result: SignResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    todo = []
    for inp, out in pairs:
        if out.exists() and not overwrite:
            record(SignResult(str(inp), str(out), "skipped"))
        else:
            todo.append((inp, out))
    bar = tqdm(total=len(todo), desc="sign", unit="img", disable=not progress)
    for chunk in _chunks(todo, batch_size, max_pixels, kit.work_size):
        good = [(pair, img) for pair, img in chunk if isinstance(img, LoadedImage)]
        for (inp, _), err in ((p, e) for p, e in chunk if not isinstance(e, LoadedImage)):
            record(SignResult(str(inp), None, "failed", error=str(err)))
        signed = (
            kit.sign([img.image for _, img in good], code=code, batch_size=batch_size)
            if good
            else []
        )
        for ((inp, out), img), sig in zip(good, signed):
            alpha = img.alpha
            if format == "jpeg" and alpha is not None and bool((alpha == 255).all()):
                alpha = None  # an opaque alpha channel (common in screenshots) loses nothing
            try:
                _write(
                    sig, out, alpha=alpha, format=format, quality=quality,
                    manifest_writer=manifest_writer,
                )  # fmt: skip
            except (ImageError, ProvenanceError) as exc:
                record(SignResult(str(inp), None, "failed", error=str(exc)))
                continue
            mse = float((sig - img.image).square().mean())
            psnr = 10 * math.log10(1 / max(mse, 1e-12))
            record(SignResult(str(inp), str(out), "signed", psnr=psnr))
        bar.update(len(chunk))
    bar.close()
    return results
