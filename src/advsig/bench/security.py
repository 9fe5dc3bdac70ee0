"""Can a signature be forged onto, or removed from, images without W or F? Rows for a report.

``run_security(kit, targets, attacker_signed=...)`` measures, on ``targets`` (clean images the
attacker wants to frame; the victim's own signed copies for removal):

- ``transplant-oracle`` / ``transplant-highpass``: one signed image's residual (exact, or the
  high-pass estimate that needs no original) added to a target, each target getting another
  attacker image's (cycling through them), so the row is a rate over attacker images;
- ``average-oracle`` / ``average-highpass``: the mean of K residual estimates, K in
  ``ks``, added to targets (forgery) or subtracted from signed targets (removal);
- ``one-image-forger``: :class:`advsig.attacks.forgery.OneImageForger` trained on one signed
  image, applied to targets;
- ``residual-cosine``: mean pairwise cosine of the residuals across targets (1 = one fixed
  pattern, 0 = unrelated per image).

Each forgery runs at the estimate's natural strength and rescaled to ``forgery_psnr`` dB (40:
the most visible forgery the acceptance criteria allow); removal at natural strength and at
``removal_psnr`` dB (35). A forgery row's ``success_rate`` is the share of targets flagged at
the kit's own threshold for ``fpr`` (per image size), and ``attributed_to_victim`` counts the
forged images that the registry's attribution rule (``advsig.registry.attribution``, against the
victim's code among ``num_registered`` registered codes) names as the victim's. A removal row's
``success_rate`` is the share of signed targets no longer flagged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from advsig.attacks.forgery import (
    OneImageForger,
    average_residual,
    highpass_residuals,
    mean_pairwise_cosine,
    oracle_residuals,
    round8,
    transplant,
)
from advsig.bench.metrics import mean_psnr
from advsig.codes.bits import bits_to_hex
from advsig.errors import ConfigError
from advsig.registry.attribution import CodeBook, RegisteredCode, Verdict, attribute

logger = logging.getLogger(__name__)

DEFAULT_KS = (1, 10, 100, 1000)


def _victim_book(num_bits: int, victim: str, *, num_registered: int, seed: int) -> CodeBook:
    """The victim's code among ``num_registered`` random codes of other owners."""
    gen = torch.Generator().manual_seed(seed + 424242)
    codes = [RegisteredCode(int(victim, 16), victim, "victim", "active", None)]
    while len(codes) < num_registered:
        bits = torch.randint(0, 2, (num_bits,), generator=gen).float()
        value = bits_to_hex(bits)
        if value != victim:
            codes.append(
                RegisteredCode(int(value, 16), value, f"owner-{len(codes)}", "active", None)
            )
    return CodeBook("security-bench", num_bits, codes)


class _Verdicts:
    """Detection at the kit's per-size threshold, and attribution to the victim."""

    def __init__(self, kit, fpr: float, book: CodeBook | None) -> None:
        self.kit, self.fpr, self.book = kit, fpr, book

    def row(self, attack: str, param: str, value, images, start, *, removal=False, **extra):
        results = self.kit.detect(list(images), fpr=self.fpr)
        flagged = sum(r.is_signed for r in results)
        victim = 0
        if self.book is not None and not removal:
            victim = sum(
                1
                for r in results
                if (a := attribute(r, self.book)).verdict == Verdict.ATTRIBUTED
                and a.owner == "victim"
            )
        n = len(results)
        return {
            "adversary": attack,
            "param": param,
            "value": value,
            "success_rate": (n - flagged) / n if removal else flagged / n,
            "attributed_to_victim": None if removal else victim,
            "psnr": mean_psnr(images, start),
            "n": n,
            **extra,
        }


def run_security(
    kit,
    targets: Sequence[torch.Tensor],
    *,
    attacker_clean: Sequence[torch.Tensor],
    attacker_signed: Sequence[torch.Tensor] | None = None,
    source: str = "photos",
    code: str | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    forgery_psnr: float = 40.0,
    removal_psnr: float = 35.0,
    fpr: float = 1e-3,
    num_registered: int = 100,
    forger: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> list[dict]:
    """Forgery and removal rows (see the module docstring) on float (3, H, W) ``targets``.

    Args:
        attacker_clean: the attacker's own clean images; signed with ``code`` they give the
            oracle residuals (exact pairs) and, when ``attacker_signed`` is None, the signed
            images estimates come from.
        attacker_signed: signed images from elsewhere (e.g. a signed generator's samples):
            only high-pass estimates can be taken from them. ``source`` names them in rows.
        code: the victim's code (default: random, fixed by ``seed``).

    Example:
        >>> rows = run_security(kit, test_crops, attacker_clean=own_crops, ks=(1, 10))
    """
    if not targets:
        raise ConfigError("run_security needs at least one target image")
    if code is None and kit.num_bits:
        bits = torch.randint(0, 2, (kit.num_bits,), generator=torch.Generator().manual_seed(seed))
        code = bits_to_hex(bits.float())
    book = (
        _victim_book(kit.num_bits, code, num_registered=num_registered, seed=seed)
        if kit.num_bits
        else None
    )
    judge = _Verdicts(kit, fpr, book)
    clean = [round8(t.float()) for t in targets]
    signed = [round8(s) for s in kit.sign(clean, code=code)]
    k_max = max(ks)
    pairs = attacker_signed is None
    own_clean = [round8(c.float()) for c in attacker_clean[:k_max]] if pairs else []
    own_signed = (
        [round8(s) for s in kit.sign(own_clean, code=code)]
        if pairs
        else [round8(s.float()) for s in attacker_signed[:k_max]]
    )
    if not own_signed:
        raise ConfigError("the attacker needs at least one signed image")
    rows: list[dict] = []
    plan = (
        2
        + len([k for k in ks if k <= len(own_signed)]) * (2 if pairs else 1)
        + (1 if forger else 0)
    )
    bar = tqdm(total=plan, desc="security", unit="attack", disable=not progress)

    def add(new: list[dict], started: float) -> None:
        for r in new:
            r["source"] = source
            r["seconds"] = round(time.time() - started, 1)
            logger.info("%s", r)
        rows.extend(new)
        bar.update(1)

    t = time.time()
    residuals = (
        torch.stack([oracle_residuals(s[None], c[None])[0] for s, c in zip(signed, clean)])
        if len({tuple(c.shape) for c in clean}) == 1
        else None
    )
    base = judge.row("none", "-", None, signed, clean, removal=True)
    base["adversary"] = "unattacked"
    base["clean_flagged"] = sum(r.is_signed for r in kit.detect(clean, fpr=fpr)) / len(clean)
    if residuals is not None and len(residuals) > 1:
        base["residual_cosine"] = mean_pairwise_cosine(residuals)
    add([base], t)

    def estimates(kind: str) -> list[torch.Tensor]:
        if kind == "oracle":
            return [oracle_residuals(s[None], c[None])[0] for s, c in zip(own_signed, own_clean)]
        return [highpass_residuals(s[None])[0] for s in own_signed]

    kinds = ("oracle", "highpass") if pairs else ("highpass",)
    t = time.time()
    new = []
    for kind in kinds:
        # Target i carries attacker image i's estimate (cycling): the row is a rate over
        # attacker images, not the luck of one (a flat image's high-pass forges far better).
        est = estimates(kind)
        for strength, label in ((None, "natural"), (forgery_psnr, f"{forgery_psnr:g} dB")):
            forged = [
                transplant(c[None], est[i % len(est)], psnr=strength)[0]
                for i, c in enumerate(clean)
            ]
            new.append(judge.row(f"transplant-{kind}", "strength", label, forged, clean))
    add(new, t)
    for kind in kinds:
        all_est = estimates(kind)
        for k in ks:
            if k > len(all_est):
                logger.warning("K=%d needs %d signed images, have %d: skipped", k, k, len(all_est))
                continue
            t = time.time()
            mean = average_residual(all_est[:k])
            new = []
            for strength, label in ((None, "natural"), (forgery_psnr, f"{forgery_psnr:g} dB")):
                forged = [transplant(c[None], mean, psnr=strength)[0] for c in clean]
                new.append(judge.row(f"average-{kind}-forgery", "K", k, forged, clean,
                                     strength=label))  # fmt: skip
            for strength, label in ((None, "natural"), (removal_psnr, f"{removal_psnr:g} dB")):
                removed = [transplant(s[None], mean, alpha=-1, psnr=strength)[0] for s in signed]
                new.append(judge.row(f"average-{kind}-removal", "K", k, removed, signed,
                                     removal=True, strength=label))  # fmt: skip
            add(new, t)
    if forger:
        t = time.time()
        model = OneImageForger().fit(own_signed[0], generator=torch.Generator().manual_seed(seed))
        new = []
        for strength, label in ((None, "natural"), (forgery_psnr, f"{forgery_psnr:g} dB")):
            forged = [model.forge(c[None], psnr=strength)[0] for c in clean]
            new.append(judge.row("one-image-forger", "strength", label, forged, clean))
        add(new, t)
    bar.close()
    return rows
