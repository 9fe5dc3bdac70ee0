"""``advsig registry ...``: owners, their models and codes, attribution, and the service's keys."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from advsig.cli.options import BatchOption, DbOption, FprOption, KitOption
from advsig.kits import DEFAULT_KIT

registry_app = typer.Typer(
    help=(
        "The owner registry: who holds which code, and who signed an image.\n\n"
        "Example: advsig registry add-owner acme && advsig registry assign-code acme --kit base"
    ),
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]
ActorHelp = "Recorded as who made the change (default: the OS user name)."


class Strategy(str, Enum):
    """Code allocation strategies (see ``advsig.registry.allocation``)."""

    random = "random"
    systematic = "systematic"
    bch = "bch"


def _open(db: str | None):
    from advsig.registry.db import open_registry

    return open_registry(db)


def _kit_num_bits(kit: str) -> int:
    """num_bits from the kit's config.json, without building its networks."""
    from advsig.errors import CheckpointError
    from advsig.kit import CONFIG_NAME, resolve_kit_path

    cfg_file = resolve_kit_path(kit) / CONFIG_NAME
    try:
        return int(json.loads(cfg_file.read_text(encoding="utf-8"))["num_bits"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{cfg_file}: cannot read num_bits ({exc})") from None


@registry_app.command("init")
def init(db: DbOption = None) -> None:
    """Create the registry database, or upgrade it to this advsig's schema.

    Example: advsig registry init --db sqlite:///registry.sqlite3
    """
    from advsig.registry.db import current_revision

    with _open(db) as reg:
        typer.echo(f"registry {reg.url} at schema revision {current_revision(reg.engine)}")


@registry_app.command("add-owner")
def add_owner(
    name: Annotated[str, typer.Argument(help="Owner name, unique.")],
    contact: Annotated[str | None, typer.Option(help="E-mail or other contact.")] = None,
    created_by: Annotated[str | None, typer.Option(help=ActorHelp)] = None,
    db: DbOption = None,
) -> None:
    """Register an owner that codes can be assigned to.

    Example: advsig registry add-owner acme --contact ops@acme.example
    """
    from advsig.registry.owners import add_owner as _add

    with _open(db) as reg:
        info = _add(reg, name, contact=contact, created_by=created_by)
    typer.echo(f"owner {info.name!r} registered by {info.created_by}")


@registry_app.command("assign-code")
def assign_code(
    owner: Annotated[str, typer.Argument(help="A registered owner.")],
    model: Annotated[
        str | None,
        typer.Option(help="The owner's model this code identifies (created if new)."),
    ] = None,
    kit: KitOption = DEFAULT_KIT,
    min_distance: Annotated[
        int | None,
        typer.Option(min=1, help="Hamming distance from every other code (default num_bits/4)."),
    ] = None,
    strategy: Annotated[
        Strategy,
        typer.Option(
            help="random; systematic (smallest free value); bch (codewords of a BCH code, "
            "via galois, so 2^k codes fit at the distance)."
        ),
    ] = Strategy.random,
    seed: Annotated[int | None, typer.Option(help="Seed of the candidate sequence.")] = None,
    assigned_by: Annotated[str | None, typer.Option(help=ActorHelp)] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Assign a new code of KIT to OWNER (or to one of its models), far from every other code.

    Refuses with an error when no code is left at --min-distance from the registered ones.

    Example: advsig registry assign-code acme --model gen-v2 --kit base --min-distance 8
    """
    from advsig.registry.allocation import allocate_code
    from advsig.registry.db import kit_label

    num_bits = _kit_num_bits(kit)
    with _open(db) as reg:
        a = allocate_code(
            reg, owner, kit=kit_label(kit), num_bits=num_bits, model=model,
            min_distance=min_distance, strategy=strategy.value, seed=seed,
            assigned_by=assigned_by,
        )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(a.to_json_dict()))
    else:
        holder = f"{a.owner}/{a.model}" if a.model else a.owner
        typer.echo(
            f"{a.code}\t{holder} (kit {a.kit}, {a.num_bits} bits, nearest other code "
            f"{a.nearest_distance} bits away, assigned by {a.assigned_by})"
        )


def _when(t) -> str:
    return t.isoformat(timespec="seconds") if t is not None else ""


@registry_app.command("list")
def list_(
    kit: Annotated[str | None, typer.Option("--kit", "-k", help="Only codes of this kit.")] = None,
    owner: Annotated[str | None, typer.Option(help="Only this owner.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List owners, their models and codes, with when and by whom each was added.

    Example: advsig registry list --owner acme --json
    """
    from advsig.registry.db import kit_label
    from advsig.registry.owners import list_owners

    with _open(db) as reg:
        rows = list_owners(reg, kit=kit_label(kit) if kit else None, owner=owner)
    for o in rows:
        if as_json:
            typer.echo(json.dumps(o.to_json_dict()))
            continue
        contact = f" <{o.contact}>" if o.contact else ""
        typer.echo(f"{o.name}{contact}\tadded {_when(o.created_at)} by {o.created_by}")
        for m in o.models:
            typer.echo(f"  model {m.name}\tadded {_when(m.created_at)} by {m.created_by}")
        for c in o.codes:
            line = (
                f"  code {c.code}\t{c.status}\tmodel {c.model or '-'}\tkit {c.kit}\t"
                f"assigned {_when(c.created_at)} by {c.assigned_by}"
            )
            if c.revoked_at is not None:
                line += f"\trevoked {_when(c.revoked_at)} by {c.revoked_by}"
            typer.echo(line)


@registry_app.command("revoke")
def revoke(
    code: Annotated[str, typer.Argument(help="Hex code.")],
    kit: KitOption = DEFAULT_KIT,
    revoked_by: Annotated[str | None, typer.Option(help=ActorHelp)] = None,
    db: DbOption = None,
) -> None:
    """Mark a code revoked: it stays reserved, and images signed with it stay attributable.

    Example: advsig registry revoke d82c07cd --kit base
    """
    from advsig.registry.db import kit_label
    from advsig.registry.owners import revoke_code

    with _open(db) as reg:
        info = revoke_code(reg, code, kit=kit_label(kit), revoked_by=revoked_by)
    typer.echo(f"code {info.code} of {info.owner!r} revoked by {info.revoked_by}")


@registry_app.command("attribute")
def attribute(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders (recursive).")],
    kit: KitOption = DEFAULT_KIT,
    fpr: FprOption = 1e-3,
    confidence: Annotated[
        float,
        typer.Option(
            help="Name an owner only if an unsigned image gets this close with p <= this."
        ),
    ] = 1e-3,
    batch_size: BatchOption = 16,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Who signed each image: detection, then the nearest registered code and its p-value.

    Answers per image: attributed (owner named), signed with owner unknown, or not signed.
    When the matched code has a C2PA manifest on record (advsig sign --c2pa --db), that
    manifest is returned with the match's p-value: provenance recovered from the pixels even
    after the file's metadata was stripped.
    --json prints the fields of advsig detect --json (with "c2pa", the embedded manifest) plus
    "owner", "attribution" and "recovered_manifest". Unreadable files are reported and make the
    exit code 1.

    Example: advsig registry attribute found/ --kit base --json
    """
    from advsig.detection import collect_files
    from advsig.kit import Kit
    from advsig.provenance.lookup import recover_manifest
    from advsig.provenance.summary import read_manifest
    from advsig.registry.attribution import (
        CodeBook,
        attribute_files,
        attribution_json,
    )
    from advsig.registry.db import kit_label

    k = Kit.from_pretrained(kit)
    label = kit_label(kit)
    with _open(db) as reg:
        book = CodeBook.load(reg, kit=label, num_bits=k.num_bits)
        files, missing = collect_files(paths)
        pairs = attribute_files(
            k, files, book, fpr=fpr, confidence=confidence, batch_size=batch_size,
            progress=not as_json,
        )  # fmt: skip
        recovered = [None if r.error else recover_manifest(reg, a, kit=label) for r, a in pairs]
    for r in missing:
        if as_json:
            row = {**attribution_json(r, None), "c2pa": None, "recovered_manifest": None}
            typer.echo(json.dumps(row))
        else:
            typer.echo(r.error)
    for (r, a), found in zip(pairs, recovered):
        embedded = read_manifest(r.path) if r.path and not r.error else None
        if as_json:
            row = {
                **attribution_json(r, a),
                "c2pa": embedded.to_json_dict() if embedded else None,
                "recovered_manifest": found.to_json_dict() if found else None,
            }
            typer.echo(json.dumps(row))
        elif r.error:
            typer.echo(f"{r.path}\terror\t{r.error}")
        else:
            holder = f"{a.owner}/{a.model}" if a.model else a.owner or ""
            tied = f" (tied: {', '.join(a.tied_owners)})" if a.tied_owners else ""
            typer.echo(f"{r.path}\t{a.verdict.value}\t{holder}\t{a.reason}{tied}")
            if embedded is not None:
                typer.echo(f"  C2PA embedded: {embedded.describe()}")
            if found is not None:
                when = _when(found.recorded_at)
                typer.echo(
                    f"  C2PA recovered from the registry (p={found.p_value:.2g}, recorded "
                    f"{when}): {found.manifest.describe()}, manifest {found.manifest.label}"
                )
    if missing or any(r.error for r, _ in pairs):
        raise typer.Exit(1)


@registry_app.command("add-key")
def add_key(
    name: Annotated[str, typer.Argument(help="Key name, unique (who uses it).")],
    role: Annotated[str, typer.Option(help="detect, or admin (may also manage the registry).")] = (
        "detect"
    ),
    rate: Annotated[
        int | None, typer.Option(min=1, help="Requests per minute (default: the server's).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Create an API key for ``advsig serve``; the key is printed once and never stored.

    Example: advsig registry add-key web-frontend --role detect --rate 600
    """
    from advsig.registry.keys import create_key

    with _open(db) as reg:
        new = create_key(reg, name, role=role, rate_per_minute=rate)
    typer.echo(new.key)
    typer.secho(f"key {name!r} ({role}); store it now, it cannot be shown again", err=True)


@registry_app.command("keys")
def keys(db: DbOption = None) -> None:
    """List API keys (names, roles, rates; never secrets).

    Example: advsig registry keys
    """
    from advsig.registry.keys import list_keys

    with _open(db) as reg:
        for k in list_keys(reg):
            state = "revoked" if k.revoked_at else "active"
            rate = k.rate_per_minute or "default"
            typer.echo(f"{k.name}\t{k.role}\t{state}\t{rate}/min\tadvsig_{k.key_id}_...")


@registry_app.command("revoke-key")
def revoke_key(name: Annotated[str, typer.Argument(help="Key name.")], db: DbOption = None) -> None:
    """Revoke an API key; a running service refuses it within its key cache time (10 s).

    Example: advsig registry revoke-key web-frontend
    """
    from advsig.registry.keys import revoke_key as _revoke

    with _open(db) as reg:
        _revoke(reg, name)
    typer.echo(f"key {name!r} revoked")


def register(app: typer.Typer) -> None:
    app.add_typer(registry_app, name="registry")
