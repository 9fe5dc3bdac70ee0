"""Load test of ``advsig serve`` plus attribution accuracy with a full registry.

Everything stays on 127.0.0.1 and is bounded: each concurrency level stops after --requests
requests or --duration seconds, whichever comes first.

1. Service: starts ``advsig serve`` (subprocess, 127.0.0.1, a free port, a throwaway SQLite
   registry), then for 1, 8 and 32 concurrent clients POSTs one --size x --size PNG per request
   to /v1/detect (or /v1/attribute with --endpoint attribute) and reports throughput, p50/p99
   latency, errors and the server's mean batch size.
2. Offline: ``kit.logits`` on the same images in batches of 1 and 16 (the ceiling batching
   can reach), in the same run, after the server has stopped.
3. Attribution: registers --codes owners with one code each (min distance num_bits/4), signs
   --signed crops with random registered codes (uint8-quantised, as saved files are), mixes in
   --unsigned clean crops, and counts correct / wrong / unknown attributions.

Client and server share the machine's CPUs, so throughput is a lower bound of a dedicated server.

    python benchmarks/load_test.py --kit base --out benchmarks/results/load-base.json
    python benchmarks/load_test.py --quick      # a smoke run: few requests, small images
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch
from PIL import Image

from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.data.io import from_uint8, to_uint8
from advsig.kit import Kit
from advsig.registry import CodeBook, Verdict, attribute, kit_label, open_registry
from advsig.registry.allocation import allocate_code
from advsig.registry.keys import create_key
from advsig.registry.owners import add_owner
from advsig.utils import write_text_atomic

HOST = "127.0.0.1"


def crops(num: int, size: int, seed: int) -> list[torch.Tensor]:
    """``num`` size x size crops of the embedded test photos, (3, size, size) in [0, 1]."""
    photos = [img for _, img in embedded_images("test")]
    sampler = RandomCrops(ImagePool(photos, max_side=10_000), size)
    gen = torch.Generator().manual_seed(seed)
    return [quantize(c) for c in sampler.sample(num, gen)]


def quantize(image: torch.Tensor) -> torch.Tensor:
    return from_uint8(to_uint8(image))  # (3, H, W), as an 8-bit file would hold it


def png(image: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buf, format="PNG")
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --------------------------------------------------------------------------- service
class Server:
    """``advsig serve`` in a subprocess, stopped on exit."""

    def __init__(self, args, db_url: str, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        cmd = [
            sys.executable, "-m", "advsig", "serve", "--kit", args.kit, "--db", db_url,
            "--host", HOST, "--port", str(self.port), "--rate", "1000000",
            "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms),
            "--max-images", "4", "--device", args.device,
        ]  # fmt: skip
        self.log = log.open("w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}; see {self.log.name}"
                )
            try:
                if httpx.get(f"{self.base}/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"server not ready after {timeout:.0f} s; see {self.log.name}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


async def run_level(
    base: str,
    key: str,
    images: list[bytes],
    *,
    clients: int,
    requests: int,
    duration: float,
    endpoint: str = "detect",
) -> dict:
    """``clients`` concurrent clients share ``requests`` requests (or stop at ``duration``)."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0
    stop_at = time.monotonic() + duration
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(cl: httpx.AsyncClient, index: int) -> None:
        nonlocal sent
        while sent < requests and time.monotonic() < stop_at:
            data = images[(sent + index) % len(images)]
            sent += 1
            t0 = time.perf_counter()
            try:
                r = await cl.post(
                    f"{base}/v1/{endpoint}", headers=headers,
                    files=[("images", ("crop.png", data, "image/png"))],
                )  # fmt: skip
                ok = r.status_code == 200 and r.json()["results"][0]["error"] is None
                kind = None if ok else f"http {r.status_code}"
            except httpx.HTTPError as exc:
                kind = type(exc).__name__
            if kind is None:
                latencies.append(time.perf_counter() - t0)
            else:
                errors[kind] = errors.get(kind, 0) + 1

    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=120, limits=limits) as cl:
        await asyncio.gather(*(client(cl, i) for i in range(clients)))
    wall = time.perf_counter() - t0
    return {
        "clients": clients,
        "requests": sent,
        "ok": len(latencies),
        "errors": errors,
        "wall_s": round(wall, 3),
        "images_per_s": round(len(latencies) / wall, 2) if wall else None,
        "p50_ms": round(1000 * percentile(latencies, 0.50), 1),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 1),
        "mean_ms": round(1000 * statistics.fmean(latencies), 1) if latencies else None,
    }


def run_service(args, work: Path, images: list[bytes]) -> list[dict]:
    db_url = f"sqlite:///{work / 'serve.sqlite3'}"
    with open_registry(db_url) as reg:
        key = create_key(reg, "load-test", role="admin").key
    server = Server(args, db_url, work / "serve.log")
    levels = []
    try:
        server.wait_ready(180)
        headers = {"Authorization": f"Bearer {key}"}
        for clients in args.concurrency:
            before = httpx.get(f"{server.base}/v1/admin/stats", headers=headers).json()
            level = asyncio.run(
                run_level(
                    server.base,
                    key,
                    images,
                    clients=clients,
                    requests=args.requests,
                    duration=args.duration,
                    endpoint=args.endpoint,
                )  # fmt: skip
            )
            after = httpx.get(f"{server.base}/v1/admin/stats", headers=headers).json()
            batches = after["batches"] - before["batches"]
            level["mean_batch"] = round((after["images"] - before["images"]) / batches, 2) if batches else None  # fmt: skip
            levels.append(level)
            print(f"  {clients:>3} clients: {level}", flush=True)
    finally:
        server.stop()
    return levels


# --------------------------------------------------------------------------- offline
def run_offline(kit: Kit, images: list[torch.Tensor], batch_sizes: list[int]) -> dict:
    """Images/s of ``kit.logits`` per batch size, each timed over passes lasting >= 3 s."""
    out = {}
    kit.logits(images[:2])  # warm-up
    for bs in batch_sizes:
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 3.0:
            kit.logits(images, batch_size=bs)
            done += len(images)
        out[str(bs)] = round(done / (time.perf_counter() - t0), 2)
    return out


# --------------------------------------------------------------------------- attribution
def run_attribution(args, kit: Kit, work: Path) -> dict:
    rng = random.Random(args.seed)
    label = kit_label(args.kit)
    t0 = time.perf_counter()
    with open_registry(f"sqlite:///{work / 'attr.sqlite3'}") as reg:
        owners = [f"owner{i:05d}" for i in range(args.codes)]
        codes = {}
        for i, o in enumerate(owners):
            add_owner(reg, o)
            codes[o] = allocate_code(reg, o, kit=label, num_bits=kit.num_bits, seed=i).code
        book = CodeBook.load(reg, kit=label, num_bits=kit.num_bits)
    register_s = time.perf_counter() - t0

    signed_src = crops(args.signed, args.size, args.seed + 1)
    unsigned = crops(args.unsigned, args.size, args.seed + 2)
    truth = [rng.choice(owners) for _ in signed_src]
    t0 = time.perf_counter()
    signed = [
        quantize(kit.sign(img, code=codes[o])) for img, o in zip(signed_src, truth)
    ]  # (3, size, size) each
    sign_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    res_signed = kit.detect(signed, fpr=args.fpr)
    res_unsigned = kit.detect(unsigned, fpr=args.fpr)
    detect_s = time.perf_counter() - t0

    def tally(results, owners_true):
        counts = {"correct": 0, "wrong_owner": 0, "owner_unknown": 0, "not_signed": 0}
        for r, want in zip(results, owners_true):
            a = attribute(r, book, confidence=args.confidence)
            if a.verdict is Verdict.NOT_SIGNED:
                counts["not_signed"] += 1
            elif a.verdict is Verdict.OWNER_UNKNOWN:
                counts["owner_unknown"] += 1
            elif a.owner == want:
                counts["correct"] += 1
            else:
                counts["wrong_owner"] += 1
        return counts

    return {
        "codes": args.codes,
        "signed": tally(res_signed, truth),
        "unsigned": tally(res_unsigned, [None] * len(unsigned)),
        "fpr": args.fpr,
        "confidence": args.confidence,
        "min_distance": kit.num_bits // 4,
        "register_s": round(register_s, 2),
        "sign_s": round(sign_s, 2),
        "detect_s": round(detect_s, 2),
    }


# --------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="base")
    ap.add_argument("--size", type=int, default=256, help="Image side in pixels.")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--requests", type=int, default=400, help="Requests per level, at most.")
    ap.add_argument("--duration", type=float, default=120.0, help="Seconds per level, at most.")
    ap.add_argument(
        "--endpoint", choices=["detect", "attribute"], default="detect",
        help="Service endpoint to load (attribute also matches the registered codes).",
    )  # fmt: skip
    ap.add_argument("--max-batch", type=int, default=None, help="Default: advsig serve's.")
    ap.add_argument("--max-wait-ms", type=float, default=10.0)
    ap.add_argument("--codes", type=int, default=1000)
    ap.add_argument("--signed", type=int, default=1000)
    ap.add_argument("--unsigned", type=int, default=1000)
    ap.add_argument("--fpr", type=float, default=1e-3)
    ap.add_argument("--confidence", type=float, default=1e-3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="Write the results as JSON here.")
    ap.add_argument(
        "--quick", action="store_true", help="Smoke run: tiny sizes and counts (not a benchmark)."
    )
    args = ap.parse_args()
    if args.max_batch is None:  # advsig serve's default for the device
        args.max_batch = 4 if args.device == "cpu" else 16
    if args.quick:
        args.size, args.concurrency, args.requests, args.duration = 96, [1, 4], 8, 30.0
        args.codes, args.signed, args.unsigned = 50, 6, 6

    kit = Kit.from_pretrained(args.kit, device=args.device)
    images = crops(max(16, max(args.concurrency)), args.size, args.seed)
    pngs = [png(img) for img in images]
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="advsig-load-") as tmp:
        work = Path(tmp)
        print(
            f"service /v1/{args.endpoint} ({args.size}x{args.size} PNG, one image per request):",
            flush=True,
        )
        service = run_service(args, work, pngs)
        print("offline kit.logits ...", flush=True)
        offline = run_offline(kit, images, [1, 2, 4, 8, 16])
        print("attribution ...", flush=True)
        attribution = run_attribution(args, kit, work)
    results = {
        "kit": args.kit, "size": args.size, "device": args.device, "quick": args.quick,
        "endpoint": args.endpoint,
        "max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "service": service, "offline_images_per_s": offline, "attribution": attribution,
        "total_s": round(time.time() - started, 1),
    }  # fmt: skip
    print(render(results))
    if args.out is not None:
        write_text_atomic(args.out, json.dumps(results, indent=2) + "\n")


def render(r: dict) -> str:
    lines = [
        f"\n/v1/{r.get('endpoint', 'detect')}, kit {r['kit']}, {r['size']}x{r['size']}, "
        f"{r['device']}, {r['machine']['cpus']} CPUs"
        + (" (QUICK SMOKE RUN: not a measurement)" if r["quick"] else ""),
        "",
        "| clients | requests ok | errors | images/s | p50 ms | p99 ms | mean batch |",
        "|---|---|---|---|---|---|---|",
    ]
    for lv in r["service"]:
        errs = sum(lv["errors"].values())
        lines.append(
            f"| {lv['clients']} | {lv['ok']} | {errs} | {lv['images_per_s']} | {lv['p50_ms']} "
            f"| {lv['p99_ms']} | {lv['mean_batch']} |"
        )
    off = ", ".join(f"batch {k}: {v} img/s" for k, v in r["offline_images_per_s"].items())
    best = max(r["offline_images_per_s"].values())
    top = max(r["service"], key=lambda lv: lv["clients"])
    off += (
        f"\nservice at {top['clients']} clients / best offline batch: "
        f"{top['images_per_s']} / {best} = {top['images_per_s'] / best:.0%}"
    )
    a = r["attribution"]
    lines += [
        "",
        f"offline kit.logits: {off}",
        "",
        f"attribution with {a['codes']} registered codes (fpr {a['fpr']:g}, "
        f"confidence {a['confidence']:g}):",
        f"  signed   {a['signed']}",
        f"  unsigned {a['unsigned']}  (right answer: not_signed; wrong_owner = false attribution)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
