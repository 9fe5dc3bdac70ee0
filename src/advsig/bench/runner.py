"""The benchmark runner: every image x method x attack, resumable, aggregated at fixed FPRs.

For each image and method the image is watermarked once (a fixed random message per image);
each attack is then applied with the same random generator to the watermarked image and to the
clean one, and both are scored. The clean scores under an attack set that attack's threshold, so
a false-positive rate is always measured on clean images that suffered the same attack.

Rows are appended to ``out/rows.jsonl`` as they are measured; a re-run skips the rows already
there, keyed by (image, method, attack). ``out/results.json`` (config, machine, rows, summary)
and ``out/report.md`` are rewritten at the end.

Example:
    >>> results = run_bench(BenchConfig(kit="base", out="bench-out", num_images=4,
    ...                                 attacks="jpeg75,crop50,hflip", size=256))
    >>> results["summary"]["robustness"]["advsig"]["jpeg75"]["tpr_at_0.001"]
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import math
import os
import platform
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from tqdm.auto import tqdm

from advsig.attacks import (
    ATTACKS,
    Attack,
    CenterCrop,
    Compose,
    HorizontalFlip,
    Identity,
    Rotate,
    capture_grid,
    create_attack,
    standard_grid,
)
from advsig.bench.methods import WatermarkMethod, create_method, quantize
from advsig.bench.metrics import auc, bit_test, psnr, ssim, tpr_at_fpr
from advsig.errors import ConfigError
from advsig.kits import DEFAULT_KIT
from advsig.utils import write_text_atomic

logger = logging.getLogger(__name__)

FPRS = (1e-2, 1e-3)
DEFAULT_METHODS = ("advsig", "dwtDct", "dwtDctSvd", "rivaGan")
# Modules of image -> image attacks beyond the standard grid, imported only for --attacks all.
EXTRA_ATTACK_MODULES = (
    "advsig.attacks.regeneration",
    "advsig.attacks.restoration",
    "advsig.attacks.adversarial",
)
GRID_FUNCTIONS = ("benchmark_attacks", "regeneration_grid")
# Fields that decide what a row means; a resumed run must agree on them.
ROW_DEFINING_FIELDS = ("kit", "images", "size", "seed")


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark run.

    Attributes:
        kit: the kit behind the plain ``advsig`` method (``advsig:KIT`` methods name their own).
        images: ``"embedded"`` (the test-split photos no shipped kit trained on) or a folder.
        out: output folder (rows.jsonl, results.json, report.md, plots/).
        methods: method names (``advsig``, ``advsig:KIT``, ``dwtDct``, ``dwtDctSvd``, ``rivaGan``).
        attacks: ``"standard"``, ``"all"`` or comma-separated attack labels / names.
        size: side of the square crops evaluated (0: images at native size).
        num_images: how many images (crops cycle over the sources: the first crop of each
            source is its centre, the next ones random crops at random scales).
        seed: messages, crops and attack randomness all derive from it.
        adversaries: also run ``advsig.bench.adversaries.run_adversaries`` on the kit.
        adversary_sections: which of its sections (default: all).
        quick_adversaries: the adversaries' tiny budgets (CI's smoke run), not the full ones.
        signed_images: a folder of signed images the attacker holds (e.g. a signed generator's
            samples): signature estimation and the security rows also lift the signature from
            them.
        command: the command line, for the report.
    """

    kit: str = DEFAULT_KIT
    images: str = "embedded"
    out: str = "bench-out"
    methods: tuple[str, ...] = DEFAULT_METHODS
    attacks: str = "standard"
    size: int = 256
    num_images: int = 20
    seed: int = 0
    adversaries: bool = False
    adversary_sections: tuple[str, ...] | None = None
    quick_adversaries: bool = False
    signed_images: str | None = None
    command: str | None = None

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ConfigError(f"size must be >= 0 (0 = native), got {self.size!r}")
        if self.num_images < 2:
            raise ConfigError(f"num_images must be >= 2 (clean scores set the threshold), "
                              f"got {self.num_images!r}")  # fmt: skip
        if not self.methods:
            raise ConfigError("no methods given")
        if len(set(self.methods)) != len(self.methods):
            raise ConfigError(f"methods repeat: {', '.join(self.methods)}")


# --------------------------------------------------------------------------- inputs
def _stable_seed(*parts: object) -> int:
    """A seed from names, identical across runs and processes (unlike ``hash``)."""
    return zlib.crc32("/".join(map(str, parts)).encode())


def _center_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    """Scale so the shorter side is ``size`` (antialiased), then cut the central square."""
    import torch.nn.functional as F

    h, w = image.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        image = F.interpolate(image[None], size=(nh, nw), mode="bicubic", antialias=True)[0]
    top, left = (nh - size) // 2, (nw - size) // 2
    return image[:, top : top + size, left : left + size].clamp(0, 1)


def load_bench_images(
    images: str, *, size: int, num_images: int, seed: int
) -> list[tuple[str, torch.Tensor]]:
    """(name, float (3, size, size) in [0, 1], 8-bit values) pairs, deterministic given seed.

    ``images``: ``"embedded"`` or a folder. With ``size`` 0 the first ``num_images`` images are
    used whole; otherwise crop i comes from source i mod S: its centre the first time round,
    random crops at random scales after that.
    """
    from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
    from advsig.data.io import list_images, load_image

    if images == "embedded":
        sources = embedded_images("test")
    else:
        folder = Path(images)
        if not folder.is_dir():
            raise ConfigError(f"--images {images!r} is neither a folder nor 'embedded'")
        files = list_images(folder)
        if not files:
            raise ConfigError(f"{folder}: no images found")
        sources = [(str(p.relative_to(folder).with_suffix("")), load_image(p).image) for p in files]
    if size == 0:
        return [(name, quantize(img)) for name, img in sources[:num_images]]
    out = []
    for i in range(num_images):
        name, img = sources[i % len(sources)]
        round_ = i // len(sources)
        if round_ == 0:
            crop = _center_crop(img, size)
            out.append((f"{name}-center", quantize(crop)))
        else:
            gen = torch.Generator().manual_seed(_stable_seed(seed, "crop", name, round_))
            crop = RandomCrops(ImagePool([img], max_side=max(img.shape[-2:])), size).sample(1, gen)
            out.append((f"{name}-crop{round_}", quantize(crop[0])))
    return out


def _extra_attacks(notes: list[str]) -> list[Attack]:
    """Image -> image attacks from the adversary modules that can be built without arguments.

    A module may define a grid function (``GRID_FUNCTIONS``) returning its attacks as data;
    otherwise each attack class registered from it is built with its defaults. Missing modules
    and attacks that need arguments (a model, a kit) are skipped with a note.
    """
    found: list[Attack] = []
    for module_name in EXTRA_ATTACK_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            notes.append(f"{module_name} is not available ({exc}); its attacks were skipped")
            continue
        grid = next((getattr(module, f) for f in GRID_FUNCTIONS if hasattr(module, f)), None)
        if grid is not None:
            found += list(grid())
            continue
        for name, cls in sorted(ATTACKS.items()):
            if cls.__module__ != module_name:
                continue
            try:
                found.append(cls())
            except Exception as exc:  # an attack that needs arguments is not a blind attack
                notes.append(f"attack {name!r} ({module_name}) skipped: cannot build with "
                             f"defaults ({type(exc).__name__}: {exc})")  # fmt: skip
    for note in notes:
        logger.info(note)
    return found


# What a photo meets on its way to a detector without anyone trying to remove a signature
# (issue 11's light processing): calibration on these keeps the stated FPR for such photos.
LIGHT_PROCESSING = "jpeg90,jpeg75,resize0.5-back,noise0.02,brightness1.3"


def pixel_grid() -> list[Attack]:
    """The standard grid's attacks that keep every pixel where it was (no crop, rotation, flip
    or size change, no identity): what a geometry-free kit is trained for, and what its clean
    tails are calibrated under."""
    return [
        a for a in standard_grid()
        if not isinstance(a, (Identity, CenterCrop, Rotate, HorizontalFlip, Compose))
    ]  # fmt: skip


def resolve_attacks(spec: str, *, notes: list[str] | None = None) -> list[Attack]:
    """Attacks from a comma-separated list of groups and labels, in order.

    Groups: ``"standard"``, ``"capture"`` (other codecs and capture chains,
    :func:`capture_grid`), ``"all"``, ``"light"`` (:data:`LIGHT_PROCESSING`), ``"pixel"``
    (:func:`pixel_grid`). Labels: ``jpeg75``, ``crop50-resized``..., or registered names
    (``hflip``, built with their defaults). Groups mix with labels (``pixel,hflip``); an
    attack that a group already brought is kept once, while a label named twice is an error.
    """
    notes = [] if notes is None else notes
    groups = {
        "pixel": pixel_grid,
        "standard": standard_grid,
        "capture": capture_grid,
        "all": lambda: standard_grid() + capture_grid()[1:] + _extra_attacks(notes),
    }
    items = [s.strip() for s in spec.split(",") if s.strip()]
    repeated = sorted({i for i in items if items.count(i) > 1})
    if repeated:
        raise ConfigError(f"attacks named twice in {spec!r}: {', '.join(repeated)}")
    light = [s.strip() for s in LIGHT_PROCESSING.split(",")]
    items = [e for i in items for e in (light if i == "light" else [i])]
    known = {a.label: a for a in standard_grid() + capture_grid()}
    if any(i not in known and i not in ATTACKS and i not in groups for i in items):
        known.update({a.label: a for a in _extra_attacks(notes)})
    out: dict[str, Attack] = {}
    for item in items:
        if item in groups:
            for attack in groups[item]():
                out.setdefault(attack.label, attack)
            continue
        if item in known:
            attack = known[item]
        elif item in ATTACKS:
            attack = create_attack(item)
        else:
            raise ConfigError(
                f"unknown attack {item!r}; use groups ({', '.join(groups)}, light) or labels "
                f"from: {', '.join(known)}"
            )
        out.setdefault(attack.label, attack)
    if not out:
        raise ConfigError(f"no attacks in {spec!r}")
    return list(out.values())


def attack_info(attack: Attack) -> dict:
    """Label, family and strength of an attack, for tables and strength plots."""
    params = attack.params() if not hasattr(attack, "attacks") else {}
    flags = [k for k, v in params.items() if v is True]
    numbers = [(k, v) for k, v in params.items()
               if isinstance(v, int | float) and not isinstance(v, bool)]  # fmt: skip
    return {
        "label": attack.label,
        "family": "-".join([attack.name, *flags]),
        "param": numbers[0][0] if numbers else None,
        "strength": float(numbers[0][1]) if numbers else None,
        "repr": repr(attack),
    }


def build_methods(config: BenchConfig) -> list[WatermarkMethod]:
    """The configured methods; the plain ``advsig`` method uses ``config.kit``."""
    out = []
    for name in config.methods:
        out.append(create_method(name, kit=config.kit) if name == "advsig" else create_method(name))
    return out


def machine_info() -> dict:
    """What the timings depend on."""
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        from importlib.metadata import version

        info["invisible_watermark"] = version("invisible-watermark")
    except Exception:
        info["invisible_watermark"] = None
    return info


# --------------------------------------------------------------------------- rows
def _finite(x: float | None) -> float | None:
    """JSON has no inf / nan: None stands for 'undefined' (PSNR of identical images is inf)."""
    return None if x is None or not math.isfinite(x) else float(x)


def read_rows(path: Path) -> list[dict]:
    """Rows already measured. A half-written last line (a crash mid-append) is dropped."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    rows, good = [], []
    for line in text.splitlines(keepends=True):
        try:
            if not line.endswith("\n"):
                raise ValueError("unterminated")
            rows.append(json.loads(line))
            good.append(line)
        except ValueError:
            logger.warning("%s: dropping an incomplete row (interrupted run)", path)
            break
    if "".join(good) != text:
        write_text_atomic(path, "".join(good))
    return rows


def _measure(
    method: WatermarkMethod,
    attack: Attack,
    signed: torch.Tensor,
    clean_attacked: torch.Tensor,
    message: torch.Tensor,
    seed: int,
) -> dict:
    """Scores of one attack on the watermarked image and on the clean one (same randomness)."""
    gen = torch.Generator().manual_seed(seed)
    attacked = quantize(attack(signed, generator=gen))  # (3, H', W')
    det = method.detect([attacked, clean_attacked], messages=[message, message])
    row: dict = {"score_signed": float(det.scores[0]), "score_clean": float(det.scores[1])}
    if det.bits is not None and method.num_bits:
        test = bit_test(det.bits[0], message)
        row.update(bits_correct=test.correct, num_bits=test.num_bits,
                   bit_accuracy=test.accuracy, bit_p_value=test.p_value)  # fmt: skip
    same = attacked.shape == signed.shape
    row["attack_psnr"] = _finite(psnr(attacked, signed)) if same else None
    row["attack_ssim"] = _finite(ssim(attacked, signed)) if same else None
    return row


# --------------------------------------------------------------------------- summary
def summarize(rows: list[dict], methods: dict[str, dict]) -> dict:
    """Fidelity per method; detection per (method, attack) at the FPRs set on clean scores."""
    by_method: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("error") is None:
            by_method.setdefault(r["method"], []).append(r)
    fidelity, robustness = {}, {}
    for name, mrows in by_method.items():
        embeds = {r["image"]: (r["embed_psnr"], r["embed_ssim"]) for r in mrows}
        p = [v[0] if v[0] is not None else math.inf for v in embeds.values()]
        s = [v[1] for v in embeds.values()]
        fidelity[name] = {
            "num_images": len(embeds),
            "psnr_mean": _finite(float(np.mean(p))), "psnr_min": _finite(float(np.min(p))),
            "ssim_mean": float(np.mean(s)), "ssim_min": float(np.min(s)),
        }  # fmt: skip
        by_attack: dict[str, list[dict]] = {}
        for r in mrows:
            by_attack.setdefault(r["attack"], []).append(r)
        own = methods.get(name, {}).get("thresholds", {})
        robustness[name] = {a: _summarize_attack(ar, own) for a, ar in by_attack.items()}
    return {"fidelity": fidelity, "robustness": robustness}


def _summarize_attack(rows: list[dict], own_thresholds: dict) -> dict:
    signed = np.array([r["score_signed"] for r in rows])
    clean = np.array([r["score_clean"] for r in rows])
    out: dict = {
        "num_images": len(rows),
        "resolvable_fpr": 1 / len(clean),  # the smallest nonzero FPR this many clean images show
        "auc": auc(signed, clean),
    }
    for fpr in FPRS:
        d = tpr_at_fpr(signed, clean, fpr)
        out[f"tpr_at_{fpr:g}"] = d.tpr
        out[f"fpr_at_{fpr:g}"] = d.fpr
        out[f"threshold_at_{fpr:g}"] = d.threshold
        t = own_thresholds.get(f"{fpr:g}")
        if t is not None:  # the method's own operating point (calibration / binomial tail)
            out[f"own_tpr_at_{fpr:g}"] = float((signed > t).mean())
            out[f"own_fpr_at_{fpr:g}"] = float((clean > t).mean())
    bits = [r for r in rows if r.get("bit_accuracy") is not None]
    if bits:
        correct, total = sum(r["bits_correct"] for r in bits), sum(r["num_bits"] for r in bits)
        out["bit_accuracy"] = float(np.mean([r["bit_accuracy"] for r in bits]))
        # Pooled over images: P(at least this many right bits | no message, fair coins).
        out["bits_p_value"] = float(
            stats.binomtest(correct, total, 0.5, alternative="greater").pvalue
        )
    psnrs = [r["attack_psnr"] for r in rows if r.get("attack_psnr") is not None]
    out["attack_psnr_mean"] = float(np.mean(psnrs)) if psnrs else None
    return out


# --------------------------------------------------------------------------- run
def _check_resume(out: Path, config: BenchConfig) -> None:
    """Refuse to mix rows from a run whose images or seed differ."""
    path = out / "bench-config.json"
    current = {k: getattr(config, k) for k in ROW_DEFINING_FIELDS}
    if path.exists():
        previous = json.loads(path.read_text(encoding="utf-8"))
        diff = {k: (previous.get(k), v) for k, v in current.items() if previous.get(k) != v}
        if diff:
            changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
            raise ConfigError(f"{out} holds a run with other settings ({changes}); "
                              "use another --out or delete it")  # fmt: skip
    else:
        write_text_atomic(path, json.dumps(current, indent=2) + "\n")


def run_bench(config: BenchConfig, *, progress: bool = True) -> dict:
    """Run (or resume) the benchmark; write rows.jsonl, results.json, report.md and plots.

    Returns the results dict (also written to ``out/results.json``); ``evaluated_rows`` counts
    the rows measured by this call (0 when everything was already there).
    """
    from advsig.bench.report import write_report
    from advsig.kit import Kit

    start = time.perf_counter()
    out = Path(config.out)
    if config.adversaries:
        try:
            adversaries_module = importlib.import_module("advsig.bench.adversaries")
        except ModuleNotFoundError as exc:
            raise ConfigError(f"--adversaries needs advsig.bench.adversaries, which this "
                              f"install does not have yet ({exc})") from exc  # fmt: skip
    notes: list[str] = []
    attacks = resolve_attacks(config.attacks, notes=notes)
    images = load_bench_images(config.images, size=config.size, num_images=config.num_images,
                               seed=config.seed)  # fmt: skip
    if len(images) < 2:
        raise ConfigError(f"{config.images}: need at least 2 images, found {len(images)}")
    methods = build_methods(config)
    out.mkdir(parents=True, exist_ok=True)
    _check_resume(out, config)
    rows_path = out / "rows.jsonl"
    rows = read_rows(rows_path)
    done = {(r["image"], r["method"], r["attack"]) for r in rows}
    evaluated = 0
    pairs = [(i, m) for i in range(len(images)) for m in methods]
    bar = tqdm(pairs, desc="bench", unit="image-method", disable=not progress)
    with rows_path.open("a", encoding="utf-8") as sink:
        clean_cache: dict[tuple[str, str], torch.Tensor] = {}
        for i, method in bar:
            name, image = images[i]
            todo = [a for a in attacks if (name, method.name, a.label) not in done]
            if not todo:
                continue
            bar.set_postfix_str(f"{name} / {method.name}")
            gen = torch.Generator().manual_seed(_stable_seed(config.seed, "message", name))
            message = torch.randint(0, 2, (method.num_bits,), generator=gen).float()
            t0 = time.perf_counter()
            signed = method.embed([image], messages=[message])[0]  # (3, H, W), 8-bit values
            embed_s = time.perf_counter() - t0
            base = {"image": name, "method": method.name,
                    "embed_psnr": _finite(psnr(signed, image)), "embed_ssim": ssim(signed, image),
                    "embed_s": embed_s}  # fmt: skip
            for attack in todo:
                seed = _stable_seed(config.seed, "attack", name, attack.label)
                key = (name, attack.label)
                if key not in clean_cache:  # the clean image suffers the same draw
                    g = torch.Generator().manual_seed(seed)
                    clean_cache[key] = quantize(attack(image, generator=g))
                t0 = time.perf_counter()
                try:
                    row = _measure(method, attack, signed, clean_cache[key], message, seed)
                except (ValueError, RuntimeError) as exc:  # e.g. too small for a detector
                    logger.warning("%s / %s / %s failed: %s", name, method.name, attack.label, exc)
                    row = {"error": f"{type(exc).__name__}: {exc}"}
                row = {**base, "attack": attack.label, **row,
                       "detect_s": time.perf_counter() - t0}  # fmt: skip
                sink.write(json.dumps(row) + "\n")
                sink.flush()
                rows.append(row)
                evaluated += 1
            clean_cache = {k: v for k, v in clean_cache.items() if k[0] == name}
    bar.close()
    wanted_attacks = {a.label for a in attacks}
    wanted_images = {n for n, _ in images}
    wanted_methods = {m.name for m in methods}
    rows = [r for r in rows if r["attack"] in wanted_attacks and r["image"] in wanted_images
            and r["method"] in wanted_methods]  # fmt: skip
    crop = (config.size, config.size) if config.size else None  # per-size kit thresholds
    method_info = {
        m.name: {
            "repr": repr(m), "num_bits": m.num_bits,
            "thresholds": {f"{f:g}": _finite(m.threshold(f, size=crop)) for f in FPRS},
        }
        for m in methods
    }  # fmt: skip
    results = {
        "config": dataclasses.asdict(config),
        "machine": machine_info(),
        "images": [{"name": n, "size": list(img.shape[-2:])} for n, img in images],
        "attacks": [attack_info(a) for a in attacks],
        "methods": method_info,
        "notes": notes,
        "evaluated_rows": evaluated,
        "rows": rows,
        "summary": summarize(rows, method_info),
    }
    if config.adversaries:
        logger.info("running the adversaries on kit %s", config.kit)
        extra = None
        if config.signed_images is not None:
            from advsig.data.io import list_images, load_image

            files = list_images(config.signed_images)
            if not files:
                raise ConfigError(f"{config.signed_images}: no images")
            extra = [load_image(f) for f in files]
        sections = config.adversary_sections or adversaries_module.SECTIONS
        results["adversaries"] = list(
            adversaries_module.run_adversaries(
                Kit.from_pretrained(config.kit), [img for _, img in images],
                out=out / "adversaries", seed=config.seed, progress=progress,
                sections=sections, estimation_images=extra, quick=config.quick_adversaries,
            )
        )  # fmt: skip
    results["wall_time_s"] = time.perf_counter() - start
    write_text_atomic(out / "results.json", json.dumps(results, indent=1) + "\n")
    write_report(results, out)
    return results
