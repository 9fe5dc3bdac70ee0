"""``eval-generator``: does a signed model's output carry the signature, and what did it cost?

Detection: the share of each model's samples flagged at the kit's FPR 1e-2 and 1e-3 thresholds,
and, for the signed model, bit accuracy and exact-code rate. Quality: FID and KID (torchmetrics)
between each model's samples and real images, and between the models. With Inception weights
(a local file: nothing is downloaded) the numbers are standard FID/KID; without them a fixed,
untrained random CNN is the feature space, named as such in every output, and its numbers are
only comparable with each other.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from advsig.data.io import load_image
from advsig.errors import CheckpointError, ConfigError
from advsig.generators.sampling import generate_to_folder
from advsig.generators.training_data import training_crops
from advsig.types import FlagStatistics, GeneratorEvaluation

RANDOM_CNN = (
    "random-CNN (untrained, seed 0; substitute for Inception, not comparable with published FID)"
)


class RandomCNNFeatures(nn.Module):
    """A fixed, untrained CNN: the named substitute feature space when Inception is absent.

    Random convolutional features still separate image distributions (colour, texture,
    structure statistics), so distances between models remain meaningful relative to each other.
    """

    def __init__(self, seed: int = 0, width: int = 64) -> None:
        super().__init__()
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        chans = [3, width, 2 * width, 4 * width]
        for cin, cout in zip(chans, chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU()]
        self.net = nn.Sequential(*layers)
        torch.random.set_rng_state(gen_state)
        self.requires_grad_(False).eval()

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float() / 255
        x = nn.functional.interpolate(x.float(), size=(64, 64), mode="bilinear", antialias=True)
        h = self.net(x * 2 - 1)  # (N, 4w, 8, 8)
        return torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)  # (N, 8w)


class InceptionFeatures(nn.Module):
    """torchmetrics' FID Inception-v3 (2048-d pool features) from a local safetensors file.

    Why safetensors only: torch-fidelity reads a weights path with ``torch.load(...,
    weights_only=False)``, which unpickles whatever the file holds. The user's file is read here
    without unpickling; torch-fidelity gets a copy of its tensors that advsig wrote itself.
    """

    def __init__(self, weights_path: str | Path) -> None:
        super().__init__()
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        from torchmetrics.image.fid import NoTrainInceptionV3

        path = Path(weights_path)
        if not path.is_file():
            raise ConfigError(f"Inception weights {path} not found")
        if path.suffix != ".safetensors":
            raise ConfigError(
                f"Inception weights {path}: give a .safetensors file (advsig never unpickles a "
                "file it is handed). To convert torch-fidelity's pt_inception-2015-12-05-"
                '6726825d.pth once, on a file you trust: python -c "import torch; from '
                "safetensors.torch import save_file; save_file(torch.load('IN.pth', "
                "weights_only=True), 'OUT.safetensors')\""
            )
        try:
            state = load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(
                f"Inception weights {path}: unreadable safetensors ({exc})"
            ) from exc
        with tempfile.TemporaryDirectory() as tmp:
            own = Path(tmp) / "inception.pth"
            torch.save(state, own)  # only tensors, written here: safe for torch-fidelity's load
            try:
                self.net = NoTrainInceptionV3(
                    name="inception-v3-compat",
                    features_list=["2048"],
                    feature_extractor_weights_path=str(own),
                )
            except RuntimeError as exc:  # missing / unexpected / misshapen keys
                raise CheckpointError(
                    f"Inception weights {path} do not fit FID's Inception-v3: {exc}"
                ) from exc

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8:
            x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
        return self.net(x)


@dataclass
class FeatureSpace:
    name: str
    module: nn.Module


def feature_space(inception_weights: str | Path | None) -> FeatureSpace:
    if inception_weights:
        return FeatureSpace("Inception-v3 (FID weights)", InceptionFeatures(inception_weights))
    return FeatureSpace(RANDOM_CNN, RandomCNNFeatures())


def distribution_distances(space: FeatureSpace, a: torch.Tensor, b: torch.Tensor) -> dict:
    """FID and KID (mean, std) between image sets ``a`` and ``b`` (float (N, 3, H, W) in [0, 1])."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    n = min(len(a), len(b))
    if n < 2:
        raise ConfigError("FID/KID need at least 2 images per set")
    fid = FrechetInceptionDistance(feature=space.module)
    with warnings.catch_warnings():  # "KID keeps all features": a few hundred vectors here
        warnings.simplefilter("ignore", UserWarning)
        kid = KernelInceptionDistance(feature=space.module, subset_size=min(100, n), subsets=50)
    for metric in (fid, kid):
        for k in range(0, len(a), 128):
            metric.update(a[k : k + 128], real=True)
        for k in range(0, len(b), 128):
            metric.update(b[k : k + 128], real=False)
    kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std)}


def flag_statistics(kit, images: torch.Tensor | list, *, code: str | None = None) -> FlagStatistics:
    """Share flagged at FPR 1e-2 / 1e-3, mean score; bit accuracy and exact-code rate for ``code``."""
    from advsig.codes.bits import hex_to_bits

    logits = kit.logits(images)  # (N, 1 + n_bits)
    score = logits[:, 0]
    bits = {}
    if code is not None and kit.num_bits:
        target = hex_to_bits(code, kit.num_bits).bool()
        right = (logits[:, 1:] > 0) == target  # (N, n_bits)
        bits = dict(
            code=code,
            bit_accuracy=float(right.float().mean()),
            exact_code_rate=float(right.all(dim=1).float().mean()),
        )
    return FlagStatistics(
        num_samples=len(score),
        flag_rate_1e2=float((score >= kit.threshold(1e-2)).float().mean()),
        flag_rate_1e3=float((score >= kit.threshold(1e-3)).float().mean()),
        mean_score=float(score.mean()),
        **bits,
    )


def real_images(data: str, size: int, num: int, *, seed: int = 0) -> torch.Tensor:
    """``num`` random crops at random scales, as the models were trained on (the FID reference)."""
    return training_crops(data, size, seed=seed).sample(
        num, torch.Generator().manual_seed(seed + 31337)
    )


def sample_set(model, folder: Path, num: int, *, steps: int, seed: int, progress: bool):
    """Samples written as PNG (resumable) and read back: detection sees what a user would save."""
    paths = generate_to_folder(model, folder, num, steps=steps, seed=seed, progress=progress)
    return torch.stack([load_image(p).image for p in paths])


def evaluate_generators(
    kit,
    models: dict,
    *,
    out: str | Path,
    signed_role: str = "signed",
    reference_role: str = "reference",
    code: str | None = None,
    num_images: int = 256,
    steps: int = 50,
    seed: int = 0,
    data: str | None = "embedded",
    inception_weights: str | Path | None = None,
    progress: bool = True,
) -> GeneratorEvaluation:
    """Sample every model (same seeds, so samples pair up), detect, and measure quality.

    ``models`` maps a role (``signed``, ``reference``, ``control``, ...) to a model; quality is
    also measured against the ``reference_role`` model (the original). The code
    defaults to the one the signed model's ``advsig.json`` records. Samples go to
    ``out/samples/{role}``; results to ``out/results.json``.
    """
    out = Path(out)
    if signed_role in models and code is None and models[signed_role].provenance:
        code = models[signed_role].provenance.get("code")
    samples = {
        role: sample_set(m, out / "samples" / role, num_images, steps=steps, seed=seed,
                         progress=progress)
        for role, m in models.items()
    }  # fmt: skip
    detection = {
        role: flag_statistics(kit, imgs, code=code if role == signed_role else None)
        for role, imgs in samples.items()
    }
    if code is not None and kit.num_bits:  # how often other models' images read as this code
        for role, imgs in samples.items():
            if role != signed_role:
                agreement = flag_statistics(kit, imgs, code=code).bit_accuracy
                detection[role] = dataclasses.replace(
                    detection[role], bit_agreement_with_signed_code=agreement
                )
    quality: dict = {}
    if data:
        space = feature_space(inception_weights)
        size = next(iter(samples.values())).shape[-1]
        real = real_images(data, size, num_images, seed=seed)
        quality = {"feature_space": space.name, "vs_real": {}, "vs_reference": {}}
        for role, imgs in samples.items():
            quality["vs_real"][role] = distribution_distances(space, real, imgs)
        if reference_role in samples:
            for role, imgs in samples.items():
                if role != reference_role:
                    quality["vs_reference"][role] = distribution_distances(
                        space, samples[reference_role], imgs
                    )
    results = GeneratorEvaluation(
        num_images=num_images,
        sample_steps=steps,
        seed=seed,
        code=code,
        thresholds={f"{f:g}": kit.threshold(f) for f in (1e-2, 1e-3)},
        models={role: m.source for role, m in models.items()},
        detection=detection,
        quality=quality,
    )
    from advsig.utils import write_text_atomic

    write_text_atomic(out / "results.json", json.dumps(results.to_json_dict(), indent=2))
    return results
