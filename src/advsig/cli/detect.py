"""``advsig detect``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from advsig.cli.distributed import launched_processes
from advsig.cli.options import BatchOption, FprOption, KitOption, Precision
from advsig.kits import DEFAULT_KIT


def _json_line(result, manifest=None) -> str:
    d = result.to_json_dict()
    for key in ("score", "p_value", "threshold", "fpr"):
        if isinstance(d[key], float) and math.isnan(d[key]):
            d[key] = None
    d["c2pa"] = manifest.to_json_dict() if manifest is not None else None
    return json.dumps(d)


def _manifests(results, trust: Path | None) -> list:
    """Each readable image's embedded C2PA manifest summary (None where it has none)."""
    from advsig.provenance.summary import read_manifest

    return [
        read_manifest(r.path, trust_anchors=trust) if r.path and not r.error else None
        for r in results
    ]


def detect(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders (recursive).")],
    kit: KitOption = DEFAULT_KIT,
    fpr: FprOption = 1e-3,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    batch_size: BatchOption = 16,
    precision: Annotated[
        Precision,
        typer.Option(
            "--precision",
            help="fp32 (default): the precision the kit's thresholds were fitted in; bf16 or "
            "auto: about 2x faster where native, scores move by up to ~0.2.",
        ),
    ] = Precision.fp32,
    c2pa_trust: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="PEM root certificates whose C2PA manifests count as trusted (for example "
            "advsig's development root, <user data>/c2pa-dev/ca.pem).",
        ),
    ] = None,
) -> None:
    """Is each image signed, how sure are we, and which code does it carry?

    Prints per image: verdict, score, p-value (the estimated chance that an unsigned image scores
    this high), and the decoded code with its weakest bit's confidence. An embedded C2PA manifest
    is validated and summarised (JSON field "c2pa", null without one): valid, trusted or invalid
    with the reason, its digital source type and soft-binding code. Unreadable files are
    reported and make the exit code 1.

    Example: advsig detect signed/ --kit base --fpr 1e-3 --json
    """
    from advsig.detection import collect_files, detect_files
    from advsig.kit import Kit

    with launched_processes() as acc:
        rank, world = (acc.process_index, acc.num_processes) if acc else (0, 1)
        k = Kit.from_pretrained(
            kit, device=acc.device if acc else "cpu", detect_precision=precision.value
        )
        files, missing = collect_files(paths)
        results = detect_files(
            k, files, fpr=fpr, batch_size=batch_size, process_index=rank, num_processes=world,
            progress=rank == 0 and not as_json,
        )  # fmt: skip
        if acc is not None:
            from accelerate.utils import gather_object

            results = gather_object(results)
    if rank != 0:
        return
    order = {str(f): i for i, f in enumerate(files)}
    results = missing + sorted(results, key=lambda r: order.get(r.path or "", -1))
    manifests = _manifests(results, c2pa_trust)
    if as_json:
        for r, m in zip(results, manifests):
            typer.echo(_json_line(r, m))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"advsig detect (threshold for FPR {fpr:g})")
        show_c2pa = any(m is not None for m in manifests)  # no new column for plain images
        cols = ("path", "signed", "score", "p-value", "code", "min bit conf.")
        for col in (*cols, "C2PA") if show_c2pa else cols:
            table.add_column(col)
        for r, m in zip(results, manifests):
            extra = (m.describe() if m is not None else "",) if show_c2pa else ()
            if r.error:
                table.add_row(r.path or "", "[red]error[/red]", "", "", r.error, "", *extra)
                continue
            conf = f"{min(r.bit_confidence):.3f}" if r.bit_confidence else ""
            table.add_row(
                r.path or "", "yes" if r.is_signed else "no", f"{r.score:.2f}", f"{r.p_value:.2g}",
                r.bits or "", conf, *extra,
            )  # fmt: skip
        Console().print(table)
        n_signed = sum(r.is_signed for r in results)
        typer.echo(f"{n_signed} of {len(results)} images signed")
    if any(r.error for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("detect")(detect)
