"""GET /metrics: Prometheus text with the right counts, for admin keys only."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from advsig.serve import create_app


def _auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a scrape."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_images_batches_and_queue(client, keys, png_bytes):
    files = [
        ("images", ("a.png", png_bytes["astronaut"], "image/png")),
        ("images", ("bad.png", b"not a png", "image/png")),
    ]
    results = []
    for _ in range(3):
        r = client.post("/v1/detect", files=files, headers=_auth(keys.detect))
        assert r.status_code == 200, r.text
        results += r.json()["results"]
    r = client.post(
        "/v1/attribute", files=files[:1], params={"fpr": 0.9}, headers=_auth(keys.detect)
    )
    assert r.status_code == 200, r.text
    (attributed,) = r.json()["results"]
    assert client.post("/v1/detect", files=files, headers=_auth("wrong")).status_code == 401
    assert client.get("/no/such/path").status_code == 404
    assert client.get("/").status_code == 200

    r = client.get("/metrics", headers=_auth(keys.admin))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    m = _samples(r.text)
    requests = "advsig_requests_total"
    assert _value(m, requests, method="POST", endpoint="/v1/detect", status="200") == 3
    assert _value(m, requests, method="POST", endpoint="/v1/detect", status="401") == 1
    assert _value(m, requests, method="POST", endpoint="/v1/attribute", status="200") == 1
    assert _value(m, requests, method="GET", endpoint="other", status="404") == 1
    assert _value(m, requests, method="GET", endpoint="/", status="200") == 1
    # The scrape itself is counted only once it has been answered.
    assert _value(m, requests, method="GET", endpoint="/metrics", status="200") == 0

    signed = sum(x["signed"] for x in results if x["error"] is None)
    images = "advsig_images_total"
    assert _value(m, images, endpoint="/v1/detect", outcome="error") == 3
    assert _value(m, images, endpoint="/v1/detect", outcome="signed") == signed
    assert _value(m, images, endpoint="/v1/detect", outcome="not_signed") == 3 - signed
    outcome = "signed" if attributed["signed"] else "not_signed"
    assert _value(m, images, endpoint="/v1/attribute", outcome=outcome) == 1
    verdict = attributed["attribution"]["verdict"]
    assert _value(m, "advsig_attributions_total", verdict=verdict) == 1

    duration = "advsig_request_duration_seconds_count"
    assert _value(m, duration, method="POST", endpoint="/v1/detect") == 4
    assert (
        _value(m, "advsig_request_duration_seconds_sum", method="POST", endpoint="/v1/detect") > 0
    )
    # 4 readable images went through the detector, in batches of 1 (requests came one by one).
    assert _value(m, "advsig_batch_size_sum") == 4
    assert _value(m, "advsig_batch_size_count") == 4
    assert _value(m, "advsig_batch_size_bucket", le="1.0") == 4
    assert _value(m, "advsig_batch_duration_seconds_count") == 4
    assert _value(m, "advsig_queued_images") == 0
    assert _value(m, "advsig_queue_capacity_images") == 256

    again = _samples(client.get("/metrics", headers=_auth(keys.admin)).text)
    assert _value(again, requests, method="GET", endpoint="/metrics", status="200") == 1


def test_metrics_label_routes_by_template_and_count_the_body_limit(client, keys):
    admin = _auth(keys.admin)
    for code in ("aa", "bb"):
        assert client.post(f"/v1/registry/codes/{code}/revoke", headers=admin).status_code == 404
    big = [("images", ("big.png", b"\0" * 500_000, "image/png"))]
    assert client.post("/v1/detect", files=big, headers=_auth(keys.detect)).status_code == 413
    m = _samples(client.get("/metrics", headers=admin).text)
    revoke = "/v1/registry/codes/{code}/revoke"
    assert _value(m, "advsig_requests_total", method="POST", endpoint=revoke, status="404") == 2
    assert not any("/aa/" in str(labels) for _, labels in m)
    assert (
        _value(m, "advsig_requests_total", method="POST", endpoint="/v1/detect", status="413") == 1
    )


def test_metrics_need_an_admin_key(client, keys):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=_auth("advsig_000000000000_secret")).status_code == 401
    r = client.get("/metrics", headers=_auth(keys.detect))
    assert r.status_code == 403 and "advsig_" not in r.text


def test_each_app_has_its_own_registry(tiny_kit, registry, keys, settings, png_bytes):
    from fastapi.testclient import TestClient

    files = [("images", ("a.png", png_bytes["coffee"], "image/png"))]
    with TestClient(create_app(tiny_kit, registry, settings)) as one:
        with TestClient(create_app(tiny_kit, registry, settings)) as two:
            assert one.post("/v1/detect", files=files, headers=_auth(keys.detect)).is_success
            m1 = _samples(one.get("/metrics", headers=_auth(keys.admin)).text)
            m2 = _samples(two.get("/metrics", headers=_auth(keys.admin)).text)
    key = {"method": "POST", "endpoint": "/v1/detect", "status": "200"}
    assert _value(m1, "advsig_requests_total", **key) == 1
    assert _value(m2, "advsig_requests_total", **key) == 0
