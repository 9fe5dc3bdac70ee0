"""Every adversary against one kit on one set of images, as rows a report can tabulate.

``run_adversaries(kit, images)`` signs the images (8-bit), then runs the no-box forgeries and
removals of ``advsig.bench.security`` (transplant, averaging, one-image forger), regeneration (diffusion
purification, autoencoder re-encoding), the paper's restoration attack, white-box PGD evasion
and spoofing, black-box Square Attack, and signature estimation (removal and forgery). Each
setting is one row::

    {"adversary": "pgd-linf", "param": "eps", "value": 4 / 255, "success_rate": 1.0,
     "psnr": 39.5, "n": 16, ...}

``success_rate`` is the attacker's: for evasion the share of signed images no longer flagged,
for forgery the share of clean images flagged, always at the kit's calibrated threshold for
``fpr`` (1e-3). ``psnr`` (dB) compares the attacked images with what the attacker started from
(signed images for evasion, clean for forgery; restoration also to the clean originals).

The attacker's own images (restoration pairs, estimation) are crops of the embedded *train* and
*val* photos, never the evaluated images.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from advsig.attacks.adversarial import (
    apply_estimate,
    detect_scores,
    estimate_signature,
    pgd_evasion,
    pgd_spoof,
    square_attack,
)
from advsig.attacks.forgery import round8
from advsig.attacks.regeneration import (
    DEFAULT_AUTOENCODER,
    AutoencoderReencode,
    DiffusionPurification,
    shipped_autoencoders,
)
from advsig.attacks.restoration import RestorationAttack, train_restorer
from advsig.bench.metrics import mean_psnr
from advsig.bench.security import run_security
from advsig.codes.bits import bits_to_hex
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.errors import ConfigError
from advsig.utils import write_text_atomic

logger = logging.getLogger(__name__)

SECTIONS = ("security", "regeneration", "restoration", "pgd", "spoof", "query", "estimation")


@dataclass(frozen=True)
class AdversaryBudgets:
    """The settings each adversary is run at (one row each). Distances on [0, 1] values."""

    purify_strengths: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.3)
    purify_model: str = "ddpm-32"
    autoencoders: tuple[str, ...] = (DEFAULT_AUTOENCODER,)
    restoration_pairs: tuple[int, ...] = (16, 64, 256)
    restoration_steps: tuple[int, ...] = (100, 400)
    pgd_steps: int = 20
    pgd_linf: tuple[float, ...] = (1 / 255, 2 / 255, 4 / 255, 8 / 255)
    pgd_l2: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    spoof_linf: tuple[float, ...] = (1 / 255, 2 / 255, 4 / 255, 8 / 255)
    query_eps: tuple[float, ...] = (1 / 255, 2 / 255)
    queries: tuple[int, ...] = (100, 1000)
    estimation_k: tuple[int, ...] = (1, 4, 16, 64)
    estimation_alpha: tuple[float, ...] = (1.0, 2.0)
    security_k: tuple[int, ...] = (1, 10, 100, 1000)
    security_forger: bool = True


QUICK_BUDGETS = AdversaryBudgets(
    purify_strengths=(0.05,),
    restoration_pairs=(4,),
    restoration_steps=(2, 4),
    pgd_steps=3,
    pgd_linf=(4 / 255,),
    pgd_l2=(1.0,),
    spoof_linf=(4 / 255,),
    query_eps=(4 / 255,),
    queries=(5, 10),
    estimation_k=(1, 2),
    estimation_alpha=(1.0,),
    security_k=(1, 2),
    security_forger=False,
)


def _groups(images: Sequence[torch.Tensor]) -> list[list[int]]:
    """Indices of same-shape images, grouped (batches need one shape)."""
    groups: dict[tuple, list[int]] = {}
    for i, img in enumerate(images):
        groups.setdefault(tuple(img.shape), []).append(i)
    return list(groups.values())


def _by_shape(fn: Callable[[torch.Tensor], torch.Tensor], images: list[torch.Tensor]):
    """Apply a batch function to same-shape groups of ``images``; results in input order."""
    out: list[torch.Tensor | None] = [None] * len(images)
    for idx in _groups(images):
        for i, res in zip(idx, fn(torch.stack([images[i] for i in idx]))):
            out[i] = res
    return out


class _Judge:
    """Scores at the kit's threshold, and the row helpers every section shares."""

    def __init__(self, kit, fpr: float) -> None:
        self.kit, self.fpr = kit, fpr
        self.threshold = kit.threshold(fpr)

    def flagged(self, images: list[torch.Tensor]) -> torch.Tensor:
        scores = self.kit.logits(images)[:, 0]  # (N,)
        return scores >= self.threshold

    def row(self, adversary, param, value, attacked, start, *, forgery=False, **extra) -> dict:
        flagged = self.flagged(attacked).float()
        rate = flagged.mean() if forgery else 1 - flagged.mean()
        return {
            "adversary": adversary,
            "param": param,
            "value": value,
            "success_rate": float(rate),
            "psnr": mean_psnr(attacked, start),
            "n": len(attacked),
            **extra,
        }


def attacker_crops(num: int, size: tuple[int, int], *, seed: int) -> list[torch.Tensor]:
    """``num`` random crops of the embedded train + val photos: the attacker's own images."""
    sources = [img for split in ("train", "val") for _, img in embedded_images(split)]
    crops = RandomCrops(ImagePool(sources, max_side=512), max(size))
    gen = torch.Generator().manual_seed(seed + 7919)
    return [c[:, : size[0], : size[1]] for c in crops.sample(num, gen)]


def run_adversaries(
    kit,
    images: Sequence[torch.Tensor],
    *,
    out: str | Path | None = None,
    seed: int = 0,
    quick: bool = False,
    budgets: AdversaryBudgets | None = None,
    sections: Sequence[str] = SECTIONS,
    code: str | None = None,
    fpr: float = 1e-3,
    estimation_images: Sequence[torch.Tensor] | None = None,
    progress: bool = True,
) -> list[dict]:
    """Run every adversary on float (3, H, W) ``images`` in [0, 1]; one dict per setting.

    Args:
        kit: a full kit (detector and calibration).
        out: a folder; ``adversaries.json`` is written there (atomically) when given.
        quick: tiny budgets (:data:`QUICK_BUDGETS`) for tests and CI; ``budgets`` overrides.
        sections: a subset of :data:`SECTIONS`.
        code: the code signed into the images (default: random, fixed by ``seed``).
        estimation_images: signed images from elsewhere (e.g. a signed generator's samples)
            to estimate the signature from, in addition to the attacker's own signed crops.

    Example:
        >>> rows = run_adversaries(Kit.from_pretrained("base"), images, quick=True)
    """
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"unknown adversary sections {sorted(unknown)}; known: {SECTIONS}")
    if not images:
        raise ConfigError("run_adversaries needs at least one image")
    budgets = budgets or (QUICK_BUDGETS if quick else AdversaryBudgets())
    judge = _Judge(kit, fpr)
    if code is None and kit.num_bits:  # a random code fixed by the seed
        bits = torch.randint(0, 2, (kit.num_bits,), generator=torch.Generator().manual_seed(seed))
        code = bits_to_hex(bits.float())
    clean = [round8(img.float()) for img in images]
    signed = [round8(s) for s in kit.sign(clean, code=code)]
    size = (min(int(c.shape[-2]) for c in clean), min(int(c.shape[-1]) for c in clean))
    gen = torch.Generator().manual_seed(seed)

    rows: list[dict] = []
    base = judge.row("none", "-", None, signed, clean)
    base["clean_flagged"] = float(judge.flagged(clean).float().mean())
    rows.append(base)
    work = _plan(budgets, sections, estimation_images is not None)
    bar = tqdm(total=len(work), desc="adversaries", unit="setting", disable=not progress)

    def done(new_rows: list[dict], started: float) -> None:
        for r in new_rows:
            r["seconds"] = round(time.time() - started, 1)
            logger.info("%s", r)
        rows.extend(new_rows)
        bar.update(1)

    # ------------------------------------------------------------------ security (no box)
    if "security" in sections:
        t = time.time()
        k_max = max(budgets.security_k)
        sources = [("photos", attacker_crops(k_max, size, seed=seed + 3), None)]
        if estimation_images is not None:
            sources.append(("generator", [], [x.float() for x in estimation_images]))
        for name, own_clean, own_signed in sources:
            for r in run_security(
                kit, clean, attacker_clean=own_clean, attacker_signed=own_signed, source=name,
                code=code, ks=budgets.security_k, fpr=fpr, forger=budgets.security_forger,
                seed=seed, progress=False,
            ):  # fmt: skip
                r["section"] = "security"
                rows.append(r)
        bar.update(1)
        logger.info("security rows in %.0f s", time.time() - t)

    # ------------------------------------------------------------------ regeneration
    if "regeneration" in sections:
        attacks = [DiffusionPurification(s, model=budgets.purify_model)
                   for s in budgets.purify_strengths]  # fmt: skip
        attacks += [AutoencoderReencode(m) for m in budgets.autoencoders if _has_autoencoder(m)]
        for attack in attacks:
            t = time.time()
            g = torch.Generator().manual_seed(seed)
            hit = _by_shape(lambda x, a=attack, g=g: a(x, generator=g), signed)
            g = torch.Generator().manual_seed(seed)
            hit_clean = _by_shape(lambda x, a=attack, g=g: a(x, generator=g), clean)
            param, value = (
                ("strength", attack.strength)
                if isinstance(attack, DiffusionPurification)
                else ("model", attack.model)
            )
            row = judge.row(attack.name, param, value, [round8(h) for h in hit], signed,
                            label=attack.label,
                            clean_flagged=float(judge.flagged(hit_clean).float().mean()))  # fmt: skip
            done([row], t)

    # ------------------------------------------------------------------ restoration
    if "restoration" in sections:
        for num_pairs in budgets.restoration_pairs:
            t = time.time()
            pair_clean = [round8(c) for c in attacker_crops(num_pairs, size, seed=seed)]
            pair_signed = [round8(s) for s in kit.sign(pair_clean, code=code)]
            new: list[dict] = []

            def evaluate(step, model, n=num_pairs, new=new):
                if step not in budgets.restoration_steps:
                    return
                attack = RestorationAttack(model)
                restored = [round8(r) for r in _by_shape(attack, signed)]
                new.append(judge.row("restoration", "pairs", n, restored, signed, steps=step,
                                     psnr_to_clean=mean_psnr(restored, clean)))  # fmt: skip

            train_restorer(pair_signed, pair_clean, steps=max(budgets.restoration_steps),
                           seed=seed, callback=evaluate)  # fmt: skip
            done(new, t)

    # ------------------------------------------------------------------ white box
    if "pgd" in sections:
        for norm, budget in (("linf", budgets.pgd_linf), ("l2", budgets.pgd_l2)):
            for eps in budget:
                t = time.time()
                hit = _by_shape(lambda x, e=eps, n=norm: pgd_evasion(
                    kit, x, eps=e, norm=n, steps=budgets.pgd_steps), signed)  # fmt: skip
                done([judge.row(f"pgd-{norm}", "eps", eps, hit, signed,
                                steps=budgets.pgd_steps)], t)  # fmt: skip
    if "spoof" in sections:
        for eps in budgets.spoof_linf:
            t = time.time()
            hit = _by_shape(lambda x, e=eps: pgd_spoof(kit, x, eps=e, steps=budgets.pgd_steps),
                            clean)  # fmt: skip
            done([judge.row("spoof-linf", "eps", eps, hit, clean, forgery=True,
                            steps=budgets.pgd_steps)], t)  # fmt: skip

    # ------------------------------------------------------------------ black box
    if "query" in sections:
        score = detect_scores(kit)
        for eps in budgets.query_eps:
            t = time.time()
            results = {}  # group's image indices -> QueryAttackResult
            for idx in _groups(signed):
                results[tuple(idx)] = square_attack(
                    score, torch.stack([signed[i] for i in idx]), threshold=judge.threshold,
                    eps=eps, queries=max(budgets.queries), generator=gen,
                    snapshots=budgets.queries)  # fmt: skip
            order = [i for idx in results for i in idx]
            starts = [signed[i] for i in order]
            first = torch.cat([r.success_query for r in results.values()])  # (N,)
            used = torch.cat([r.queries for r in results.values()])
            new = []
            for q in budgets.queries:
                snap = [img for r in results.values() for img in r.snapshots[q]]
                new.append({"adversary": "square-linf", "param": "queries", "value": q,
                            "eps": eps,
                            "success_rate": float(((first >= 0) & (first <= q)).float().mean()),
                            "psnr": mean_psnr(snap, starts), "n": len(signed),
                            "mean_queries": float(used.clamp(max=q).float().mean())})  # fmt: skip
            done(new, t)

    # ------------------------------------------------------------------ estimation
    if "estimation" in sections:
        k_max = max(budgets.estimation_k)
        own_clean = [round8(c) for c in attacker_crops(k_max, size, seed=seed + 1)]
        own_signed = [round8(s) for s in kit.sign(own_clean, code=code)]
        sources = [("", own_signed), ("-control", own_clean)]
        if estimation_images is not None:
            sources.append(("-generator", [round8(x.float()) for x in estimation_images]))
        for suffix, pool in sources:
            for k in budgets.estimation_k:
                if k > len(pool):
                    bar.update(1)
                    continue
                t = time.time()
                est = estimate_signature(pool[:k])
                new = []
                for alpha in budgets.estimation_alpha:
                    removed = [apply_estimate(s[None], est, -alpha)[0] for s in signed]
                    forged = [apply_estimate(c[None], est, alpha)[0] for c in clean]
                    new.append(judge.row(f"estimate-removal{suffix}", "K", k, removed, signed,
                                         alpha=alpha))  # fmt: skip
                    new.append(judge.row(f"estimate-forgery{suffix}", "K", k, forged, clean,
                                         forgery=True, alpha=alpha))  # fmt: skip
                done(new, t)
    bar.close()

    if out is not None:
        path = Path(out) / "adversaries.json"
        write_text_atomic(path, json.dumps(rows, indent=2, default=str) + "\n")
    return rows


def _has_autoencoder(name: str) -> bool:
    if Path(name).is_dir() or name in shipped_autoencoders() or name.count("/") == 1:
        return True
    logger.warning("autoencoder %r not found; skipping its re-encoding attack", name)
    return False


def _plan(budgets: AdversaryBudgets, sections: Sequence[str], generator_source: bool) -> list:
    """One entry per progress tick, in the order run_adversaries runs them."""
    work: list = []
    if "security" in sections:
        work.append("security")
    if "regeneration" in sections:
        work += list(budgets.purify_strengths) + list(budgets.autoencoders)
    if "restoration" in sections:
        work += list(budgets.restoration_pairs)
    if "pgd" in sections:
        work += list(budgets.pgd_linf) + list(budgets.pgd_l2)
    if "spoof" in sections:
        work += list(budgets.spoof_linf)
    if "query" in sections:
        work += list(budgets.query_eps)
    if "estimation" in sections:
        work += list(budgets.estimation_k) * (3 if generator_source else 2)
    return work
