"""The real thing: ``advsig serve`` in its own process, spoken to over HTTP on 127.0.0.1, then
killed with SIGKILL in the middle of registry writes."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from advsig.registry.allocation import allocate_code, hamming
from advsig.registry.db import kit_label, open_registry
from advsig.registry.owners import list_codes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(base: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not come up"
        time.sleep(0.3)


def test_advsig_serve_answers_over_http_and_survives_kill_9(
    tiny_kit_dir: Path, registry, keys, png_bytes, tmp_path: Path
):
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    log_path = tmp_path / "serve.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "advsig", "serve", "--kit", str(tiny_kit_dir),
            "--db", registry.url, "--host", "127.0.0.1", "--port", str(port), "--fpr", "0.01",
            "--rate", "100000",
        ],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {keys.admin}"}
    acknowledged: list[str] = []
    try:
        _wait_healthy(base, proc, log_path)
        files = [
            ("images", ("a.png", png_bytes["astronaut"], "image/png")),
            ("images", ("b.png", png_bytes["clock"], "image/png")),
        ]
        for endpoint in ("/v1/detect", "/v1/attribute"):
            r = httpx.post(
                f"{base}{endpoint}", files=files, timeout=60,
                headers={"Authorization": f"Bearer {keys.detect}"},
            )  # fmt: skip
            assert r.status_code == 200, r.text
            assert [x["path"] for x in r.json()["results"]] == ["a.png", "b.png"]
            assert all(x["error"] is None for x in r.json()["results"])
        assert httpx.post(f"{base}/v1/detect", files=files, timeout=60).status_code == 401
        assert httpx.get(f"{base}/openapi.json", timeout=10).status_code == 200

        # Assign codes through the service as fast as it goes, and kill it mid-stream.
        stop = threading.Event()

        def writer() -> None:
            with httpx.Client(base_url=base, headers=admin, timeout=30) as client:
                for i in itertools.count():
                    if stop.is_set():
                        return
                    try:
                        r = client.post(
                            "/v1/registry/codes", json={"owner": "acme", "model": "m", "seed": i}
                        )
                    except httpx.TransportError:
                        return  # the server is gone
                    if r.status_code != 201:
                        return  # 409: the 8-bit space is full
                    acknowledged.append(r.json()["code"])

        thread = threading.Thread(target=writer)
        thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 5 and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "Uvicorn running on" in log_path.read_text()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        stop.set()
        thread.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(acknowledged) >= 5

    label = kit_label(tiny_kit_dir)
    with open_registry(registry.url) as reg:
        with reg.read() as s:
            assert s.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        stored = [c for c in list_codes(reg, kit=label)]
        values = [c.code for c in stored]
        # Every answered write is there; at most the one in flight was committed unanswered.
        assert set(acknowledged) <= set(values) and len(values) <= len(acknowledged) + 1
        assert all(c.assigned_by == "api-key:ops" and c.model == "m" for c in stored)
        for a, b in itertools.combinations([0, *(int(v, 16) for v in values)], 2):
            assert hamming(a, b) >= 2  # the 8-bit default distance
        t0 = time.monotonic()  # no lock outlived the process
        allocate_code(reg, "acme", kit="after-kill", num_bits=8, seed=0)
        assert time.monotonic() - t0 < 10
