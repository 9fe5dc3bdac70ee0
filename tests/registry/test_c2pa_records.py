"""C2PA manifests kept per code (revision 0004): recorded, replaced, recovered by attribution."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import inspect, text

from advsig.errors import ProvenanceError
from advsig.provenance.lookup import record_manifest, recover_manifest, stored_manifest
from advsig.registry.allocation import allocate_code
from advsig.registry.attribution import CodeBook, attribute
from advsig.registry.db import current_revision, head_revision, make_engine, open_registry, upgrade
from advsig.registry.errors import CodeNotFoundError
from advsig.registry.owners import add_owner, revoke_code
from advsig.types import DetectionResult

SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _store(label: str, code_b64: str = "2Cw=") -> str:
    """A manifest store shaped as c2pa.Reader.json() writes it (trimmed)."""
    return json.dumps({
        "active_manifest": label,
        "manifests": {label: {
            "claim_generator_info": [{"name": "advsig", "version": "0.1.0"}],
            "title": "a.png", "label": label,
            "assertions": [
                {"label": "c2pa.actions.v2", "data": {"actions": [
                    {"action": "c2pa.created", "digitalSourceType": SOURCE}]}},
                {"label": "c2pa.soft-binding", "data": {
                    "alg": "com.advsig.signature.v1", "alg_params": '{"num_bits": 16}',
                    "blocks": [{"scope": {}, "value": code_b64}]}},
            ],
            "signature_info": {"common_name": "test signer", "issuer": "test"},
        }},
        "validation_results": {"activeManifest": {"failure": [
            {"code": "signingCredential.untrusted", "explanation": "signing certificate untrusted"}
        ]}},
        "validation_state": "Valid",
    })  # fmt: skip


def _signed(bits: str) -> DetectionResult:
    return DetectionResult(
        is_signed=True, score=5.0, p_value=1e-9, threshold=1.0, fpr=1e-3, bits=bits
    )


def test_recorded_manifest_is_recovered_with_the_match_p_value(registry):
    add_owner(registry, "acme")
    code = allocate_code(registry, "acme", kit="small", num_bits=16, seed=0).code
    assert record_manifest(registry, kit="small", code=code.upper(), store_json=_store("urn:1"))
    when = datetime(2030, 1, 1, tzinfo=timezone.utc)
    record_manifest(registry, kit="small", code=code, store_json=_store("urn:2"), recorded_at=when)
    assert stored_manifest(registry, kit="small", code=code) == (_store("urn:2"), when)  # replaced

    book = CodeBook.load(registry, kit="small", num_bits=16)
    flipped = f"{int(code, 16) ^ 1:04x}"  # one bit off, as after light processing
    found = attribute(_signed(flipped), book)
    got = recover_manifest(registry, found, kit="small")
    assert got is not None and got.p_value == found.p_value and got.distance == 1
    assert got.owner == "acme" and got.code == code and got.recorded_at == when
    assert got.manifest.source == "registry" and got.manifest.label == "urn:2"
    assert got.manifest.digital_source_type == SOURCE and got.manifest.code == "d82c"
    assert got.manifest.validation_state == "valid"
    assert "code" not in got.public_json_dict() and got.to_json_dict()["code"] == code
    assert "store_json" not in repr(got)

    revoke_code(registry, code, kit="small")  # revoked codes stay attributable, and so recoverable
    again = attribute(_signed(code), CodeBook.load(registry, kit="small", num_bits=16))
    assert recover_manifest(registry, again, kit="small").code_status == "revoked"


def test_nothing_is_recovered_without_a_match_or_a_record(registry):
    add_owner(registry, "acme")
    code = allocate_code(registry, "acme", kit="small", num_bits=16, seed=0).code
    book = CodeBook.load(registry, kit="small", num_bits=16)
    unsigned = DetectionResult(is_signed=False, score=-5.0, p_value=0.5, threshold=1.0, fpr=1e-3)
    assert recover_manifest(registry, attribute(unsigned, book), kit="small") is None
    exact = attribute(_signed(code), book)
    assert recover_manifest(registry, exact, kit="small") is None  # attributed, nothing recorded
    far = f"{int(code, 16) ^ 0x0FF0:04x}"  # 8 bits away: owner unknown
    record_manifest(registry, kit="small", code=code, store_json=_store("urn:1"))
    assert recover_manifest(registry, attribute(_signed(far), book), kit="small") is None


def test_recording_refuses_unknown_codes_and_non_manifests(registry):
    add_owner(registry, "acme")
    code = allocate_code(registry, "acme", kit="small", num_bits=16, seed=0).code
    with pytest.raises(CodeNotFoundError, match="'1234' is not registered for kit 'small'"):
        record_manifest(registry, kit="small", code="1234", store_json=_store("urn:1"))
    with pytest.raises(CodeNotFoundError, match="kit 'base'"):
        record_manifest(registry, kit="base", code=code, store_json=_store("urn:1"))
    with pytest.raises(ProvenanceError, match="not a C2PA manifest store"):
        record_manifest(registry, kit="small", code=code, store_json="{not json")
    with pytest.raises(ProvenanceError, match="no active manifest"):
        record_manifest(registry, kit="small", code=code, store_json="{}")


def test_upgrade_from_0003_keeps_codes_with_no_manifest(sqlite_url: str):
    engine = make_engine(sqlite_url)
    upgrade(engine, "0003")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO owners (name, created_at) VALUES ('old', '2024-01-01')"))
        conn.execute(text(
            "INSERT INTO codes (owner_id, kit, num_bits, value, min_distance, strategy, status, "
            "created_at) VALUES (1, 'small', 16, 'd82c', 4, 'random', 'active', '2024-01-01')"
        ))  # fmt: skip
    engine.dispose()
    with open_registry(sqlite_url) as reg:
        assert current_revision(reg.engine) == head_revision() == "0004"
        cols = {c["name"]: c for c in inspect(reg.engine).get_columns("codes")}
        assert cols["c2pa_manifest"]["nullable"] and cols["c2pa_manifest_at"]["nullable"]
        assert stored_manifest(reg, kit="small", code="d82c") is None
        record_manifest(reg, kit="small", code="d82c", store_json=_store("urn:1"))
        _downgrade(reg.engine, "0003")  # drops the columns, keeps the row
        assert "c2pa_manifest" not in {c["name"] for c in inspect(reg.engine).get_columns("codes")}
        with reg.engine.connect() as conn:
            assert conn.execute(text("SELECT value FROM codes")).scalar() == "d82c"


def _downgrade(engine, revision: str) -> None:
    from alembic import command

    from advsig.registry.db import _alembic_config

    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
