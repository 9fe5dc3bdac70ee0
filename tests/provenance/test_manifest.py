"""C2PA manifests written by ``ManifestWriter`` and read back by ``read_manifest``: their
assertions, their validation state, and what tampering does to it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from advsig.errors import ConfigError
from advsig.provenance import (
    SOURCE_TYPES,
    ManifestSpec,
    ManifestWriter,
    kit_fingerprint,
    load_credentials,
    read_manifest,
)
from advsig.provenance.manifest import code_to_value, value_to_code


@pytest.fixture(scope="module")
def writer(chain_files, small_kit) -> ManifestWriter:
    creds = load_credentials(chain_files.chain, chain_files.key)
    return ManifestWriter(creds, ManifestSpec.for_kit(small_kit, "c3a5"))


def _embed(writer: ManifestWriter, photo: Path, out: Path, format: str) -> Path:
    plain = out.with_name("plain" + out.suffix)
    image = Image.open(photo).convert("RGB")
    image.save(plain, format="PNG" if format == "png" else "JPEG", quality=95)
    writer.embed(plain, out, format=format)
    return out


@pytest.mark.parametrize("format, suffix", [("png", ".png"), ("jpeg", ".jpg")])
def test_written_manifest_reads_back_valid_with_source_type_and_code(
    writer, small_kit, photo_cache, tmp_path: Path, chain_files, format: str, suffix: str
):
    out = _embed(writer, photo_cache["astronaut"], tmp_path / f"signed{suffix}", format)
    m = read_manifest(out)
    assert m is not None and m.source == "embedded"
    assert m.validation_state == "valid" and not m.trusted and m.reason is None
    assert m.failures == ("signingCredential.untrusted: signing certificate untrusted",)
    assert m.digital_source_type == SOURCE_TYPES["generated"]
    assert m.code == "c3a5" and m.title == out.name
    assert m.label and m.label.startswith("urn:c2pa:")
    assert m.claim_generator.startswith("advsig/")
    assert m.soft_binding.alg == "com.advsig.signature.v1"  # `small` is a v1 kit
    assert m.soft_binding.kit_fingerprint == kit_fingerprint(small_kit)
    assert m.soft_binding.num_bits == 16 and "test signer" in m.signer
    assert json.loads(writer.last_store_json)["active_manifest"] == m.label  # kept for the registry

    assert read_manifest(out.read_bytes()) == m  # an upload's bytes read the same
    trusted = read_manifest(out, trust_anchors=chain_files.root)
    assert trusted.validation_state == "trusted" and trusted.trusted and trusted.failures == ()
    d = m.to_json_dict()
    assert d["code"] == "c3a5" and d["validation_state"] == "valid" and d["trusted"] is False
    json.dumps(d)  # JSON-ready


def test_composite_source_type_for_photos(chain_files, small_kit, photo_cache, tmp_path: Path):
    creds = load_credentials(chain_files.chain, chain_files.key)
    spec = ManifestSpec.for_kit(small_kit, "0001", source_type="composite")
    out = _embed(ManifestWriter(creds, spec), photo_cache["coffee"], tmp_path / "s.png", "png")
    assert read_manifest(out).digital_source_type.endswith("compositeWithTrainedAlgorithmicMedia")
    with pytest.raises(ConfigError, match="'painted'"):
        ManifestSpec.for_kit(small_kit, "0001", source_type="painted")


def test_changed_pixels_make_the_manifest_invalid_with_the_reason(
    writer, photo_cache, tmp_path: Path
):
    png = _embed(writer, photo_cache["chelsea"], tmp_path / "signed.png", "png")
    data = bytearray(png.read_bytes())
    i = data.index(b"IDAT") + 40  # inside the compressed pixels, not the manifest
    data[i] ^= 0xFF
    (tmp_path / "pixels.png").write_bytes(data)
    m = read_manifest(tmp_path / "pixels.png")
    assert m.validation_state == "invalid" and not m.is_valid
    assert "assertion.dataHash.mismatch" in m.reason
    assert "untrusted" not in m.reason  # the reason is the damage, not the dev signer

    jpg = _embed(writer, photo_cache["chelsea"], tmp_path / "signed.jpg", "jpeg")
    data = bytearray(jpg.read_bytes())
    data[-50] ^= 0xFF  # entropy-coded scan, just before the end-of-image marker
    (tmp_path / "pixels.jpg").write_bytes(data)
    assert "assertion.dataHash.mismatch" in read_manifest(tmp_path / "pixels.jpg").reason


@pytest.mark.parametrize("suffix, format", [(".png", "png"), (".jpg", "jpeg")])
def test_edited_manifest_bytes_make_it_invalid(
    writer, photo_cache, tmp_path: Path, suffix: str, format: str
):
    out = _embed(writer, photo_cache["camera"], tmp_path / f"signed{suffix}", format)
    data = bytearray(out.read_bytes())
    i = data.index(b"com.advsig.signature.v1")
    data[i + len("com.advsig.signature.v")] = ord("9")  # claim a different algorithm
    tampered = tmp_path / f"tampered{suffix}"
    tampered.write_bytes(data)
    m = read_manifest(tampered)
    assert m.validation_state == "invalid"
    assert "assertion.hashedURI.mismatch" in m.reason and "c2pa.soft-binding" in m.reason


def test_a_truncated_manifest_is_invalid_not_absent(writer, photo_cache, tmp_path: Path):
    out = _embed(writer, photo_cache["rocket"], tmp_path / "signed.png", "png")
    cut = tmp_path / "cut.png"
    data = out.read_bytes()
    cut.write_bytes(data[: data.index(b"c2pa") + 4000])
    m = read_manifest(cut)
    assert m is not None and m.validation_state == "invalid" and m.reason
    assert read_manifest(cut.read_bytes(), format="image/png") == m


def test_images_without_a_manifest_read_as_none(photo_cache, tmp_path: Path):
    assert read_manifest(photo_cache["astronaut"]) is None
    Image.open(photo_cache["astronaut"]).convert("RGB").save(tmp_path / "a.jpg", quality=85)
    Image.open(photo_cache["astronaut"]).save(tmp_path / "a.bmp")
    assert read_manifest(tmp_path / "a.jpg") is None
    assert read_manifest(tmp_path / "a.bmp") is None  # a format c2pa does not read


@pytest.mark.parametrize("code, num_bits", [("c3a5", 16), ("3ff", 10), ("00c0ffee", 32), (None, 8)])
def test_soft_binding_value_round_trips(code, num_bits: int):
    value = code_to_value(code, num_bits)
    assert value_to_code(value, num_bits) == (code or "0" * ((num_bits + 3) // 4))
