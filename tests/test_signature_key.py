"""Kit keys: created once, read back, never overwritten, never in config.json."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch

from advsig.errors import KeyFileError
from advsig.models.factory import create_model
from advsig.signature_key import key_fingerprint, load_or_create_key, read_key, write_key


def test_key_file_is_created_private_and_reread(tmp_path) -> None:
    path = tmp_path / "sub" / "k.key"
    key = load_or_create_key(path)
    assert len(key) == 32 and load_or_create_key(path) == key == read_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        write_key(path, key)
    assert key_fingerprint(key) != key_fingerprint(load_or_create_key(tmp_path / "other.key"))
    assert key.hex() not in key_fingerprint(key)


@pytest.mark.parametrize("text", ["not hex", "abcd", ""])
def test_bad_key_files_fail_by_name(tmp_path, text) -> None:
    path = tmp_path / "bad.key"
    path.write_text(text)
    with pytest.raises(KeyFileError, match="bad.key"):
        read_key(path)


def test_the_key_changes_the_signature() -> None:
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    bits = torch.randint(0, 2, (2, 8), generator=torch.Generator().manual_seed(1))
    a = create_model("injector-tiny", num_bits=8)
    a.rekey(b"a" * 32)
    again = create_model("injector-tiny", num_bits=8)
    again.rekey(b"a" * 32)
    b = create_model("injector-tiny", num_bits=8)
    b.rekey(b"b" * 32)
    ra, rb = a.residual(x, bits), b.residual(x, bits)
    assert torch.equal(ra, again.residual(x, bits))
    cos = torch.nn.functional.cosine_similarity(ra.flatten(1), rb.flatten(1), dim=1)
    assert cos.abs().max() < 0.3


def test_trained_kit_records_a_fingerprint_not_the_key(trained_tiny_kit) -> None:
    kit, path = trained_tiny_kit
    key = read_key(path.parent / "test.key")  # the fixture's --key-file (outside the kit)
    assert not (path / "signature.key").exists()
    text = (path / "config.json").read_text()
    assert key.hex() not in text and key.hex()[:16] not in text
    assert json.loads(text)["key_fingerprint"] == key_fingerprint(key) == kit.key_fingerprint
    assert kit.bound
