"""n-bit codes: hex strings at the edges, {0,1} tensors inside."""

from __future__ import annotations

import torch

from advsig.errors import CodeError


def hex_to_bits(code: str | int | None, num_bits: int) -> torch.Tensor:
    """Parse a code into a float (num_bits,) tensor of 0/1, most significant bit first.

    ``code`` is a hex string (``"0x"`` optional) or an int; ``None`` means all zeros. The value
    must fit in ``num_bits`` bits.
    """
    if num_bits == 0:
        if code not in (None, "", 0):
            raise CodeError(f"this kit embeds no code, but code {code!r} was given")
        return torch.zeros(0)
    if code is None:
        value = 0
    elif isinstance(code, int):
        value = code
    else:
        text = code.strip().lower().removeprefix("0x")
        try:
            value = int(text, 16)
        except ValueError:
            raise CodeError(f"code {code!r} is not a hexadecimal number") from None
    if value < 0 or value >= 2**num_bits:
        raise CodeError(f"code {code!r} does not fit in {num_bits} bits")
    return torch.tensor(
        [(value >> (num_bits - 1 - i)) & 1 for i in range(num_bits)], dtype=torch.float32
    )


def bits_to_hex(bits: torch.Tensor) -> str:
    """(num_bits,) 0/1 tensor -> zero-padded hex string (ceil(n/4) digits)."""
    value = 0
    for b in bits.tolist():
        value = (value << 1) | int(round(b))
    return f"{value:0{(len(bits) + 3) // 4}x}"


def random_code(num_bits: int, generator: torch.Generator) -> str:
    """A uniformly random code as hex."""
    return bits_to_hex(torch.randint(0, 2, (num_bits,), generator=generator))
