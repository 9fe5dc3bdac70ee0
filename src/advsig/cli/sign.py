"""``advsig sign``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from advsig.cli.distributed import launched_processes
from advsig.cli.options import BatchOption, CodeOption, KitOption, Precision, PrecisionOption
from advsig.kits import DEFAULT_KIT


class SourceType(str, Enum):
    """IPTC digital source types advsig's C2PA manifests declare (see advsig.provenance)."""

    generated = "generated"
    composite = "composite"


def sign(
    src: Annotated[Path, typer.Argument(help="Image file or folder (searched recursively).")],
    dst: Annotated[Path, typer.Argument(help="Output file or folder (relative paths kept).")],
    kit: KitOption = DEFAULT_KIT,
    code: CodeOption = None,
    format: Annotated[str, typer.Option("--format", "-f", help="png (lossless) or jpeg.")] = "png",
    quality: Annotated[
        int, typer.Option("--quality", "-q", min=1, max=100, help="JPEG quality.")
    ] = 95,
    batch_size: BatchOption = 8,
    precision: PrecisionOption = Precision.auto,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Redo outputs that already exist.")
    ] = False,
    c2pa: Annotated[
        bool,
        typer.Option(
            "--c2pa", help="Embed a signed C2PA manifest (Content Credentials) in each output."
        ),
    ] = False,
    c2pa_cert: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="PEM certificate chain (signer first) for the manifests; default: a "
            "development chain made once in the user data folder, which readers do not trust.",
        ),
    ] = None,
    c2pa_key: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="Unencrypted PEM private key of --c2pa-cert."
        ),
    ] = None,
    c2pa_source_type: Annotated[
        SourceType,
        typer.Option(
            help="generated: the image is a generator's output (trainedAlgorithmicMedia); "
            "composite: a photo advsig altered (compositeWithTrainedAlgorithmicMedia)."
        ),
    ] = SourceType.generated,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="ADVSIG_DB",
            show_envvar=True,
            help="With --c2pa: registry (URL or SQLite file) to record the manifest in for "
            "--code, if registered, so advsig registry attribute recovers it once stripped.",
        ),
    ] = None,
) -> None:
    """Sign one image or a folder tree with the kit's injector W.

    Existing outputs are skipped, so an interrupted run resumes. Bad files are reported at the
    end and make the exit code 1. Spread over processes with
    [bold]accelerate launch -m advsig sign ...[/bold]

    With --c2pa each output also carries a signed C2PA manifest: a c2pa.created action with
    the digital source type, and a c2pa.soft-binding assertion naming the code (PNG and JPEG).

    Example: advsig sign photos/ signed/ --kit base --code c0ffee --c2pa --db registry.sqlite3
    """
    from advsig.errors import ConfigError
    from advsig.kit import Kit
    from advsig.signing import sign_files

    if not c2pa and (c2pa_cert is not None or c2pa_key is not None):
        raise ConfigError("--c2pa-cert and --c2pa-key are used only with --c2pa")
    with launched_processes() as acc:
        rank, world = (acc.process_index, acc.num_processes) if acc else (0, 1)
        k = Kit.from_pretrained(
            kit, device=acc.device if acc else "cpu", sign_precision=precision.value
        )
        writer = _manifest_writer(k, code, c2pa_cert, c2pa_key, c2pa_source_type) if c2pa else None
        results = sign_files(
            k, src, dst, code=code, format=format, quality=quality, batch_size=batch_size,
            overwrite=overwrite, process_index=rank, num_processes=world, progress=rank == 0,
            manifest_writer=writer,
        )  # fmt: skip
        stores = [writer.last_store_json] if writer else []
        if acc is not None:
            from accelerate.utils import gather_object

            results = gather_object(results)
            stores = gather_object(stores)
    if rank != 0:
        return
    counts = {s: sum(r.status == s for r in results) for s in ("signed", "skipped", "failed")}
    psnrs = [r.psnr for r in results if r.psnr is not None]
    mean = f", mean PSNR {sum(psnrs) / len(psnrs):.1f} dB" if psnrs else ""
    typer.echo(
        f"signed {counts['signed']}, skipped {counts['skipped']} (already done), failed {counts['failed']}{mean}"
    )
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        # Load errors quote the input already; write errors quote the output, so add the input.
        message = r.error if r.src in (r.error or "") else f"{r.src}: {r.error}"
        typer.secho(f"failed: {message}", fg="red", err=True)
    if writer is not None:
        creds = writer.credentials
        who = "development certificate (untrusted)" if creds.development else creds.source
        typer.echo(f"C2PA manifests embedded in {counts['signed']} images, signed with {who}")
        last = next((s for s in reversed(stores) if s), None)
        if db and last:
            _record(db, kit, writer.spec.code, last)
    if failed:
        raise typer.Exit(1)


def _manifest_writer(kit, code, cert: Path | None, key: Path | None, source_type: SourceType):
    from advsig.provenance import ManifestSpec, ManifestWriter, resolve_credentials

    spec = ManifestSpec.for_kit(kit, code, source_type=source_type.value)
    return ManifestWriter(resolve_credentials(cert, key), spec)


def _record(db: str, kit: str, code: str, store_json: str) -> None:
    """Keep the run's last manifest for ``code`` in the registry; a code not registered there
    is reported, not an error: the images are signed either way."""
    from advsig.provenance.lookup import record_manifest
    from advsig.registry.db import kit_label, open_registry
    from advsig.registry.errors import CodeNotFoundError

    with open_registry(db) as reg:
        try:
            value = record_manifest(reg, kit=kit_label(kit), code=code, store_json=store_json)
        except CodeNotFoundError as exc:
            typer.secho(f"manifest not recorded: {exc}", fg="yellow", err=True)
            return
        typer.echo(f"manifest recorded for code {value} in registry {reg.url}")


def register(app: typer.Typer) -> None:
    app.command("sign")(sign)
