"""Adversaries with model access: PGD, Square Attack, signature estimation, and their runner."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from advsig.attacks.adversarial import (
    apply_estimate,
    detect_scores,
    estimate_signature,
    fit_estimate,
    pgd_evasion,
    pgd_spoof,
    quantize_delta,
    square_attack,
)
from advsig.bench.adversaries import QUICK_BUDGETS, SECTIONS, run_adversaries
from advsig.codes.calibration import Calibration
from advsig.data.datasets import embedded_image, fit_within
from advsig.errors import ConfigError
from advsig.kit import Kit
from advsig.models.factory import create_model


def _round8(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x * 255) / 255


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """Eight 8-bit 48x48 crops of two embedded photos."""
    crops = []
    for name in ("astronaut", "coffee"):
        img = fit_within(embedded_image(name), 144)  # at least 96 px on a side
        crops += [img[:, y : y + 48, x : x + 48] for y in (0, 48) for x in (0, 48)]
    return _round8(torch.stack(crops).clamp(0, 1))  # (8, 3, 48, 48)


@pytest.fixture(scope="module")
def strong_kit() -> Kit:
    """A tiny kit whose signature is its fixed fine code texture (40 dB), with a detector trained
    a few dozen steps to see it: estimation has something real to find and F responds to it."""
    torch.manual_seed(0)
    # v1 (binding="none"): one fixed texture, which is what signature estimation can find.
    injector = create_model(
        "injector-tiny", num_bits=8, carrier_band=(0.2, 0.4), binding="none"
    )  # fine texture
    detector = create_model("detector-tiny", num_bits=8, binding="none")
    with torch.no_grad():
        injector.texture_gain.fill_(1.0)
    gen = torch.Generator().manual_seed(0)
    source = fit_within(embedded_image("chelsea"), 160)
    opt = torch.optim.Adam(detector.parameters(), lr=3e-3)
    bits = torch.zeros(8, 8)
    for _ in range(40):
        ys = torch.randint(0, source.shape[1] - 48, (8,), generator=gen)
        xs = torch.randint(0, source.shape[2] - 48, (8,), generator=gen)
        clean = torch.stack([source[:, y : y + 48, x : x + 48] for y, x in zip(ys, xs)])
        with torch.no_grad():
            signed = injector(clean, bits)
        logits = detector(torch.cat([signed, clean]))[:, 0]
        labels = torch.cat([torch.ones(8), torch.zeros(8)])
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    kit = Kit(injector, detector, work_size=128)
    clean = [torch.rand(3, 48, 48) for _ in range(32)]
    kit.calibration = Calibration.fit(kit.logits(clean)[:, 0].numpy())
    return kit


def test_score_tensor_matches_logits_and_has_gradients(tiny_kit: Kit) -> None:
    # A tiled copy of the tiny kit, and one image large enough to be fitted to work_size.
    tiled = Kit(tiny_kit.injector, tiny_kit.detector, work_size=128, tile_size=32,
                calibration=tiny_kit.calibration)  # fmt: skip
    for kit, shape in (
        (tiny_kit, (2, 3, 48, 40)),
        (tiled, (2, 3, 80, 70)),
        (tiled, (1, 3, 150, 150)),
    ):
        x = torch.rand(*shape, requires_grad=True)
        scores = kit.score_tensor(x)
        assert scores.shape == (shape[0],)
        torch.testing.assert_close(scores.detach(), kit.logits(x.detach())[:, 0])
        (grad,) = torch.autograd.grad(scores.sum(), x)
        assert grad.abs().sum() > 0


@pytest.mark.parametrize("norm, eps", [("linf", 2 / 255), ("linf", 4 / 255), ("l2", 0.5)])
def test_pgd_evasion_lowers_every_score_within_budget(tiny_kit, photos, norm, eps) -> None:
    signed = _round8(tiny_kit.sign(photos))
    attacked = pgd_evasion(tiny_kit, signed, eps=eps, norm=norm, steps=5)
    before, after = tiny_kit.logits(signed)[:, 0], tiny_kit.logits(attacked)[:, 0]
    assert (after < before).all()
    delta = attacked - signed
    if norm == "linf":
        assert delta.abs().max() <= eps + 1e-6
        assert delta.abs().max() > eps - 1e-6  # the budget is used, not ignored
    else:
        assert (delta.flatten(1).norm(dim=1) <= eps + 1e-5).all()
    assert torch.equal(attacked, _round8(attacked))  # 8-bit, what an attacker would save
    assert attacked.min() >= 0 and attacked.max() <= 1


def test_pgd_spoof_raises_scores_and_is_repeatable(tiny_kit, photos) -> None:
    eps = 2 / 255
    attacked = pgd_spoof(tiny_kit, photos, eps=eps, steps=4)
    assert (tiny_kit.logits(attacked)[:, 0] > tiny_kit.logits(photos)[:, 0]).all()
    assert (attacked - photos).abs().max() <= eps + 1e-6
    g = torch.Generator().manual_seed(3)
    a = pgd_spoof(tiny_kit, photos[:2], eps=eps, steps=2, generator=g)
    b = pgd_spoof(tiny_kit, photos[:2], eps=eps, steps=2,
                  generator=torch.Generator().manual_seed(3))  # fmt: skip
    assert torch.equal(a, b)


def test_pgd_rejects_bad_budgets(tiny_kit, photos) -> None:
    with pytest.raises(ConfigError, match="norm"):
        pgd_evasion(tiny_kit, photos, eps=0.1, norm="l1")
    with pytest.raises(ConfigError, match="eps"):
        pgd_evasion(tiny_kit, photos, eps=0.0)


def test_quantize_delta_never_leaves_the_ball() -> None:
    x0 = _round8(torch.rand(4, 3, 16, 16))
    x = x0 + torch.randn(4, 3, 16, 16) * 0.01
    for norm, eps in (("linf", 3 / 255), ("l2", 0.3)):
        q = quantize_delta(x.clamp(0, 1), x0, eps=eps, norm=norm)
        d = q - x0
        assert torch.allclose(d * 255, (d * 255).round(), atol=1e-4)
        if norm == "linf":
            assert d.abs().max() <= eps + 1e-6
        else:
            assert (d.flatten(1).norm(dim=1) <= eps + 1e-5).all()


class CountingScore:
    """A black-box oracle that counts every image it scores."""

    def __init__(self, kit: Kit) -> None:
        self.inner, self.per_call = detect_scores(kit), []

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.per_call.append(len(images))
        return self.inner(images)


def test_square_attack_spends_exactly_its_query_budget(tiny_kit, photos) -> None:
    signed = _round8(tiny_kit.sign(photos[:4]))
    oracle = CountingScore(tiny_kit)
    eps = 4 / 255
    result = square_attack(oracle, signed, threshold=-1e9, eps=eps, queries=12,
                           generator=torch.Generator().manual_seed(0), snapshots=(5, 12))  # fmt: skip
    assert sum(oracle.per_call) == 4 * 12  # unreachable threshold: every query is spent
    assert (result.queries == 12).all() and (result.success_query == -1).all()
    assert (result.images - signed).abs().max() <= eps + 1e-6
    assert set(result.snapshots) == {5, 12}
    # Random search keeps only improvements: final scores are no worse than the first query's.
    first = detect_scores(tiny_kit)(result.snapshots[5])
    assert (result.scores <= first + 1e-5).all()
    assert result.success_rate(12) == 0.0


def test_square_attack_stops_each_image_once_it_succeeds(tiny_kit, photos) -> None:
    oracle = CountingScore(tiny_kit)
    result = square_attack(oracle, photos[:3], threshold=1e9, eps=2 / 255, queries=50)
    assert sum(oracle.per_call) == 3  # each image was below threshold at its first query
    assert (result.success_query == 1).all() and result.success_rate(1) == 1.0


def test_estimation_finds_the_signature_and_moves_scores(strong_kit, photos) -> None:
    clean = photos
    signed = _round8(strong_kit.sign(clean))
    truth = (signed - clean).mean(dim=0)  # (3, 48, 48) the kit's (fixed) signature

    def similarity(k: int) -> float:  # mean over disjoint groups of k images
        sims = [F.cosine_similarity(estimate_signature(list(signed[i : i + k])).flatten(),
                                    truth.flatten(), dim=0) for i in range(0, 8, k)]  # fmt: skip
        return float(torch.stack(sims).mean())

    assert similarity(1) < similarity(2) < similarity(8)  # averaging K images converges to it
    assert similarity(8) > 0.3

    est = estimate_signature(list(signed))
    removed = apply_estimate(signed, est, -1.0)
    forged = apply_estimate(clean, est, 1.0)
    s_signed, s_clean = strong_kit.logits(signed)[:, 0], strong_kit.logits(clean)[:, 0]
    assert s_signed.mean() > s_clean.mean()  # the detector sees this signature
    assert strong_kit.logits(removed)[:, 0].mean() < s_signed.mean()
    assert strong_kit.logits(forged)[:, 0].mean() > s_clean.mean()


def test_fit_estimate_tiles_and_crops() -> None:
    est = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)[0]  # (3, 4, 5)
    tiled = fit_estimate(est, 9, 7)
    assert tiled.shape == (3, 9, 7)
    assert torch.equal(tiled[:, 4:8, :5], est) and torch.equal(tiled[:, :4, 5:7], est[:, :, :2])
    assert torch.equal(fit_estimate(est, 2, 2), est[:, :2, :2])
    with pytest.raises(ConfigError):
        estimate_signature([])


def test_run_adversaries_quick_rows(tiny_kit, photos, tiny_ddpm, tmp_path) -> None:
    from dataclasses import replace

    budgets = replace(QUICK_BUDGETS, purify_model=str(tiny_ddpm), autoencoders=())
    rows = run_adversaries(tiny_kit, list(photos[:3]), out=tmp_path, budgets=budgets,
                           progress=False)  # fmt: skip
    kinds = {r["adversary"] for r in rows}
    assert {"none", "purify", "restoration", "pgd-linf", "pgd-l2", "spoof-linf", "square-linf",
            "estimate-removal", "estimate-forgery", "estimate-forgery-control"} <= kinds  # fmt: skip
    for r in rows:
        assert {"adversary", "param", "value", "success_rate", "psnr", "n"} <= set(r)
        assert 0 <= r["success_rate"] <= 1 and r["n"] == 3
    assert [r["steps"] for r in rows if r["adversary"] == "restoration"] == [2, 4]
    assert json.loads((tmp_path / "adversaries.json").read_text()) == json.loads(
        json.dumps(rows, default=str)
    )
    with pytest.raises(ConfigError, match="sections"):
        run_adversaries(tiny_kit, list(photos[:1]), sections=("pgd", "nope"))
    assert set(SECTIONS) >= {"pgd", "query"}
