"""C2PA after metadata stripping: is a signed image's manifest recovered from its pixels alone?

What it does, in a temporary folder (SQLite registry, development C2PA chain in a temporary
``ADVSIG_DATA_DIR``; nothing outside it is touched):

1. Registers one code for the owner ``owner`` and ``--num-codes - 1`` codes for other owners,
   so the match p-value counts a realistic code book. Every code gets a recorded manifest (the
   others on a small plain image), so an unsigned image attributed to *any* code counts as a
   false recovery, not only one that lands on the owner's code.
2. Signs ``--num-signed`` crops with the owner's code (``kit.sign`` in batches), saves each as
   PNG and embeds a signed C2PA manifest in it (one ``ManifestWriter.embed`` per file, as
   ``advsig sign --c2pa`` does), then records the last manifest for the code, as
   ``advsig sign --c2pa --db`` does.
3. Strips the metadata: PIL decodes each signed file and writes the pixels alone, as JPEG at
   ``--jpeg`` quality (and, as a reference row, as a lossless PNG), and checks that no manifest
   is left in the stripped bytes.
4. Runs the recovery path of ``advsig registry attribute`` and ``POST /v1/attribute``:
   detection at ``--fpr`` (batched ``kit.logits`` on the decoded tensors, then
   ``kit.results_from_logits``), ``attribute`` against the code book at ``--confidence``, then
   ``recover_manifest``. ``--num-unsigned`` clean images go through the same strip and path.
   Attribution weighs each bit by the detector's confidence (the default); the JSON also counts
   what plain Hamming matching would have attributed (``*_hamming_only``).

Images (photos no shipped kit trained on; the kits train on the embedded "train" split):
signed images are ``--size`` crops of the embedded *test* photos, exactly the targets of
``bench_security.py``; unsigned images are distinct random crops (another seed) of the test
and *val* photos (``--unsigned-splits``). The val photos set the kits' detection thresholds but
were never trained on.

A 16-bit kit with 100 registered codes cannot attribute at confidence 1e-3 at all: even an
exact match has p = 1 - (1 - 2^-16)^100 = 1.5e-3. The script prints the best p-value possible
with the code book, and says when it is above the confidence.

    python benchmarks/bench_c2pa.py --kit small-v2 --num-signed 32 --num-unsigned 100 \\
        --size 256 --jpeg 85 --out benchmarks/results/c2pa-small-v2.json

Prints a Markdown table and writes the numbers as JSON (atomically).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_security import targets  # noqa: E402

from advsig.codes.bits import bits_to_hex, hex_to_bits  # noqa: E402
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images  # noqa: E402
from advsig.data.io import from_uint8, to_uint8  # noqa: E402
from advsig.kit import Kit  # noqa: E402
from advsig.registry.attribution import CodeBook, Verdict, attribute, match_p_value  # noqa: E402
from advsig.utils import write_text_atomic  # noqa: E402

OWNER = "owner"


def unsigned_crops(splits: tuple[str, ...], size: int, num: int, seed: int) -> list[torch.Tensor]:
    """``num`` random ``size`` crops of the embedded photos of ``splits`` (another seed than
    the signed targets, so the crops differ)."""
    photos = [img for s in splits for _, img in embedded_images(s)]
    crops = RandomCrops(ImagePool(photos, max_side=512), size)
    return list(crops.sample(num, torch.Generator().manual_seed(seed + 4049)))


def strip(data: bytes, quality: int) -> bytes:
    """The decoded pixels of an image file, re-encoded with no metadata: JPEG at ``quality``,
    or lossless PNG for quality 0."""
    buf = io.BytesIO()
    image = Image.open(io.BytesIO(data)).convert("RGB")
    if quality:
        image.save(buf, format="JPEG", quality=quality)
    else:
        image.save(buf, format="PNG")
    return buf.getvalue()


def decode(data: bytes) -> torch.Tensor:
    """float32 (3, H, W) in [0, 1] from image file bytes."""
    return from_uint8(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))


def png_bytes(image: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buf, format="PNG")
    return buf.getvalue()


def build_registry(reg, kit: Kit, label: str, *, num_codes: int, seed: int, writer_for, tmp: Path):
    """Register the owner's code and ``num_codes - 1`` others, each with a recorded manifest
    (the others signed onto one small plain PNG). Returns the owner's code."""
    from advsig.provenance.lookup import record_manifest
    from advsig.registry.allocation import allocate_code
    from advsig.registry.owners import add_owner

    add_owner(reg, OWNER)
    code = allocate_code(reg, OWNER, kit=label, num_bits=kit.num_bits, seed=seed).code
    plain = tmp / "other-plain.png"
    Image.new("RGB", (64, 64), (120, 130, 140)).save(plain)
    for i in range(num_codes - 1):
        other = f"other-{i:04d}"
        add_owner(reg, other)
        c = allocate_code(reg, other, kit=label, num_bits=kit.num_bits, seed=seed + 1 + i).code
        store = writer_for(c).embed(plain, tmp / "other-signed.png", format="png")
        record_manifest(reg, kit=label, code=c, store_json=store)
    return code


def evaluate(kit, reg, book, label, files: list[bytes], *, code: str | None, args) -> dict:
    """Strip every file's metadata, then detect, attribute and recover; counts per condition.

    ``code`` is the embedded code for signed files, None for unsigned ones.
    """
    from advsig.provenance.lookup import recover_manifest
    from advsig.provenance.summary import read_manifest

    conditions = {"png (lossless)": 0, **({f"jpeg {args.jpeg}": args.jpeg} if args.jpeg else {})}
    want = hex_to_bits(code, kit.num_bits).bool() if code is not None else None
    out = {}
    for name, quality in conditions.items():
        t = time.perf_counter()
        stripped = [strip(f, quality) for f in files]
        left = sum(read_manifest(s) is not None for s in stripped)
        images = [decode(s) for s in stripped]
        t_strip = time.perf_counter() - t
        t = time.perf_counter()
        logits = kit.logits(images, batch_size=args.batch_size)  # (N, 1 + num_bits)
        sizes = [tuple(img.shape[-2:]) for img in images]
        results = kit.results_from_logits(logits, fpr=args.fpr, sizes=sizes)
        t_detect = time.perf_counter() - t
        t = time.perf_counter()
        found = [attribute(r, book, confidence=args.confidence) for r in results]
        recovered = [recover_manifest(reg, a, kit=label) for a in found]
        t_recover = time.perf_counter() - t
        # The same rule without the bits' confidences (plain Hamming matching), for comparison.
        plain = [attribute(r, book, confidence=args.confidence, weighted=False) for r in results]
        plain_ok = [a.verdict is Verdict.ATTRIBUTED and a.code == code for a in plain]
        row = {
            "images": len(files),
            "manifests_left_after_strip": left,
            "detected": sum(r.is_signed for r in results),
            "attributed": sum(a.verdict is Verdict.ATTRIBUTED for a in found),
            "attributed_hamming_only": sum(a.verdict is Verdict.ATTRIBUTED for a in plain),
            "recovered": sum(m is not None for m in recovered),
            "wall_s": {"strip": round(t_strip, 2), "detect": round(t_detect, 2),
                       "attribute_recover": round(t_recover, 2)},
        }  # fmt: skip
        if want is not None:
            bits = logits[:, 1:] > 0  # (N, num_bits), read whether or not it was detected
            row["bit_accuracy"] = round(float((bits == want).float().mean()), 4)
            row["recovered_share"] = round(row["recovered"] / len(files), 4)
            row["recovered_wrong_code"] = sum(m is not None and m.code != code for m in recovered)
            row["right_code_hamming_only"] = sum(plain_ok)
            dists = [a.distance for a in found if a.distance is not None]
            row["distance_to_nearest_code"] = {
                str(d): dists.count(d) for d in sorted(set(dists))
            }  # fmt: skip
        else:
            row["false_recoveries"] = row["recovered"]
            # The match's p-value on its own, on a real null: every unsigned image's bits
            # attributed as if the detector had flagged it. Expect about confidence x images.
            ungated = [
                attribute(dataclasses.replace(
                    r, is_signed=True, bits=bits_to_hex((lg[1:] > 0).float()),
                    bit_confidence=tuple(torch.sigmoid(lg[1:].abs()).tolist()),
                ), book, confidence=args.confidence)
                for r, lg in zip(results, logits)
            ]  # fmt: skip
            row["attributed_without_detection_gate"] = sum(
                a.verdict is Verdict.ATTRIBUTED for a in ungated
            )
        out[name] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="small-v2")
    ap.add_argument("--num-signed", type=int, default=32)
    ap.add_argument("--num-unsigned", type=int, default=100)
    ap.add_argument("--size", type=int, default=256, help="crop side in pixels")
    ap.add_argument("--jpeg", type=int, default=85, help="JPEG quality after stripping; 0: none")
    ap.add_argument("--num-codes", type=int, default=100, help="registered codes in all")
    ap.add_argument("--fpr", type=float, default=1e-3, help="detection false-positive rate")
    ap.add_argument("--confidence", type=float, default=1e-3, help="attribution p-value bound")
    ap.add_argument("--unsigned-splits", default="test,val")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0: torch's default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="default: benchmarks/results/c2pa-KIT.json")
    args = ap.parse_args()
    if args.num_signed < 1 or args.num_codes < 1 or args.num_unsigned < 0:
        ap.error("--num-signed and --num-codes must be >= 1, --num-unsigned >= 0")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    out_path = Path(args.out or f"benchmarks/results/c2pa-{args.kit}.json")
    start = time.perf_counter()

    kit = Kit.from_pretrained(args.kit)
    if kit.num_bits < 1:
        sys.exit(f"kit {args.kit!r} embeds no code: nothing to attribute")
    best_p = match_p_value(kit.num_bits, 0, args.num_codes)
    signed_src = targets(args.size, args.num_signed, args.seed)
    splits = tuple(s for s in args.unsigned_splits.split(",") if s)
    unsigned_src = unsigned_crops(splits, args.size, args.num_unsigned, args.seed)

    with tempfile.TemporaryDirectory(prefix="advsig-bench-c2pa-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["ADVSIG_DATA_DIR"] = str(tmp / "data")  # the dev chain goes here
        from advsig.provenance import ManifestSpec, ManifestWriter, resolve_credentials
        from advsig.provenance.lookup import record_manifest
        from advsig.registry.db import kit_label, open_registry

        credentials = resolve_credentials()

        def writer_for(code: str) -> ManifestWriter:
            return ManifestWriter(credentials, ManifestSpec.for_kit(kit, code))

        label = kit_label(args.kit)
        with open_registry(f"sqlite:///{tmp / 'registry.sqlite3'}") as reg:
            t = time.perf_counter()
            code = build_registry(
                reg, kit, label, num_codes=args.num_codes, seed=args.seed,
                writer_for=writer_for, tmp=tmp,
            )  # fmt: skip
            t_registry = time.perf_counter() - t

            t = time.perf_counter()
            signed = kit.sign(torch.stack(signed_src), code=code)  # (N, 3, size, size)
            t_sign = time.perf_counter() - t
            t = time.perf_counter()
            writer = writer_for(code)
            signed_files = []
            for i, image in enumerate(signed):
                plain, dst = tmp / f"plain-{i:04d}.png", tmp / f"signed-{i:04d}.png"
                plain.write_bytes(png_bytes(image))
                writer.embed(plain, dst, format="png")
                signed_files.append(dst.read_bytes())
            record_manifest(reg, kit=label, code=code, store_json=writer.last_store_json)
            t_embed = time.perf_counter() - t
            unsigned_files = [png_bytes(img) for img in unsigned_src]

            book = CodeBook.load(reg, kit=label, num_bits=kit.num_bits)
            signed_rows = evaluate(kit, reg, book, label, signed_files, code=code, args=args)
            unsigned_rows = evaluate(kit, reg, book, label, unsigned_files, code=None, args=args)

    wall = time.perf_counter() - start
    result = {
        "command": "python benchmarks/bench_c2pa.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "kit": args.kit, "bound": kit.bound, "num_bits": kit.num_bits, "size": args.size,
        "code": code, "num_codes": len(book), "fpr": args.fpr, "confidence": args.confidence,
        "best_possible_p_value": best_p, "attribution_possible": best_p <= args.confidence,
        "signed_source": "crops of the embedded test photos (bench_security.targets)",
        "unsigned_source": f"random crops of the embedded {'+'.join(splits)} photos",
        "signed": signed_rows, "unsigned": unsigned_rows,
        "wall_s": {"total": round(wall, 1), "registry": round(t_registry, 1),
                   "sign": round(t_sign, 1), "c2pa_embed": round(t_embed, 1)},
    }  # fmt: skip
    write_text_atomic(out_path, json.dumps(result, indent=1) + "\n")

    print(
        f"\n### C2PA recovery after stripping: kit `{args.kit}` ({kit.num_bits} bits), "
        f"{args.size} px, {len(book)} registered codes, fpr {args.fpr:g}, "
        f"confidence {args.confidence:g}, {wall:.0f} s\n"
    )
    print(
        "| stripped as | signed: manifest recovered | bit accuracy | detected | attributed "
        "| right owner, Hamming only | unsigned: false recoveries | unsigned detected |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, s in signed_rows.items():
        u = unsigned_rows[name]
        print(
            f"| {name} | {s['recovered']}/{s['images']} ({s['recovered_share']:.0%}) "
            f"| {s['bit_accuracy']:.3f} | {s['detected']}/{s['images']} "
            f"| {s['attributed']}/{s['images']} | {s['right_code_hamming_only']}/{s['images']} "
            f"| {u['false_recoveries']}/{u['images']} "
            f"| {u['detected']}/{u['images']} |"
        )
    if best_p > args.confidence:
        print(
            f"\nNote: with {kit.num_bits} bits and {len(book)} codes even an exact match has "
            f"p = {best_p:.2g} > confidence {args.confidence:g}: nothing can be attributed."
        )
    for name, u in unsigned_rows.items():
        print(
            f"\n{name}: unsigned images attributed when the detection gate is skipped (the "
            f"match's own p-value at {args.confidence:g}): "
            f"{u['attributed_without_detection_gate']}/{u['images']}"
        )
    left = sum(r["manifests_left_after_strip"] for r in (*signed_rows.values(),))
    if left:
        print(f"\nWarning: {left} stripped files still carry a manifest.")
    print(f"\nwrote {out_path}")


if __name__ == "__main__":
    main()
