"""A kit: the injector W, the detector F and the calibration that turns scores into decisions.

On disk a kit is a folder: ``config.json`` (architectures, num_bits, work size, calibration,
thresholds, training summary), ``injector.safetensors`` and, unless it was exported for a model
publisher, ``detector.safetensors``.

Images of any size: W and F run at a working resolution (the image fitted within
``work_size`` x ``work_size``). For a larger image the residual computed there is upsampled to the
full resolution and added, so the output keeps every original pixel plus a smooth signature, and
memory stays bounded (a 4000x3000 photo needs a few hundred MB).

Tiles: with ``tile_size`` set (kits trained by advsig set it to the training crop size), W and F
run on ``tile_size`` squares on a fixed grid from the top-left corner (the last row and column
of tiles shifted inwards to fit), and F's outputs are averaged over tiles. Why: W's code texture
is anchored at its input's corner and F learns to read it at the training size; tiles give both
networks exactly the inputs they were trained on, at any image size.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from advsig.codes.bits import bits_to_hex, hex_to_bits
from advsig.codes.calibration import Calibration, StratifiedCalibration, calibration_from_dict
from advsig.config import DetectorConfig, InjectorConfig
from advsig.data.convert import ImageInput, to_library
from advsig.data.datasets import fit_within, fitted_size
from advsig.errors import CheckpointError, ConfigError, ImageTooSmallError, KitNotFoundError
from advsig.models.detector import SignatureDetector
from advsig.models.injector import SignatureInjector
from advsig.models.modeling_utils import load_weights
from advsig.precision import autocast, check_precision
from advsig.types import DetectionResult
from advsig.utils import write_text_atomic

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
INJECTOR_NAME = "injector.safetensors"
DETECTOR_NAME = "detector.safetensors"
KIT_FORMAT = 2
# Format 1 kits (before signature v2) hold one fixed texture per code: they still load, with a
# warning, because their signature can be transplanted onto any photo (see BENCHMARKS.md).
LEGACY_FORMATS = (1,)
STANDARD_FPRS = (1e-2, 1e-3, 1e-4)


def shipped_kits() -> list[str]:
    """Names of the kits inside the package."""
    root = resources.files("advsig.kits")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / CONFIG_NAME).is_file())


def resolve_kit_path(name_or_path: str | Path, *, revision: str | None = None) -> Path:
    """A local folder for a kit folder, a shipped kit name, or a Hugging Face Hub id."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    name = str(name_or_path)
    if name in shipped_kits():
        return Path(str(resources.files("advsig.kits") / name))
    if name.count("/") == 1 and not path.exists():
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

        try:
            return Path(
                snapshot_download(
                    name, revision=revision, allow_patterns=[CONFIG_NAME, "*.safetensors"]
                )
            )
        except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as exc:
            raise KitNotFoundError(f"kit {name!r}: not a folder, and the Hub gave: {exc}") from exc
    raise KitNotFoundError(
        f"kit {name!r} is not a folder, a shipped kit ({', '.join(shipped_kits()) or 'none'}) "
        "or a Hub id (owner/name)"
    )


def _check_same_key(injector: SignatureInjector, detector: SignatureDetector) -> None:
    """W and F must agree on binding and on the keyed mask, or F cannot read W's signature."""
    wb, fb = injector.binding, detector.binding
    if (wb is None) != (fb is None):
        raise ConfigError("injector and detector disagree on content binding (v1 vs v2)")
    if wb is None:
        return
    if wb.floor != fb.floor:
        raise ConfigError(
            f"injector and detector disagree on the mask's contrast floor ({wb.floor} vs {fb.floor})"
        )
    if wb.dense != fb.dense:
        raise ConfigError("injector and detector disagree on the mask's grid (dense vs cells)")
    same = (
        wb.cell == fb.cell
        and wb.conv1.shape == fb.conv1.shape
        and torch.equal(wb.conv1.cpu(), fb.conv1.cpu())
        and torch.equal(wb.conv2.cpu(), fb.conv2.cpu())
    )
    if not same:
        raise ConfigError("injector and detector were keyed differently (content masks differ)")


@dataclass
class _Prepared:
    index: int
    image: torch.Tensor  # (3, H, W) original
    work: torch.Tensor  # (3, h, w) fitted within work_size


class Kit:
    """W, F and their calibration, with a three-call API.

    Example:
        >>> kit = Kit.from_pretrained("base")
        >>> signed = kit.sign(torch.rand(2, 3, 256, 256), code="00c0ffee")
        >>> kit.detect(signed, fpr=1e-3)[0].is_signed
        True
    """

    def __init__(
        self,
        injector: SignatureInjector,
        detector: SignatureDetector | None = None,
        *,
        work_size: int = 256,
        tile_size: int | None = None,
        calibration: Calibration | StratifiedCalibration | None = None,
        training: dict | None = None,
        detect_scales: Sequence[float] = (1.0,),
        key_fingerprint: str | None = None,
        upscale_within_work: bool = False,
        scale_norm: dict[int, dict[float, tuple[float, float]]] | None = None,
        sign_precision: str = "auto",
        detect_precision: str = "fp32",
        fit_up: bool = False,
        mirror_reads: bool = False,
    ) -> None:
        if detector is not None and detector.config.num_bits != injector.config.num_bits:
            raise ConfigError(
                f"injector embeds {injector.config.num_bits} bits, detector reads "
                f"{detector.config.num_bits}"
            )
        # channels_last: oneDNN's convolutions run 1.1-1.5x faster in it on CPUs (sign and
        # detect, benchmarks/bench_kit_speed.py); outputs agree to ~1e-5, and save_weights
        # writes contiguous tensors, so files do not change.
        self.injector = injector.eval().to(memory_format=torch.channels_last)
        self.detector = (
            detector.eval().to(memory_format=torch.channels_last) if detector is not None else None
        )
        self.work_size = work_size
        self.tile_size = tile_size
        self.calibration = calibration
        self.training = training or {}
        self.detect_scales = tuple(float(v) for v in detect_scales)
        if not self.detect_scales or any(not 0.25 <= v <= 4 for v in self.detect_scales):
            raise ConfigError(f"detect_scales must be in [0.25, 4], got {detect_scales!r}")
        self.key_fingerprint = key_fingerprint
        self.upscale_within_work = bool(upscale_within_work)
        self.scale_norm = (
            {
                int(size): {float(k): (float(m), float(sd)) for k, (m, sd) in per.items()}
                for size, per in scale_norm.items()
            }
            if scale_norm
            else None
        )
        if self.scale_norm and any(
            sd <= 0 for per in self.scale_norm.values() for _, sd in per.values()
        ):
            raise ConfigError(f"scale_norm spreads must be > 0, got {scale_norm!r}")
        # Also read an image smaller than the working size fitted back up to it (see
        # _read_scales). Its reads have no scale norm, so the two do not mix.
        self.fit_up = bool(fit_up)
        if self.fit_up and self.scale_norm:
            raise ConfigError("fit_up reads are not standardised: use it without scale_norm")
        # Also read every image mirrored left to right (see _read_scales); as for fit-up, its
        # reads have no scale norm.
        self.mirror_reads = bool(mirror_reads)
        if self.mirror_reads and self.scale_norm:
            raise ConfigError("mirror reads are not standardised: use them without scale_norm")
        if detector is not None:
            _check_same_key(injector, detector)
        # Where W and F may run in bfloat16 (advsig.precision): signing wherever it is
        # native, detection in float32, the precision its thresholds were fitted in.
        self.sign_precision = sign_precision
        self.detect_precision = detect_precision

    @property
    def sign_precision(self) -> str:
        """``"auto"`` (bfloat16 where native, else float32), ``"fp32"`` or ``"bf16"``."""
        return self._sign_precision

    @sign_precision.setter
    def sign_precision(self, value: str) -> None:
        self._sign_precision = check_precision(value)

    @property
    def detect_precision(self) -> str:
        """As :attr:`sign_precision`, for F; ``"fp32"`` unless asked, because thresholds
        were fitted on float32 scores and bfloat16 moves a score by up to ~0.2."""
        return self._detect_precision

    @detect_precision.setter
    def detect_precision(self, value: str) -> None:
        self._detect_precision = check_precision(value)

    @property
    def bound(self) -> bool:
        """Whether the signature is bound to each image's content (v2) or one texture (v1)."""
        return self.injector.binding is not None

    @property
    def num_bits(self) -> int:
        return self.injector.config.num_bits

    @property
    def device(self) -> torch.device:
        return next(self.injector.parameters()).device

    def to(self, device: str | torch.device) -> Kit:
        self.injector.to(device)
        if self.detector is not None:
            self.detector.to(device)
        return self

    def with_score_reference(self, reference: str) -> Kit:
        """This kit with its detector scoring against ``reference`` (``"decoy"`` or ``"none"``).

        The weights are shared; the calibration is dropped, because the scores change
        (recalibrate with :func:`advsig.training.trainer.calibrate` or ``advsig calibrate``).
        """
        if not self.bound and reference != "none":
            raise ConfigError("a v1 (unbound) kit has no mask to reference a decoy against")
        return self.with_detector_options(score_reference=reference)

    def with_detector_options(self, **options) -> Kit:
        """This kit with :class:`DetectorConfig` fields that need no retraining replaced
        (``score_reference``, ``stem_eps``, ``odd_bits``). Weights shared; the calibration is
        dropped when the score changes (as above) and kept when only ``odd_bits`` does."""
        detector = self._require_detector()
        allowed = {"score_reference", "stem_eps", "odd_bits"}
        if unknown := set(options) - allowed:
            raise ConfigError(f"detector options {sorted(unknown)} need retraining, not this")
        config = dataclasses.replace(detector.config, **options)
        new = SignatureDetector(config).to(self.device)
        new.load_state_dict(detector.state_dict(), strict=True)
        changed = {k for k, v in options.items() if getattr(detector.config, k) != v}
        return Kit(
            self.injector, new, work_size=self.work_size, tile_size=self.tile_size,
            calibration=self.calibration if changed <= {"odd_bits"} else None,
            training=self.training, detect_scales=self.detect_scales,
            key_fingerprint=self.key_fingerprint, upscale_within_work=self.upscale_within_work,
            scale_norm=self.scale_norm if changed <= {"odd_bits"} else None,
            sign_precision=self.sign_precision, detect_precision=self.detect_precision,
            fit_up=self.fit_up, mirror_reads=self.mirror_reads,
        )  # fmt: skip

    def with_fit_up(self, fit_up: bool = True) -> Kit:
        """This kit with fit-up reads on or off (see :meth:`_read_scales`). Weights shared; the
        calibration is dropped when the setting changes, because the scores of images smaller
        than the working size change (recalibrate: ``advsig calibrate --fit-up``)."""
        return self._with_reads(fit_up=bool(fit_up), mirror_reads=self.mirror_reads)

    def with_mirror_reads(self, mirror: bool = True) -> Kit:
        """This kit with mirror reads on or off (see :meth:`_read_scales`). Weights shared; the
        calibration is dropped when the setting changes, because every clean score may rise
        (recalibrate: ``advsig calibrate --mirror``)."""
        return self._with_reads(fit_up=self.fit_up, mirror_reads=bool(mirror))

    def _with_reads(self, *, fit_up: bool, mirror_reads: bool) -> Kit:
        same = fit_up == self.fit_up and mirror_reads == self.mirror_reads
        return Kit(
            self.injector, self.detector, work_size=self.work_size, tile_size=self.tile_size,
            calibration=self.calibration if same else None, training=self.training,
            detect_scales=self.detect_scales, key_fingerprint=self.key_fingerprint,
            upscale_within_work=self.upscale_within_work, scale_norm=self.scale_norm,
            sign_precision=self.sign_precision, detect_precision=self.detect_precision,
            fit_up=fit_up, mirror_reads=mirror_reads,
        )  # fmt: skip

    # ----------------------------------------------------------------- persistence
    def config_dict(self, *, include_detector: bool = True) -> dict:
        det = include_detector and self.detector is not None
        cal = self.calibration if det else None
        return {
            "advsig_kit": KIT_FORMAT,
            "num_bits": self.num_bits,
            "work_size": self.work_size,
            "tile_size": self.tile_size,
            "detect_scales": list(self.detect_scales),
            "key_fingerprint": self.key_fingerprint,
            "upscale_within_work": self.upscale_within_work,
            "fit_up": self.fit_up,
            "mirror_reads": self.mirror_reads,
            "scale_norm": (
                {
                    str(size): [[k, *v] for k, v in sorted(per.items())]
                    for size, per in sorted(self.scale_norm.items())
                }
                if self.scale_norm and det
                else None
            ),  # fmt: skip
            "injector": self.injector.config.to_dict(),
            "detector": self.detector.config.to_dict() if det else None,
            "calibration": cal.to_dict() if cal else None,
            "thresholds": self.thresholds() if cal else None,
            "training": self.training,
        }

    def save_pretrained(
        self, path: str | Path, *, dtype: torch.dtype | None = None, include_detector: bool = True
    ) -> None:
        """Write the kit folder. ``include_detector=False`` writes what a publisher may hold."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.injector.save_pretrained(path / INJECTOR_NAME, dtype=dtype)
        if include_detector and self.detector is not None:
            self.detector.save_pretrained(path / DETECTOR_NAME, dtype=dtype)
        elif (path / DETECTOR_NAME).exists():
            raise CheckpointError(
                f"{path}: refusing to leave a detector beside an injector-only kit"
            )
        text = json.dumps(self.config_dict(include_detector=include_detector), indent=2)
        write_text_atomic(path / CONFIG_NAME, text + "\n")

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        device: str | torch.device = "cpu",
        revision: str | None = None,
        sign_precision: str = "auto",
        detect_precision: str = "fp32",
    ) -> Kit:
        """Load a kit folder, a shipped kit (``"base"``) or a Hub id. Strict: any mismatch raises.

        ``sign_precision`` / ``detect_precision``: see :mod:`advsig.precision`.
        """
        # Checked first, so that a bad argument is not reported as a malformed kit file.
        check_precision(sign_precision)
        check_precision(detect_precision)
        path = resolve_kit_path(name_or_path, revision=revision)
        cfg_file = path / CONFIG_NAME
        if not cfg_file.is_file():
            raise CheckpointError(f"{path}: no {CONFIG_NAME}; not an advsig kit")
        try:
            cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{cfg_file}: invalid JSON ({exc})") from exc
        fmt = cfg.get("advsig_kit") if isinstance(cfg, dict) else None
        if fmt not in (KIT_FORMAT, *LEGACY_FORMATS):
            raise CheckpointError(
                f"{cfg_file}: not an advsig kit config (format {fmt!r}; this advsig reads "
                f"formats {', '.join(map(str, (*LEGACY_FORMATS, KIT_FORMAT)))}); "
                "upgrade advsig or retrain the kit with `advsig train`"
            )
        try:
            inj_dict, det_dict = cfg["injector"], cfg.get("detector")
            if fmt in LEGACY_FORMATS:
                inj_dict = {**inj_dict, "binding": "none"}
                det_dict = {**det_dict, "binding": "none"} if det_dict else None
            inj_cfg = InjectorConfig.from_dict(inj_dict)
            det_cfg = DetectorConfig.from_dict(det_dict) if det_dict else None
            cal = calibration_from_dict(cfg["calibration"]) if cfg.get("calibration") else None
            work_size = int(cfg["work_size"])
            tile_size = int(cfg["tile_size"]) if cfg.get("tile_size") else None
            scales = tuple(float(v) for v in cfg.get("detect_scales") or (1.0,))
            norm = {
                int(size): {float(k): (float(m), float(sd)) for k, m, sd in rows}
                for size, rows in (cfg.get("scale_norm") or {}).items()
            }
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise CheckpointError(f"{cfg_file}: malformed kit config ({exc})") from exc
        injector = SignatureInjector(inj_cfg)
        load_weights(injector, path / INJECTOR_NAME)
        detector = None
        if det_cfg is not None:
            detector = SignatureDetector(det_cfg)
            load_weights(detector, path / DETECTOR_NAME)
        try:
            kit = cls(
                injector,
                detector,
                work_size=work_size,
                tile_size=tile_size,
                calibration=cal,
                training=cfg.get("training"),
                detect_scales=scales,
                key_fingerprint=cfg.get("key_fingerprint"),
                upscale_within_work=bool(cfg.get("upscale_within_work", False)),
                scale_norm=norm or None,
                sign_precision=sign_precision,
                detect_precision=detect_precision,
                fit_up=bool(cfg.get("fit_up", False)),
                mirror_reads=bool(cfg.get("mirror_reads", False)),
            )
        except ConfigError as exc:
            raise CheckpointError(f"{cfg_file}: {exc}") from exc
        if not kit.bound:
            logger.warning(
                "%s: signature v1 kit (one texture per code, not bound to the image): its "
                "signature can be lifted from a signed image and stamped onto real photos. "
                "Retrain with `advsig train` for a content-bound, keyed v2 signature.",
                path,
            )
        return kit.to(device)

    # ----------------------------------------------------------------- thresholds
    def _require_detector(self) -> SignatureDetector:
        if self.detector is None:
            raise ConfigError(
                "this kit holds only the injector (what a model publisher receives); "
                "detection needs the detector owner's full kit"
            )
        return self.detector

    def _require_calibration(self) -> Calibration | StratifiedCalibration:
        self._require_detector()
        if self.calibration is None:
            raise ConfigError("this kit's detector is not calibrated yet (no thresholds)")
        return self.calibration

    def threshold(self, fpr: float, *, size: tuple[int, int] | None = None) -> float:
        """Score threshold whose false-positive rate on clean images is ``fpr``.

        With ``size`` (an image's height, width), the threshold calibrated for images of that
        size when the kit has per-size calibration; without it, the worst case over sizes.
        """
        return self._calibration_for(size).threshold(fpr)[0]

    def _calibration_for(self, size: tuple[int, int] | None) -> Calibration | StratifiedCalibration:
        cal = self._require_calibration()
        if size is None or not isinstance(cal, StratifiedCalibration):
            return cal
        h, w = fitted_size(int(size[0]), int(size[1]), self.work_size)
        return cal.for_size(min(h, w))

    def thresholds(self) -> dict[str, dict]:
        """Thresholds at the standard FPRs, with whether each is extrapolated."""
        cal = self._require_calibration()
        out = {}
        for fpr in STANDARD_FPRS:
            score, extrapolated = cal.threshold(fpr)
            out[f"{fpr:g}"] = {"score": score, "extrapolated": extrapolated}
        return out

    # ----------------------------------------------------------------- sign / detect
    def _batches(self, images: list[torch.Tensor], batch_size: int):
        """Group images whose working-resolution shapes match, in batches of ``batch_size``."""
        groups: dict[tuple, list[_Prepared]] = {}
        for i, img in enumerate(images):
            work = fit_within(img.float(), self.work_size)
            groups.setdefault(tuple(work.shape), []).append(_Prepared(i, img, work))
        for items in groups.values():
            for k in range(0, len(items), batch_size):
                yield items[k : k + batch_size]

    @torch.inference_mode()
    def sign(
        self,
        images: ImageInput,
        *,
        code: str | int | None = None,
        batch_size: int = 16,
    ) -> Any:
        """Signed copies of ``images``, of the kind and structure given.

        ``images``: float tensors in [0, 1] ((B, 3, H, W), (3, H, W) or a list), PIL images,
        NumPy arrays (uint8 or float (H, W, 3|4), or a (B, H, W, 3) batch), file paths, or a
        list of these. PIL in, PIL out (alpha kept); arrays keep their dtype; a path comes back
        as a PIL image. ``code`` is a hex string or int of at most ``num_bits`` bits (default:
        all zeros).

        Example:
            >>> signed = kit.sign(Image.open("photo.png"), code="deadbeef")  # a PIL image
        """
        converted = to_library(images)
        items = converted.images
        bits = hex_to_bits(code, self.num_bits).to(self.device)
        out: list[torch.Tensor | None] = [None] * len(items)
        for group in self._batches(items, batch_size):
            work = torch.stack([g.work for g in group]).to(self.device)  # (b, 3, h, w)
            b_bits = bits[None].expand(len(group), -1) if self.num_bits else None
            res = self._tiled_residual(work, b_bits)  # (b, 3, h, w)
            for g, r in zip(group, res):
                full = g.image.to(self.device, torch.float32)  # (3, H, W)
                if r.shape != full.shape:
                    r = F.interpolate(r[None], size=full.shape[-2:], mode="bilinear")[0]
                out[g.index] = r.add_(full).clamp_(0, 1).to(g.image.device)
        return converted.restore(out)

    @torch.inference_mode()
    def logits(self, images: ImageInput, *, batch_size: int = 16) -> torch.Tensor:
        """Raw detector outputs (N, 1 + num_bits): signature logit, then bit logits."""
        return self._logits(to_library(images).images, batch_size)

    def _logits(self, items: list[torch.Tensor], batch_size: int) -> torch.Tensor:
        detector = self._require_detector()
        out = torch.empty(len(items), 1 + self.num_bits)
        for group in self._batches(items, batch_size):
            work = torch.stack([g.work for g in group]).to(self.device)  # (b, 3, h, w)
            if min(work.shape[-2:]) < detector.min_size:
                raise ImageTooSmallError(
                    f"images must be at least {detector.min_size} pixels on a side for this kit, "
                    f"got {tuple(work.shape[-2:])}"
                )
            out[[g.index for g in group]] = self._detect_work(work).float().cpu()
        return out

    def score_tensor(self, images: torch.Tensor) -> torch.Tensor:
        """Signature scores (B,) of float (B, 3, H, W) in [0, 1], differentiable in ``images``.

        The same numbers as ``logits(images)[:, 0]`` (same fitting and tiles), but with gradients,
        for white-box attacks and adversarial training. Thresholds: :meth:`threshold`.
        """
        detector = self._require_detector()
        work = fit_within(images.float(), self.work_size)  # (B, 3, h, w)
        if min(work.shape[-2:]) < detector.min_size:
            raise ValueError(f"images must be at least {detector.min_size} pixels on a side")
        return self._detect_work(work.to(self.device))[:, 0]

    def _tile_starts(self, h: int, w: int) -> list[tuple[int, int]] | None:
        """Top-left corners of the tile grid, or None when the image is used whole."""
        t = self.tile_size
        if t is None or h < t or w < t or (h == t and w == t):
            return None

        def starts(n: int) -> list[int]:
            s = list(range(0, n - t + 1, t))
            return s if s[-1] == n - t else s + [n - t]

        return [(y, x) for y in starts(h) for x in starts(w)]

    def _tiled_residual(self, work: torch.Tensor, bits: torch.Tensor | None) -> torch.Tensor:
        """W's residual for (b, 3, h, w), tile by tile (later tiles overwrite overlaps)."""
        corners = self._tile_starts(*work.shape[-2:])
        if corners is None:
            with autocast(self.sign_precision, work.device):
                return self.injector.residual(work, bits).float()
        t, b = self.tile_size, len(work)
        tiles = torch.cat([work[..., y : y + t, x : x + t] for y, x in corners])  # (n*b, 3, t, t)
        tile_bits = bits.repeat(len(corners), 1) if bits is not None else None
        with autocast(self.sign_precision, work.device):
            res_tiles = self.injector.residual(tiles, tile_bits).float()  # (n*b, 3, t, t)
        res = torch.zeros_like(work)
        for i, (y, x) in enumerate(corners):
            res[..., y : y + t, x : x + t] = res_tiles[i * b : (i + 1) * b]
        return res

    def _detect_work(self, work: torch.Tensor) -> torch.Tensor:
        """F's outputs for (b, 3, h, w): the best over ``detect_scales`` (per image).

        Why a scale search: an image cropped and resized back, or downscaled, shows the
        signature magnified or shrunk; reading it at a few rescalings undoes that. The clean
        scores used for calibration go through the same search, so thresholds stay honest.
        With ``upscale_within_work`` (v2 kits), scales above 1 are tried only while the image
        stays within ``work_size``: a downscaled copy of a signed image is brought back to the
        resolution it was signed at (where its content mask was computed), and full-size
        images cost nothing extra. With ``scale_norm`` the scores are compared as z-scores
        (see :meth:`combine_scales`).
        """
        if (
            self.detect_scales == (1.0,)
            and self._norm_for(min(work.shape[-2:])) is None
            and self._fit_up_size(*work.shape[-2:]) is None
            and not self.mirror_reads
        ):
            return self._tiled_detect(work)
        return self.combine_scales(self._read_scales(work), side=min(work.shape[-2:]))

    def _norm_for(self, side: int) -> dict[float, tuple[float, float]] | None:
        """The scale norm fitted on clean images of the largest size not above ``side`` (the
        smallest when ``side`` is below all), as for thresholds; ``None`` when the kit has
        none or it does not cover every detection scale."""
        if not self.scale_norm:
            return None
        sizes = sorted(self.scale_norm)
        norm = self.scale_norm[max((s for s in sizes if s <= side), default=sizes[0])]
        # An empty norm: this size reads raw scores (calibration found the norm did not help).
        return norm if norm and all(s in norm for s in self.detect_scales) else None

    def _scale_sizes(self, h: int, w: int) -> list[tuple[int, int] | None]:
        """The size each of ``detect_scales`` reads an (h, w) image at; None where a scale is
        not tried (too small, or above ``work_size`` with ``upscale_within_work``)."""
        detector = self._require_detector()
        sizes: list[tuple[int, int] | None] = []
        for scale in self.detect_scales:
            size = (round(h * scale), round(w * scale))
            too_small = min(size) < max(detector.min_size, self.tile_size or 0)
            too_big = self.upscale_within_work and scale > 1 and max(size) > self.work_size
            sizes.append(None if too_small or too_big else size)
        return sizes

    def _fit_up_size(self, h: int, w: int) -> tuple[int, int] | None:
        """With ``fit_up``, the size of an (h, w) image fitted back up to ``work_size`` (longer
        side), when it is smaller and no detection scale already reads it at that size."""
        if not self.fit_up or max(h, w) >= self.work_size:
            return None
        scale = self.work_size / max(h, w)
        size = (round(h * scale), round(w * scale))
        return None if size in self._scale_sizes(h, w) else size

    def _read_scales(self, work: torch.Tensor) -> torch.Tensor:
        """(b, S', 1 + num_bits): F's outputs in each read slot (see :meth:`num_read_slots`);
        NaN where a scale is not tried (too small, or above ``work_size`` with
        ``upscale_within_work``). When no scale is tried, the image is read as it is, in the
        slot of scale 1 (or the first).

        With ``fit_up`` there is one more slot after the scales: the image fitted back up to
        ``work_size`` when it is smaller. Why: an image at or below the working size is signed
        at its own size, on the kit's tile grid; a platform that shrinks it by 0.75 (an
        upload) or 0.8 (a screenshot) moves the signature off that grid, and scale 2 would
        pass the working size; fitted back up, the signature is on its grid again
        (``benchmarks/probe_fit_up.py``; BENCHMARKS.md, stop 41). Larger images need no such
        read: they are signed and read on a copy fitted within the working size, which a
        downscale leaves as it was.

        With ``mirror_reads`` every slot is read again on the image mirrored left to right,
        after the unmirrored ones. Why: a v2 signature is read on the grid it was signed on,
        and mirroring (a selfie camera, an edit) reverses it, so a mirrored signed image
        reads below clean ones (BENCHMARKS.md, stop 42); mirrored back it is the signed image.
        It doubles detection's cost, so kits turn it on only where calibrated with it.
        """
        out = self._read_slots(work)
        if self.mirror_reads:
            out = torch.cat([out, self._read_slots(work.flip(-1))], dim=1)
        return out

    def num_read_slots(self) -> int:
        """How many reads :meth:`scale_logits` returns per image: one per detection scale,
        one more with ``fit_up``, and all of them twice with ``mirror_reads``."""
        return (len(self.detect_scales) + int(self.fit_up)) * (2 if self.mirror_reads else 1)

    def _read_slots(self, work: torch.Tensor) -> torch.Tensor:
        """The scale reads and the fit-up read of ``work`` as it is (:meth:`_read_scales`)."""
        h, w = work.shape[-2:]
        fit = self._fit_up_size(h, w)
        slots = len(self.detect_scales) + (1 if self.fit_up else 0)
        shape = (len(work), slots, 1 + self.num_bits)
        out = torch.full(shape, math.nan, device=work.device)  # stays on the device, keeps grads
        for i, (scale, size) in enumerate(zip(self.detect_scales, self._scale_sizes(h, w))):
            if size is None:
                continue
            view = work if scale == 1.0 else F.interpolate(
                work, size=size, mode="bilinear", antialias=scale < 1, align_corners=False
            )  # fmt: skip
            out[:, i] = self._tiled_detect(view).float()
        if torch.isnan(out[:, : len(self.detect_scales), 0]).all():
            slot = self.detect_scales.index(1.0) if 1.0 in self.detect_scales else 0
            out[:, slot] = self._tiled_detect(work).float()
        if fit is not None:
            view = F.interpolate(work, size=fit, mode="bilinear", align_corners=False)
            out[:, -1] = self._tiled_detect(view.clamp(0, 1)).float()
        return out

    def combine_scales(self, reads: torch.Tensor, *, side: int) -> torch.Tensor:
        """(b, 1 + num_bits) from per-scale reads (b, S, 1 + num_bits) of images whose shorter
        working side is ``side``: the read whose score is highest, after standardising each
        scale's score by its clean mean and spread at that size (``scale_norm``, fitted at
        calibration per size, as clean tails depend on how many tiles an image averages) when
        the kit has them.

        Why standardise: scales differ in how high clean images score (on the robust kit one
        scale's clean scores run 0.8 higher and 1.5x wider than another's), so a raw maximum
        lets the loosest scale set the clean tail, and the threshold with it. As z-scores each
        scale competes on the same footing. On held-out 256 px photos this kept 0 of 150 clean
        crops flagged while the robust kit's own-threshold detection rose from 91% to 99%
        unattacked and from 37% to 79% after a 50% crop resized back; where the working side
        is 128-191 px it fell (BENCHMARKS.md, stop 34), so ``calibrate`` fits the norm only
        when asked (``scale_norm=True``, ``advsig calibrate --scale-norm``) and keeps it at a
        size only where it detects more signed validation crops; an empty norm reads raw.
        """
        scores = reads[:, :, 0]  # (b, S)
        norm = self._norm_for(side)
        if norm is not None:
            mean = scores.new_tensor([norm[s][0] for s in self.detect_scales])
            std = scores.new_tensor([norm[s][1] for s in self.detect_scales])
            scores = (scores - mean) / std
        best = torch.nan_to_num(scores, nan=-math.inf).argmax(dim=1)  # (b,)
        rows = torch.arange(len(reads), device=reads.device)
        out = reads[rows, best].clone()  # (b, 1 + num_bits)
        out[:, 0] = scores[rows, best]
        return out

    @torch.inference_mode()
    def scale_logits(self, images: ImageInput, *, batch_size: int = 16) -> torch.Tensor:
        """Raw outputs in each read slot (N, :meth:`num_read_slots`, 1 + num_bits): each
        detection scale, then the fit-up read, then all of those mirrored, as the kit has them;
        NaN where a read is not tried. :meth:`combine_scales` turns them into :meth:`logits`'
        rows."""
        items = to_library(images).images
        out = torch.empty(len(items), self.num_read_slots(), 1 + self.num_bits)
        for group in self._batches(items, batch_size):
            work = torch.stack([g.work for g in group]).to(self.device)  # (b, 3, h, w)
            out[[g.index for g in group]] = self._read_scales(work).float().cpu()
        return out

    def fit_scale_norm(self, reads: torch.Tensor, sides: Sequence[int]) -> None:
        """Set ``scale_norm`` from per-scale reads (:meth:`scale_logits`) of clean images whose
        shorter working sides are ``sides``: one norm per size with at least 20 reads of every
        scale; a size with fewer (small images skip the scales that would shrink them below a
        tile) gets an empty norm and reads raw scores."""
        if self.fit_up or self.mirror_reads:
            raise ConfigError("fit_up and mirror reads are not standardised: turn them off")
        sides_t = torch.as_tensor(list(sides))
        norms: dict[int, dict[float, tuple[float, float]]] = {}
        for side in sorted(set(int(v) for v in sides)):
            per: dict[float, tuple[float, float]] = {}
            for i, scale in enumerate(self.detect_scales):
                values = reads[sides_t == side, i, 0]
                values = values[~torch.isnan(values)]
                if len(values) < 20:
                    break
                per[scale] = (float(values.mean()), max(float(values.std()), 1e-3))
            else:
                norms[side] = per
                continue
            norms[side] = {}
        if not any(norms.values()):
            raise ConfigError("too few clean reads: need 20 of every scale at one size at least")
        self.scale_norm = norms

    def _tiled_detect(self, work: torch.Tensor) -> torch.Tensor:
        """F's outputs for (b, 3, h, w), averaged over the same tile grid as signing."""
        detector = self._require_detector()
        corners = self._tile_starts(*work.shape[-2:])
        if corners is None:
            with autocast(self.detect_precision, work.device):
                return detector(work).float()
        t, b = self.tile_size, len(work)
        tiles = torch.cat([work[..., y : y + t, x : x + t] for y, x in corners])  # (n*b, 3, t, t)
        with autocast(self.detect_precision, work.device):
            reads = detector(tiles).float()  # (n*b, 1 + num_bits)
        return reads.view(len(corners), b, -1).mean(dim=0)  # (b, 1 + num_bits)

    def results_from_logits(
        self,
        logits: torch.Tensor,
        *,
        fpr: float = 1e-3,
        paths: Sequence[str | None] | None = None,
        sizes: Sequence[tuple[int, int]] | None = None,
    ) -> list[DetectionResult]:
        """Turn raw outputs into :class:`DetectionResult` at the threshold for ``fpr``.

        ``sizes`` (each image's height, width) selects per-size thresholds where the kit has
        them; without it every image gets the worst case over sizes.
        """
        results = []
        for i, row in enumerate(logits):
            cal = self._calibration_for(None if sizes is None else tuple(sizes[i]))
            threshold = cal.threshold(fpr)[0]
            score = float(row[0])
            signed = score >= threshold
            bit_logits = row[1:]
            conf = tuple(float(c) for c in torch.sigmoid(bit_logits.abs()))
            bits = bits_to_hex((bit_logits > 0).float()) if (signed and self.num_bits) else None
            results.append(
                DetectionResult(
                    is_signed=signed,
                    score=score,
                    p_value=cal.p_value(score),
                    threshold=threshold,
                    fpr=fpr,
                    bits=bits,
                    bit_confidence=conf if signed else (),
                    path=None if paths is None else (None if paths[i] is None else str(paths[i])),
                )
            )
        return results

    @torch.inference_mode()
    def detect(
        self,
        images: ImageInput,
        *,
        fpr: float = 1e-3,
        batch_size: int = 16,
    ) -> list[DetectionResult]:
        """Is each image signed (at false-positive rate ``fpr``), and which code does it carry.

        ``images`` as for :meth:`sign`; one result per image, always a list. Results of files
        carry their path.
        """
        converted = to_library(images)
        items = converted.images
        sizes = [tuple(img.shape[-2:]) for img in items]
        logits = self._logits(items, batch_size)
        paths = converted.paths if any(p is not None for p in converted.paths) else None
        return self.results_from_logits(logits, fpr=fpr, sizes=sizes, paths=paths)
