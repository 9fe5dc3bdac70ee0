import pytest
import torch

from advsig.codes.bits import bits_to_hex, hex_to_bits, random_code
from advsig.errors import CodeError


def test_hex_round_trip():
    for code, n in [("c0ffee", 24), ("0x1", 8), ("deadbeef", 32), ("3", 2)]:
        bits = hex_to_bits(code, n)
        assert bits.shape == (n,)
        assert int(bits_to_hex(bits), 16) == int(code, 16)


def test_most_significant_bit_first():
    assert hex_to_bits("8", 4).tolist() == [1, 0, 0, 0]
    assert hex_to_bits(1, 4).tolist() == [0, 0, 0, 1]


def test_bad_codes_are_named():
    with pytest.raises(CodeError, match="'xyz' is not a hexadecimal"):
        hex_to_bits("xyz", 8)
    with pytest.raises(CodeError, match="does not fit in 4 bits"):
        hex_to_bits("1f", 4)
    with pytest.raises(CodeError, match="embeds no code"):
        hex_to_bits("1", 0)


def test_random_code_is_seeded():
    a = random_code(32, torch.Generator().manual_seed(3))
    b = random_code(32, torch.Generator().manual_seed(3))
    assert a == b and len(a) == 8
