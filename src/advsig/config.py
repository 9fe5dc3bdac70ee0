"""Frozen configuration dataclasses, saved as JSON next to the weights."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from advsig.errors import ConfigError

AUGMENT_KINDS = ("paper", "robust", "light", "photometric", "none")


def _from_dict(cls, data: dict[str, Any]):
    """Build a dataclass from a dict, refusing unknown keys and restoring tuples."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(names)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    kwargs = {}
    for key, value in data.items():
        if isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def _check_binding(cfg) -> None:
    if cfg.binding not in ("content", "none"):
        raise ConfigError(f"binding must be 'content' or 'none', got {cfg.binding!r}")
    if cfg.binding_floor < 0:
        raise ConfigError(f"binding_floor must be >= 0, got {cfg.binding_floor!r}")
    if cfg.binding_cell < 2 or cfg.binding_channels < 1:
        raise ConfigError(
            f"binding_cell must be >= 2 and binding_channels >= 1, got "
            f"{cfg.binding_cell!r} and {cfg.binding_channels!r}"
        )


@dataclass(frozen=True)
class InjectorConfig:
    """Signature injector W: a small UNet predicting a bounded residual, conditioned on bits.

    Attributes:
        base_channels: channels at full resolution.
        channel_mult: channel multiplier per resolution level (one level per entry).
        num_res_blocks: residual blocks per level.
        num_bits: length of the code; 0 is the paper's one-bit (signed / clean) signature.
        max_delta: bound on |W(x) - x| per pixel, in [0, 1] units.
        periods: periods (pixels) of the position carriers fed to the network.
        cond_dim: width of the code embedding.
        patch_size: the network runs on a pixel-unshuffled grid (patch_size x patch_size pixels
            per cell, stacked as channels). Lossless, and patch_size**2 times cheaper; carrier
            periods are in grid cells.
        carrier_band / carrier_seed: frequency band (cycles per pixel) and seed of the code
            texture (see ``advsig.modules.blocks.code_texture``).
        target_psnr: fidelity budget. If set, each residual is scaled down (never up) so its
            RMS is at most that of this PSNR (dB, at the working resolution). Why: with only the
            tanh bound, the detection loss drives the residual into saturation, where gradients
            vanish and the code is never learned; a budget keeps training in the linear regime.
            v2 (bound) injectors are scaled to exactly this RMS, up or down.
        binding: ``"content"`` (signature v2: the code texture is multiplied by a keyed mask of
            the image's own coarse content, see ``advsig.modules.binding``; carriers and mask
            derive from the kit's key) or ``"none"`` (v1 kits: one fixed texture per code,
            forgeable by transplanting it; carriers from ``carrier_seed``).
        binding_cell / binding_channels: cell side (pixels at the working resolution) and width
            of the mask network.
        binding_floor: absolute local contrast (luminance, [0, 1] units) below which the mask
            fades to zero; 0 = off (kits saved before it). Why: on flat regions a transplanted
            high-pass sets the mask its own signature was modulated by, see
            ``ContentBinding.weight``.
        binding_dense: compute the mask around every pixel rather than on a grid of cells
            (False for kits saved before it). Why: a crop moves the cell grid against the
            image and changes the mask; a dense mask moves with the image.
        residual_sigma: v2 only: the residual is low-passed by a Gaussian of this sigma (pixels)
            before the budget is applied; 0 = off. Why: measured on ``base-v2``, 69% of the
            residual's energy sat above 0.3 cycles/pixel, which JPEG 90 and a half-size resize
            delete (the residual kept a correlation of 0.15 / 0.48 after them); low-passed at
            sigma 1 it keeps 0.45 / 0.95 at the same PSNR.
        residual_luma: v2 only: the same residual in all three channels (luma only). Why: JPEG
            subsamples and quantises chroma harder (correlation after JPEG 90: 0.64 in luma
            vs 0.45 spread over colour, both low-passed at sigma 1).
        residual_chroma: with ``residual_luma``, the share of the residual's energy (in [0, 1))
            moved from luma into a fixed colour-opponent direction (green minus blue), same
            pattern; 0 = luma only. Why: the code needs signal-to-host ratio, and photos carry
            far less detail there (high-passed host power 0.00032 along green-blue vs 0.0162
            along gray: ``benchmarks/probe_code.py``): the code reads more cleanly from that
            share, while the luma share keeps detection through JPEG, which subsamples colour.
    """

    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    num_bits: int = 32
    max_delta: float = 6 / 255
    periods: tuple[int, ...] = (4, 8, 16, 32)
    cond_dim: int = 64
    patch_size: int = 1
    carrier_band: tuple[float, float] = (0.06, 0.22)
    carrier_seed: int = 0
    target_psnr: float | None = None
    binding: str = "content"
    binding_cell: int = 8
    binding_channels: int = 8
    binding_floor: float = 0.0
    binding_dense: bool = False
    residual_sigma: float = 0.0
    residual_luma: bool = False
    residual_chroma: float = 0.0

    def __post_init__(self) -> None:
        _check_binding(self)
        if not 0 <= self.residual_chroma < 1:
            raise ConfigError(f"residual_chroma must be in [0, 1), got {self.residual_chroma!r}")
        if self.residual_chroma and not self.residual_luma:
            raise ConfigError("residual_chroma needs residual_luma (it splits the luma residual)")
        if self.residual_sigma < 0:
            raise ConfigError(f"residual_sigma must be >= 0, got {self.residual_sigma!r}")
        if (self.residual_sigma or self.residual_luma) and self.binding != "content":
            raise ConfigError("residual_sigma and residual_luma apply to v2 (content) injectors")
        if self.patch_size not in (1, 2, 4, 8):
            raise ConfigError(f"patch_size must be 1, 2, 4 or 8, got {self.patch_size!r}")
        if self.num_bits < 0 or self.num_bits > 256:
            raise ConfigError(f"num_bits must be in [0, 256], got {self.num_bits!r}")
        if not 0 < self.max_delta <= 1:
            raise ConfigError(f"max_delta must be in (0, 1], got {self.max_delta!r}")

    @property
    def size_multiple(self) -> int:
        """Input sides are padded to a multiple of this."""
        return self.patch_size * 2 ** (len(self.channel_mult) - 1)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InjectorConfig:
        return _from_dict(cls, data)


@dataclass(frozen=True)
class DetectorConfig:
    """Signature detector F: outputs one signature logit and ``num_bits`` bit logits.

    Attributes:
        arch: ``"resnet"`` (advsig's compact ResNet) or ``"resnet34"`` (torchvision, as the paper).
        base_channels / channel_mult / blocks_per_stage: widths and depth of ``"resnet"``.
        num_bits: number of bit logits.
        stem_patch: pixel-unshuffle factor of the stem (lossless, cheaper than a stride-1 stem).
        norm: ``"group"`` (default; see ``advsig.modules.blocks.make_norm``) or ``"batch"``.
        binding / binding_cell / binding_channels / binding_floor / binding_dense: as for the
            injector (they must match it).
            With ``"content"`` F reads ``highpass(y) * M(y)``, the image demodulated by its own
            keyed mask, never the raw pixels: a fixed pattern carries nothing F can use.
        highpass_sigma: blur (pixels) subtracted before demodulation; it removes most of the
            image's own energy, which the mask would otherwise modulate into the code's band.
        score_reference: ``"decoy"`` (v2 default) makes the signature score F's logit with the
            kit's mask minus F's logit with a decoy mask (same network, unrelated mask). Why:
            a clean photo's logit carries an offset set by its texture, which shifts from one
            photo collection to another and breaks calibration; the decoy pass sees the same
            texture and cancels it, while a signature answers only to the kit's own mask.
            ``"none"`` is the raw logit (v1, and v2 kits saved before the decoy existed).
        odd_score: the signature score is ``f(u) - f(-u)`` for what F reads, ``u``: an odd
            function of the demodulated input (bits stay ``f(u)``). Why: F pools local evidence
            by a mean, so an odd score of a signature whose sign flips from cell to cell (a
            residual moved onto an image with another mask, or an average of many) cancels at
            any strength, while F's plain logit answered to such a scrambled signature's energy
            (measured on ``base-v2-light``, docs/signature-v2.md, stop 26). Off for older kits.
        odd_bits: with ``odd_score``, the bit logits are ``b(u) - b(-u)`` instead of ``b(u)``:
            the ``-u`` read is already made for the score, and F's bit outputs on it answer to
            the photo's own content much as on ``u`` but to the code with the opposite sign, so
            the difference cancels part of the content's noise. Measured on ``base-v2-odd``
            (trained on ``b(u)`` alone): bits 0.904 -> 0.929 on 256 val crops, 0.923 -> 0.935
            on 256 test crops (stop 31). Changes no score, so no recalibration is needed.
        stem_eps: epsilon of the first normalisation (GroupNorm only); ``None`` is PyTorch's
            1e-5. Why: that norm scales each image's demodulated input to unit variance, so on
            a flat image, where the keyed mask fades and almost nothing is read, it magnifies
            noise into a full-strength read; on the odd-score kits all of the clean tail that
            set the threshold was flat crops (stop 27). An epsilon near the variance of a
            textured image's input leaves those alone and keeps flat ones faint.
    """

    arch: str = "resnet"
    base_channels: int = 16
    channel_mult: tuple[int, ...] = (1, 2, 4, 8)
    blocks_per_stage: tuple[int, ...] = (1, 1, 1, 1)
    num_bits: int = 32
    stem_patch: int = 1
    norm: str = "group"
    binding: str = "content"
    binding_cell: int = 8
    binding_channels: int = 8
    binding_floor: float = 0.0
    binding_dense: bool = False
    highpass_sigma: float = 4.0
    score_reference: str = "decoy"
    odd_score: bool = False
    stem_eps: float | None = None
    odd_bits: bool = False

    def __post_init__(self) -> None:
        _check_binding(self)
        if self.odd_bits and not self.odd_score:
            raise ConfigError("odd_bits reads the -u pass of odd_score; set odd_score too")
        if self.stem_eps is not None and not self.stem_eps > 0:
            raise ConfigError(f"stem_eps must be > 0, got {self.stem_eps!r}")
        if self.stem_eps is not None and (self.norm != "group" or self.arch != "resnet"):
            raise ConfigError("stem_eps sets the compact resnet's first GroupNorm; this has none")
        if self.score_reference not in ("decoy", "none"):
            raise ConfigError(
                f"score_reference must be 'decoy' or 'none', got {self.score_reference!r}"
            )
        if self.arch not in ("resnet", "resnet34"):
            raise ConfigError(f"detector arch must be 'resnet' or 'resnet34', got {self.arch!r}")
        if self.norm not in ("group", "batch"):
            raise ConfigError(f"detector norm must be 'group' or 'batch', got {self.norm!r}")
        if len(self.channel_mult) != len(self.blocks_per_stage):
            raise ConfigError("channel_mult and blocks_per_stage must have the same length")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorConfig:
        # Configs written before the decoy reference existed were calibrated on the raw logit.
        return _from_dict(cls, {"score_reference": "none", **data})


# TrainConfig fields that, when set, replace the injector's own (the seed kit's or the preset
# network's): the fidelity budget and the residual's shaping.
INJECTOR_OVERRIDES = ("target_psnr", "residual_sigma", "residual_luma", "residual_chroma")


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``train_signature`` needs; the CLI only fills this in.

    Attributes:
        data: image folder, or ``"embedded"`` for the photos shipped in scikit-image/scikit-learn.
        out: kit folder to write (checkpoints go to ``out/checkpoints``).
        injector / detector: network names from the factory (see ``advsig.models.list_models``).
        steps: optimisation steps.
        batch_size: clean images per step (the detector sees twice as many: clean + signed).
        crop_size: side of the random training crops.
        work_size: images are downscaled to fit this square before W and F (see ``Kit``).
        lr: Adam learning rate for W and F.
        lambda_max / lambda_warmup: weight of the detection losses, ramped linearly from
            ``lambda_min`` to ``lambda_max`` over ``lambda_warmup`` steps.
        augment: ``"paper"`` (rotation, blur, flip), ``"robust"`` (adds JPEG, resize, crop,
            noise, colour), ``"light"`` (JPEG, resize, noise, brightness: no geometry),
            ``"photometric"`` (the standard grid's pixel attacks at full strength: JPEG down
            to 40, blur to sigma 2.2, noise, colour, resizing; no geometry) or ``"none"``.
        augment_start / augment_ramp: batches are augmented with probability 0 before
            ``augment_start``, rising linearly to ``augment_max`` over ``augment_ramp`` steps. Why: with rotations
            and flips from step 0, the code is never learned; learned first, it then hardens.
            Keeping ``augment_max`` below 1 keeps training the code on unaugmented views too.
        quantize: pass the signed image through straight-through 8-bit rounding.
        checkpoint_every / keep_checkpoints: checkpoint cadence and rotation.
        resume: ``None``, ``"latest"`` or a checkpoint folder.
        seed: seeds data sampling, code sampling, augmentation and initialisation.
        val_fraction: share of a user folder held out for calibration (embedded data has a fixed split).
        num_calibration: clean validation crops scored to set thresholds.
        init_kit: start W and F from this kit's weights (folder or shipped name) instead of a
            random initialisation; the step count and optimizer start afresh.
        target_psnr: replace the injector's fidelity budget (dB), e.g. to trade fidelity for
            robustness when hardening a kit.
        shift: W signs crops ``shift`` pixels larger than ``crop_size`` and F reads a random
            ``crop_size`` window of them (the same window of the clean crop). Why: a cropped
            image moves the signature against the detector's tile grid; F must not rely on
            where the texture starts.
        shift_step: the window's offsets are multiples of this (1: any offset). A v2 kit's
            mask is computed on cells of ``binding_cell`` pixels, so a step of one cell keeps
            the mask on the signing grid while the carriers' phase still moves.
        detect_scales: rescalings the kit's detector searches (see ``Kit``), also used when
            calibrating; ``(1.0,)`` reads images only as they are.
        calibration_min_size: smallest clean crop side used for calibration (default: one
            tile). Smaller images are still scored, outside the stated false-positive rates.
        key_file: the kit's secret key (hex); a new random key is written there if the file is
            absent. Default: ``out/signature.key``. Never copied into ``config.json``.
        binding: ``"content"`` (signature v2) or ``"none"`` (v1, for comparisons).
        transplant_weight: weight of the forgery negatives in F's loss: each clean crop plus
            another crop's residual, and plus the batch's mean residual (rescaled to a single
            residual's energy), both labelled clean. Why: it teaches F that a signature is only
            valid on the image it was made for, and W (through the same gradient) to make
            residuals that do not verify elsewhere.
        negative_label: target probability for clean images and forgeries (0 = hard labels).
            Why: with hard labels, easy clean images drift to very negative scores while
            forgeries stop where their loss is already small; the threshold, set on the clean
            tail, then sits below the forgeries. A common soft target gives both the same
            optimum score.
        ghost_negatives: add a third forgery negative, each clean crop plus the mean high-pass
            of the batch's signed crops (content and signature together, 36-46 dB). Why: that
            is what an attacker averaging signed images without originals gets, and the
            content ghost carries the signature bound to it.
        lifted_negatives: add two more, each clean crop plus what an attacker lifts from one
            other signed crop: its high-pass (no original needed) and its exact residual, each
            rescaled to 38-48 dB. Why: the bench forges at 40 dB, stronger than the signature
            itself (48 dB), and a single flat image's high-pass is nearly its pure signature;
            natural-strength transplants alone did not teach F to reject either (stop 22).
        lifted_averages: add one more, each clean crop plus the mean residual of the batch's
            other crops at 38-48 dB. Why: the averaging negative above carries the signature's own
            strength; a kit whose signature is much fainter than the attacker's 40 dB (the
            fidelity kit, 52 dB) let 5-8% of such averages through. Measured once, not
            kept: 600 steps with it left 4-11% through (BENCHMARKS.md, stop 36).
        bit_weight: weight of the code bits' loss next to detection's. Why: with forgery
            negatives and removal positives, detection's terms outweigh the bits, and the code
            is learned last. It applies from step ``bit_weight_start`` on (1 before).
        residual_sigma / residual_luma / residual_chroma: replace the injector's (see
            :class:`InjectorConfig`); ``None`` keeps the network's (or the seed kit's) own.
        binding_floor / binding_dense: replace the injector's and the detector's (see
            :class:`InjectorConfig`); ``None`` keeps theirs.
        odd_score / stem_eps: replace the detector's (see :class:`DetectorConfig`); ``None``
            keeps its own (or the seed kit's).
        trusted_positives: weigh each signed crop's detection loss by the keyed mask's mean
            trust on it (``ContentBinding.weight``, 0 on flat crops, near 1 on textured ones;
            needs ``binding_floor`` > 0). Why: where the mask fades the signature is faint by
            design, and training those crops as signed taught F that a flat crop is signed:
            the clean crops that set the threshold were all flat ones (stop 27).
        flat_weight: weight of flat clean negatives: each clean crop heavily smoothed (or a
            smooth colour gradient), with faint sensor noise, labelled clean. Why: the clean
            crops that set an odd-score kit's threshold were all flat (sky, walls), which the
            training split barely holds, so F's score on them was whatever it extrapolated;
            even with a raised stem epsilon F learned the flat read back (stop 27).
        flat_forgeries: half of the flat negatives also carry another signed crop's high-pass at
            38-48 dB (labelled clean; W gets the gradient). Why: a one-image transplant onto a
            flat photo region was the forgery the flat-trained kit still let through (stop 28).
        upscaled_weight: weight of upscaled clean negatives: each clean crop shrunk 1.5-2.5x,
            saved to 8 bits and magnified back bilinearly, labelled clean. Why: the odd kits'
            96 and 128 px thresholds sat far above their signed scores; soft clean crops as
            negatives lowered them by 7-8 logits (stop 29). Most of that gap was the decoy
            reference's noise (stop 30: 96 px 13.9 -> 5.50 without it, same weights).
        score_reference: the score the trained kit is calibrated and shipped with: ``"decoy"``
            or ``"none"`` (see :class:`DetectorConfig`); ``None`` keeps the detector's. F always
            trains on its raw score. Why: on odd-score kits the decoy term adds noise and no
            longer cancels anything (``base-v2-odd10``: one 96 px read's clean spread halves
            without it, stop 30).
        calibration_processed: also calibrate on every clean crop after these processings
            (``"light"`` or attack labels, as ``advsig calibrate --processed``), each a stratum
            of its own with the worst case deciding. Why: noise 0.02 lifted 3 of 64 clean test
            crops over the unprocessed threshold of ``base-v2-odd10`` without the decoy.
        calibration_by_photo: calibrate photo by photo, the worst photo deciding (see
            ``advsig.training.trainer.calibrate``'s ``by_source``). Why: clean tails differ by
            photo, and a threshold fitted on the val mix missed a test photo's (stop 37).
        calibration_synthetic: procedural flat images to calibrate on as well, a source of
            their own (``advsig.data.synthetic``). Why: an odd score reads flat content as
            exactly 0, above a robust kit's photo-only 256 px threshold (stop 38).
        synthetic_fraction: share of training crops cut from procedural flat images
            (``advsig.data.synthetic``), the rest from the photos. Why: the embedded training
            photos are mostly texture; ``runs/robust-v2`` scored noisy flat content up to +1.4,
            two logits above any photo (stop 38).
        augment_blur_max: largest Gaussian blur sigma of the ``photometric`` augmentation, its
            kernel sized to 3 sigma (``None``: sigma up to 2.2 in a 9 x 9 kernel, as
            ``robust-v2`` was trained). Why: the grid's blur 2 sat at the edge of that range and
            ``robust-v2`` detects 45% of signed 256 px crops after it (stop 38). Measured at
            3.0 (stop 39): blur 2 rose to 61%, noise 0.05 fell from 92% to 74%; not kept.
        augment_flat: when a step draws an augmentation, apply one (with its own parameters)
            to the flat negatives too. Why: F learned flat content only unprocessed, and a
            kit calibrated on procedural flat images had its 256 px threshold set by them after
            JPEG 75 (+1.28, 1.5 logits above any photo's stratum; stop 40): block edges on a
            flat image are a periodic pattern in the carriers' band.
        removal_weight: weight of removal positives, each signed crop minus the mean residual
            of the batch's other crops (35-45 dB), labelled signed. Why: any part of the
            signature that is the same on every image can be estimated and subtracted; F must
            find the image's own part.
    """

    data: str
    out: str
    injector: str = "injector-base"
    detector: str = "detector-base"
    num_bits: int = 32
    steps: int = 3000
    batch_size: int = 16
    crop_size: int = 96
    work_size: int = 256
    lr: float = 1e-3
    lambda_min: float = 0.0
    lambda_max: float = 0.1
    lambda_warmup: int = 500
    augment: str = "paper"
    augment_start: int = 0
    augment_ramp: int = 0
    augment_max: float = 1.0
    quantize: bool = True
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    resume: str | None = None
    seed: int = 0
    val_fraction: float = 0.1
    num_calibration: int = 2000
    log_every: int = 25
    gradient_accumulation_steps: int = 1
    preset: str = "custom"
    extra: dict = field(default_factory=dict)
    init_kit: str | None = None
    target_psnr: float | None = None
    shift: int = 0
    shift_step: int = 1
    detect_scales: tuple[float, ...] = (1.0,)
    calibration_min_size: int | None = None
    key_file: str | None = None
    binding: str = "content"
    transplant_weight: float = 4.0
    negative_label: float = 0.0
    ghost_negatives: bool = False
    lifted_negatives: bool = False
    lifted_averages: bool = False
    removal_weight: float = 0.0
    residual_sigma: float | None = None
    residual_luma: bool | None = None
    residual_chroma: float | None = None
    binding_floor: float | None = None
    binding_dense: bool | None = None
    odd_score: bool | None = None
    stem_eps: float | None = None
    trusted_positives: bool = False
    flat_weight: float = 0.0
    flat_forgeries: bool = False
    upscaled_weight: float = 0.0
    bit_weight: float = 1.0
    bit_weight_start: int = 0
    score_reference: str | None = None
    calibration_processed: str | None = None
    calibration_by_photo: bool = False
    calibration_synthetic: int = 0
    synthetic_fraction: float = 0.0
    augment_blur_max: float | None = None
    augment_flat: bool = False

    def __post_init__(self) -> None:
        if self.binding not in ("content", "none"):
            raise ConfigError(f"binding must be 'content' or 'none', got {self.binding!r}")
        if self.transplant_weight < 0:
            raise ConfigError(f"transplant_weight must be >= 0, got {self.transplant_weight!r}")
        if not 0 <= self.synthetic_fraction < 1:
            raise ConfigError(
                f"synthetic_fraction must be in [0, 1), got {self.synthetic_fraction!r}"
            )
        if self.calibration_synthetic < 0:
            raise ConfigError(
                f"calibration_synthetic must be >= 0, got {self.calibration_synthetic!r}"
            )
        if self.shift < 0:
            raise ConfigError(f"shift must be >= 0, got {self.shift!r}")
        if self.shift_step < 1:
            raise ConfigError(f"shift_step must be >= 1, got {self.shift_step!r}")
        if self.augment_blur_max is not None and not self.augment_blur_max > 0.3:
            raise ConfigError(
                f"augment_blur_max must be > 0.3 (the smallest sigma), got {self.augment_blur_max!r}"
            )
        if self.augment_flat and (self.augment == "none" or self.flat_weight == 0):
            raise ConfigError(
                "augment_flat needs an augmentation and flat negatives (flat_weight > 0), got "
                f"augment={self.augment!r}, flat_weight={self.flat_weight!r}"
            )
        if self.augment_blur_max is not None and self.augment != "photometric":
            raise ConfigError(
                f"augment_blur_max applies to augment='photometric' only, got {self.augment!r}"
            )
        if self.augment not in AUGMENT_KINDS:
            raise ConfigError(
                f"augment must be one of {', '.join(AUGMENT_KINDS)}, got {self.augment!r}"
            )
        if self.bit_weight < 0:
            raise ConfigError(f"bit_weight must be >= 0, got {self.bit_weight!r}")
        if self.score_reference not in (None, "decoy", "none"):
            raise ConfigError(
                f"score_reference must be 'decoy', 'none' or None, got {self.score_reference!r}"
            )
        if self.flat_weight < 0:
            raise ConfigError(f"flat_weight must be >= 0, got {self.flat_weight!r}")
        if self.upscaled_weight < 0:
            raise ConfigError(f"upscaled_weight must be >= 0, got {self.upscaled_weight!r}")
        if self.removal_weight < 0:
            raise ConfigError(f"removal_weight must be >= 0, got {self.removal_weight!r}")
        for name in ("steps", "batch_size", "crop_size", "work_size", "checkpoint_every"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.crop_size > self.work_size:
            raise ConfigError(f"crop_size {self.crop_size} exceeds work_size {self.work_size}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
