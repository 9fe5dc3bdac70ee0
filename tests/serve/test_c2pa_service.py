"""C2PA in the service: the upload's embedded manifest, and the manifest recovered from the
registry once the file's metadata was stripped.

Served kit: the shipped ``small``, which really detects on the 96 px photos (every bit right on
lossless copies, see ``tests/provenance/conftest.py``), so recovery from the pixels is real.
The certificate chain is the throwaway one ``tests/provenance`` builds, loaded from its
conftest by path (``tests`` is not a package). Stripping is a lossless re-encode: PIL writes a
new PNG with the same pixels and no manifest (JPEG 85 also removes most of today's kits'
signature; ``benchmarks/bench_c2pa.py`` measures that).
"""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import pytest
from PIL import Image

from advsig.data.io import load_image, to_uint8
from advsig.kit import Kit
from advsig.provenance import ManifestSpec, ManifestWriter, load_credentials
from advsig.provenance.lookup import record_manifest
from advsig.registry.allocation import allocate_code
from advsig.registry.db import Registry
from advsig.serve import ServeSettings, create_app

KIT = "small"
GENERATED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _provenance_conftest():
    """``tests/provenance/conftest.py`` as a module of its own (for its chain builder)."""
    name = "_advsig_tests_provenance_conftest"
    if name not in sys.modules:
        path = Path(__file__).parents[1] / "provenance" / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its dataclasses look their module up while being built
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def chain_files(tmp_path_factory: pytest.TempPathFactory):
    """root -> intermediate -> leaf, made with ``cryptography`` (not advsig's dev chain)."""
    return _provenance_conftest()._write_chain(tmp_path_factory.mktemp("c2pa-chain"))


@pytest.fixture(scope="session")
def small_kit() -> Kit:
    return Kit.from_pretrained(KIT)


@pytest.fixture
def signed(
    tmp_path: Path, registry: Registry, keys, small_kit: Kit, chain_files, photo_cache
) -> dict:
    """acme's code for ``small``, an image signed with it and a manifest, recorded in the
    registry as ``advsig sign --c2pa --db`` records it; and the uploads derived from it."""
    code = allocate_code(registry, "acme", kit=KIT, num_bits=small_kit.num_bits, seed=0).code
    plain = tmp_path / "plain.png"
    image = small_kit.sign(load_image(photo_cache["astronaut"]).image, code=code)  # (3, H, W)
    Image.fromarray(to_uint8(image)).save(plain)
    writer = ManifestWriter(
        load_credentials(chain_files.chain, chain_files.key), ManifestSpec.for_kit(small_kit, code)
    )
    store = writer.embed(plain, tmp_path / "signed.png", format="png")
    record_manifest(registry, kit=KIT, code=code, store_json=store)
    stripped = io.BytesIO()
    Image.open(tmp_path / "signed.png").save(stripped, format="PNG")  # same pixels, no manifest
    return {
        "code": code,
        "signed.png": (tmp_path / "signed.png").read_bytes(),
        "stripped.png": stripped.getvalue(),
        "unsigned.png": photo_cache["camera"].read_bytes(),
    }


@pytest.fixture
def client(small_kit: Kit, registry: Registry, keys, signed):
    from fastapi.testclient import TestClient

    settings = ServeSettings(kit_label=KIT, max_wait_ms=5.0, key_cache_s=0.0, codebook_ttl_s=0.0)
    with TestClient(create_app(small_kit, registry, settings)) as c:
        yield c


def _post(client, endpoint: str, key: str, uploads: dict[str, bytes]) -> dict[str, dict]:
    files = [("images", (name, data, "image/png")) for name, data in uploads.items()]
    r = client.post(endpoint, files=files, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    return {x["path"]: x for x in r.json()["results"]}


def test_stripped_upload_recovers_the_recorded_manifest_with_a_p_value(client, keys, signed):
    uploads = {n: signed[n] for n in ("signed.png", "stripped.png", "unsigned.png")}
    rows = _post(client, "/v1/attribute", keys.detect, uploads)
    code = signed["code"]

    embedded = rows["signed.png"]["c2pa"]
    assert embedded["source"] == "embedded" and embedded["validation_state"] == "valid"
    assert embedded["reason"] is None and embedded["code"] == code  # what the file itself says
    assert embedded["digital_source_type"] == GENERATED

    s = rows["stripped.png"]
    assert s["c2pa"] is None and s["attribution"]["verdict"] == "attributed"
    got = s["recovered_manifest"]
    assert got is not None, s["attribution"]
    assert got["p_value"] == s["attribution"]["p_value"] and got["p_value"] <= 1e-3
    assert got["owner"] == "acme" and got["distance"] == 0 and got["code_status"] == "active"
    assert got["recorded_at"] is not None
    manifest = got["manifest"]
    assert manifest["source"] == "registry" and manifest["label"] == embedded["label"]
    assert manifest["digital_source_type"] == GENERATED and manifest["validation_state"] == "valid"
    # A detect key never sees a registered code, not even through the manifest's soft binding.
    assert got["code"] is None and manifest["code"] is None
    assert manifest["soft_binding"]["code"] is None and manifest["soft_binding"]["num_bits"] == 16

    assert rows["signed.png"]["recovered_manifest"]["manifest"]["label"] == embedded["label"]
    u = rows["unsigned.png"]
    assert u["attribution"]["verdict"] == "not signed"
    assert u["c2pa"] is None and u["recovered_manifest"] is None


def test_admin_keys_see_the_registered_code_of_a_recovered_manifest(client, keys, signed):
    got = _post(client, "/v1/attribute", keys.admin, {"s.png": signed["stripped.png"]})["s.png"]
    rec = got["recovered_manifest"]
    assert rec["code"] == signed["code"] and rec["manifest"]["code"] == signed["code"]
    assert rec["manifest"]["soft_binding"]["code"] == signed["code"]


def test_detect_reports_the_embedded_manifest_only(client, keys, signed):
    uploads = {
        "signed.png": signed["signed.png"], "stripped.png": signed["stripped.png"],
        "empty.png": b"", "truncated.png": signed["signed.png"][:2000],
    }  # fmt: skip
    rows = _post(client, "/v1/detect", keys.detect, uploads)
    assert rows["signed.png"]["c2pa"]["validation_state"] == "valid"
    assert rows["signed.png"]["c2pa"]["code"] == signed["code"]
    assert rows["stripped.png"]["c2pa"] is None and rows["stripped.png"]["signed"]
    assert all("recovered_manifest" not in r for r in rows.values())
    # Unreadable uploads fail alone, with their own error and no manifest.
    for name in ("empty.png", "truncated.png"):
        assert rows[name]["error"] and rows[name]["c2pa"] is None
