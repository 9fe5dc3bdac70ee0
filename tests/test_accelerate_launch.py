"""``accelerate launch -m advsig sign|detect`` with two real CPU processes sharing the work."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(*args: str | Path) -> subprocess.CompletedProcess:
    """Two processes on CPU.

    ``accelerate launch --cpu --num_processes 2`` starts a single process in accelerate 1.x; the
    torchrun-based launcher behind ``--multi_gpu`` starts two, and with no visible GPU advsig
    joins them into one CPU (gloo) group.
    """
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()),
        "-m", "advsig", *map(str, args),
    ]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def test_two_processes_sign_each_file_once_and_detect_merges_results(
    tiny_kit_dir: Path, photo_cache: dict[str, Path], tmp_path: Path
) -> None:
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    for i, path in enumerate(sorted(photo_cache.values())):
        shutil.copy(path, src / ("sub" if i % 2 else ".") / path.name)
    assert len(photo_cache) == 6
    dst = tmp_path / "signed"

    signed = launch("sign", src, dst, "--kit", tiny_kit_dir)
    assert signed.returncode == 0, signed.stderr[-3000:]
    summaries = [line for line in signed.stdout.splitlines() if line.startswith("signed ")]
    assert summaries == [summaries[0]] and summaries[0].startswith("signed 6, skipped 0")
    outputs = sorted(p.relative_to(dst) for p in dst.rglob("*") if p.is_file())
    assert outputs == sorted(p.relative_to(src) for p in src.rglob("*.png"))

    detected = launch("detect", dst, "--kit", tiny_kit_dir, "--json")
    assert detected.returncode == 0, detected.stderr[-3000:]
    rows = [json.loads(line) for line in detected.stdout.splitlines()]
    assert [r["path"] for r in rows] == [str(p) for p in sorted(dst.rglob("*.png"))]
    assert all(r["error"] is None and 0 <= r["p_value"] <= 1 for r in rows)
