"""The page at ``/`` in a real headless Chromium, against uvicorn on 127.0.0.1.

Drives the system Chromium (Debian's ``chromium``; ``.ci/run`` installs it) through Playwright's
``executable_path``: no browser is downloaded. Served kit: the shipped ``small-v2``, because the
tests' untrained tiny kit scores signed and clean photos alike (its verdicts are arbitrary), and
the point here is that the page shows a signed image as signed and a clean one as not.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from advsig.data.io import load_image, to_uint8
from advsig.kit import Kit
from advsig.registry.allocation import allocate_code
from advsig.registry.db import Registry
from advsig.serve import ServeSettings, create_app

KIT = "small-v2"
# Functions, not expressions: the page's CSP forbids the eval Playwright uses for expressions.
DONE = """() => document.querySelectorAll('#results .result').length === 3
    && document.querySelectorAll('#results .verdict.pending').length === 0
    && document.getElementById('key-status').textContent.includes('Checked')"""


def test_the_page_is_served_from_the_package(client):
    for path in ("/", "/static/app.js", "/static/app.css"):
        r = client.get(path)
        assert r.status_code == 200 and r.content, path
        assert "script-src 'self'" in r.headers["content-security-policy"]
    assert 'src="/static/app.js"' in client.get("/").text
    assert client.get("/static/secret.txt").status_code == 404
    assert client.get("/static/..%2Fpage.py").status_code == 404


@pytest.fixture
def chromium() -> Iterator:
    """A headless system Chromium driven by Playwright; skipped when either is missing."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')"
    )
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("no system chromium (apt-get install -y chromium)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def server(registry: Registry, keys) -> Iterator[tuple[str, str]]:
    """uvicorn serving the shipped kit in a thread; yields (base URL, the code of "acme")."""
    import uvicorn

    code = allocate_code(registry, "acme", kit=KIT, num_bits=16, seed=0).code
    settings = ServeSettings(kit_label=KIT, max_wait_ms=5.0, key_cache_s=0.0, codebook_ttl_s=0.0)
    app = create_app(Kit.from_pretrained(KIT), registry, settings)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=srv.run, name="uvicorn-page-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", code
    finally:
        srv.should_exit = True
        thread.join(30)


@pytest.fixture
def images(tmp_path: Path, photo_cache: dict[str, Path], server) -> dict[str, Path]:
    """signed.png (signed with acme's code), clean.png, and broken.png (not an image)."""
    _, code = server
    kit = Kit.from_pretrained(KIT)
    paths = {name: tmp_path / f"{name}.png" for name in ("signed", "clean", "broken")}
    signed = kit.sign(load_image(photo_cache["astronaut"]).image, code=code)  # (3, H, W)
    Image.fromarray(to_uint8(signed)).save(paths["signed"])
    shutil.copy(photo_cache["clock"], paths["clean"])
    paths["broken"].write_bytes(b"this is not a PNG")
    # The kit's own answer, so that a failure below is the page's, not the kit's.
    s, c = kit.detect([load_image(paths[n]).image for n in ("signed", "clean")], fpr=1e-3)
    assert s.is_signed and s.bits == code and not c.is_signed, (s, c)
    return paths


def _cards(page) -> dict[str, dict]:
    """{file name: {verdict, text, body, bits}} read from the page's DOM."""
    return page.eval_on_selector_all(
        "#results .result",
        """cards => Object.fromEntries(cards.map(c => [c.dataset.name, {
            verdict: c.querySelector('.verdict').dataset.verdict,
            text: c.querySelector('.verdict').textContent,
            body: c.querySelector('.body').innerText,
            bits: c.querySelectorAll('.bit').length,
        }]))""",
    )


def test_page_shows_verdicts_owner_admin_registry_and_401(chromium, server, images, keys):
    base, code = server
    page = chromium.new_page()
    page.set_default_timeout(60_000)
    requested: list[str] = []
    page.on("request", lambda req: requested.append(req.url))
    errors: list[str] = []  # script errors, and anything the CSP blocked
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    expected = ("status of 401", "status of 403")  # the key check: wrong key, not an admin
    page.goto(base + "/")
    page.wait_for_function("() => document.getElementById('kit-info').textContent.includes('v2')")

    # A detect key: verdicts, score, p-value, code with its bits, the owner; no registry.
    page.fill("#api-key", keys.detect)
    page.set_input_files("#files", [str(images[n]) for n in ("signed", "clean", "broken")])
    page.wait_for_function(DONE)
    cards = _cards(page)
    signed, clean, broken = cards["signed.png"], cards["clean.png"], cards["broken.png"]
    assert (signed["verdict"], signed["text"]) == ("signed", "Signed")
    assert (clean["verdict"], clean["text"]) == ("not-signed", "Not signed")
    assert broken["verdict"] == "error" and "broken.png" in broken["body"]
    assert code in signed["body"] and signed["bits"] == 16 and "acme" in signed["body"]
    assert "p-value" in signed["body"] and "Score" in clean["body"] and clean["bits"] == 0
    assert "Registered code" not in signed["body"] and "C2PA" not in signed["body"]
    assert page.is_hidden("#registry") and page.is_hidden("#banner")

    # An admin key also sees the registry and the matched owner's registered code.
    page.fill("#api-key", keys.admin)
    page.click("#check")
    page.wait_for_selector("#registry", state="visible")
    page.wait_for_function(DONE)
    registry_text = page.inner_text("#registry")
    assert "acme" in registry_text and code in registry_text
    assert "Registered code" in _cards(page)["signed.png"]["body"]

    # A wrong key: the 401 message, in the banner, and no verdict left on screen.
    page.fill("#api-key", "advsig_000000000000_wrong")
    page.click("#check")
    page.wait_for_selector("#banner", state="visible")
    banner = page.inner_text("#banner")
    assert "401" in banner and "invalid or revoked API key" in banner
    assert {c["verdict"] for c in _cards(page).values()} == {"unchecked"}
    assert page.is_hidden("#registry")
    assert "refused" in page.inner_text("#key-status").lower()

    # A result with a `c2pa` field (none has one today) gets a one-line summary.
    summary = page.evaluate(
        """() => {
            const card = makeCards()[0];
            renderResult(card, {signed: false, score: 0, threshold: 1, p_value: 0.5, bits: null,
                                c2pa: {claim_generator: "cam/1.0", validation_state: "Valid"}});
            return card.querySelector('.c2pa').textContent;
        }"""
    )
    assert "cam/1.0" in summary and "Valid" in summary
    # The service's own shapes: an embedded manifest, and one recovered from the registry.
    texts = page.evaluate(
        """() => {
            const card = makeCards()[0];
            const manifest = (source) => ({
                source, validation_state: "valid", reason: null, trusted: false,
                label: "urn:c2pa:x", claim_generator: "advsig/0.1.0", title: "a.png",
                digital_source_type: "http://cv.iptc.org/newscodes/digitalsourcetype/"
                    + "trainedAlgorithmicMedia",
                signer: "test signer", code: null, soft_binding: null, failures: []});
            renderResult(card, {signed: true, score: 9, threshold: 1, p_value: 1e-6, bits: "d82c",
                                bit_confidence: [], owner: "acme", c2pa: manifest("embedded"),
                                attribution: {verdict: "attributed", distance: 0,
                                              p_value: 1.5e-5, reason: "0 of 16 bits differ"},
                                recovered_manifest: {p_value: 1.5e-5, distance: 0, owner: "acme",
                                                     recorded_at: "2025-01-02T03:04:05+00:00",
                                                     manifest: manifest("registry")}});
            return [...card.querySelectorAll('.c2pa')].map(n => n.textContent);
        }"""
    )
    embedded, recovered = texts
    assert "valid (untrusted signer)" in embedded and "trainedAlgorithmicMedia" in embedded
    assert recovered.startswith("recovered from the registry (p=1.50e-5, recorded 2025-01-02)")
    assert "advsig/0.1.0" in recovered and "test signer" in recovered

    assert not [e for e in errors if not any(x in e for x in expected)], errors
    assert all(u.startswith((base, "blob:")) for u in requested), requested  # nothing external
