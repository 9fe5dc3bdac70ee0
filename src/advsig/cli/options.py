"""Option types shared by several commands."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

KitOption = Annotated[
    str,
    typer.Option(
        "--kit",
        "-k",
        help="Kit folder, shipped kit name (default: base-v2-r48; see advsig kits) or Hugging Face "
        "Hub id (owner/name).",
    ),
]
FprOption = Annotated[
    float,
    typer.Option("--fpr", help="False-positive rate on unsigned images that sets the threshold."),
]
BatchOption = Annotated[
    int, typer.Option("--batch-size", "-b", min=1, help="Images per network batch.")
]
CodeOption = Annotated[
    str | None, typer.Option("--code", "-c", help="Hex code to embed (default: all zeros).")
]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="ADVSIG_DB",
        help="Database URL: sqlite:///file, a file path, or postgresql+psycopg://user@host/db "
        "(postgresql:// works too); default: a SQLite file in the user data folder.",
        show_envvar=True,
    ),
]


class Precision(str, Enum):
    """Where W or F runs its convolutions (advsig.precision)."""

    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


PrecisionOption = Annotated[
    Precision,
    typer.Option(
        "--precision",
        help="auto: bfloat16 where the CPU or GPU runs it natively (about 2x faster), else "
        "float32; fp32; bf16.",
    ),
]
