"""Can the registry name the owner from a kit's decoded bits? Exact attribution, not bit accuracy.

Bit accuracy alone does not say whether an owner is named: the registry matches the decoded
bits against its code book, weighting each bit by the detector's confidence, and names an owner
only at p <= 1e-3 (``advsig.registry.attribution``). This probe builds a code book of M codes
the way the registry allocates them (BCH codewords at its default minimum distance), signs 256 px
test crops each with one of them, applies the light processings, and counts per processing:
flagged, attributed to the right owner, to a wrong one, and "signed, owner unknown".

    python benchmarks/probe_attribution.py --kit base-v2-odd [--codes 256]
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch

from advsig.attacks.forgery import round8
from advsig.bench.runner import resolve_attacks
from advsig.codes.bits import hex_to_bits
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.kit import Kit
from advsig.registry.allocation import bch_encode, bch_spec, default_min_distance, to_hex
from advsig.registry.attribution import CodeBook, RegisteredCode, Verdict, attribute


def code_book(num_bits: int, num_codes: int, seed: int) -> CodeBook:
    """``num_codes`` distinct BCH codewords (the registry's allocation), one owner each; at most
    as many as the code has messages (256 for 32 bits at the default distance 8)."""
    spec = bch_spec(num_bits, default_min_distance(num_bits))
    rng = np.random.default_rng(seed)
    count = min(num_codes, 1 << spec.message_bits)
    messages = rng.choice(1 << spec.message_bits, size=count, replace=False)
    words = bch_encode(messages, num_bits, default_min_distance(num_bits))
    codes = [
        RegisteredCode(int(w), to_hex(int(w), num_bits), f"owner-{i}", "active", None)
        for i, w in enumerate(words)
    ]
    return CodeBook("probe", num_bits, codes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="base-v2-odd")
    ap.add_argument("--num-images", type=int, default=64)
    ap.add_argument("--codes", type=int, default=256)
    ap.add_argument("--attacks", default="none,light")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    kit = Kit.from_pretrained(args.kit)
    book = code_book(kit.num_bits, args.codes, seed=0)
    photos = [img for _, img in embedded_images("test")]
    gen = torch.Generator().manual_seed(21)
    clean = torch.stack(
        list(RandomCrops(ImagePool(photos, max_side=512), 256).sample(args.num_images, gen))
    )
    owners = torch.randint(0, len(book), (len(clean),), generator=gen).tolist()
    with torch.inference_mode():
        signed = torch.cat(
            [
                round8(kit.sign(clean[i : i + 1], code=book.codes[o].code))
                for i, o in enumerate(owners)
            ]
        )
    attacks = [None] if "none" in args.attacks.split(",") else []
    rest = ",".join(a for a in args.attacks.split(",") if a != "none")
    attacks += resolve_attacks(rest) if rest else []
    print(
        f"{args.kit}: {len(clean)} test crops, 256 px, each signed with one of {len(book)} BCH codes "
        f"(min distance {default_min_distance(kit.num_bits)}); own FPR 1e-3 threshold"
    )
    attack_gen = torch.Generator().manual_seed(5)
    for attack in attacks:
        images = signed if attack is None else round8(attack(signed, generator=attack_gen))
        with torch.inference_mode():
            results = kit.detect(list(images), fpr=1e-3)
        verdicts = [attribute(r, book) for r in results]
        right = sum(
            v.verdict == Verdict.ATTRIBUTED and v.owner == f"owner-{o}"
            for v, o in zip(verdicts, owners)
        )
        wrong = sum(
            v.verdict == Verdict.ATTRIBUTED and v.owner != f"owner-{o}"
            for v, o in zip(verdicts, owners)
        )
        unknown = sum(v.verdict == Verdict.OWNER_UNKNOWN for v in verdicts)
        n_bits = kit.num_bits
        bits = np.mean(
            [
                float(
                    (hex_to_bits(r.bits, n_bits) == hex_to_bits(book.codes[o].code, n_bits))
                    .float()
                    .mean()
                )
                for r, o in zip(results, owners)
                if r.bits is not None
            ]
        )
        n = len(results)
        print(
            f"  {attack.label if attack else 'none':16s} flagged {sum(r.is_signed for r in results) / n:.2f}  "
            f"right owner {right / n:.2f}  wrong owner {wrong / n:.2f}  owner unknown {unknown / n:.2f}  bits {bits:.3f}"
        )


if __name__ == "__main__":
    main()
