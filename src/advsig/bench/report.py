"""``report.md`` and PNG plots from a benchmark's results dict: tables a person can read.

Everything here is derived from ``results.json`` alone, so a report can be rebuilt (or restyled)
without measuring anything again: ``write_report(json.load(open("out/results.json")), "out")``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from advsig.html_report import write_html_report
from advsig.utils import atomic_path, write_text_atomic

logger = logging.getLogger(__name__)

BREAK_TPR = 0.95  # "where it breaks": TPR at FPR 1e-3 below this


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _methods(results: dict) -> list[str]:
    return [m for m in results["methods"] if m in results["summary"]["robustness"]]


def _attack_labels(results: dict) -> list[str]:
    return [a["label"] for a in results["attacks"]]


def setup_section(results: dict) -> list[str]:
    cfg, mach = results["config"], results["machine"]
    sizes = {tuple(i["size"]) for i in results["images"]}
    size_text = (
        f"{cfg['size']}x{cfg['size']} crops" if cfg["size"] else
        f"native size ({', '.join(f'{w}x{h}' for h, w in sorted(sizes))})"
    )  # fmt: skip
    source = (
        "the embedded test-split photos" if cfg["images"] == "embedded" else f"`{cfg['images']}`"
    )
    first = results["attacks"][0]["label"] if results["attacks"] else "-"
    n_clean = len(results["images"])
    lines = [
        "## Setup",
        "",
        f"- Images: {n_clean} from {source}, {size_text} (seed {cfg['seed']}; the first crop of "
        "each photo is its centre, later ones random crops at random scales).",
        f"- Methods: {', '.join(f'`{m}`' for m in results['methods'])}; kit `{cfg['kit']}`.",
        f"- Attacks: {len(results['attacks'])} (`{cfg['attacks']}`), from `{first}` on; each is "
        "applied with the same random draw to the watermarked and the clean image, and every "
        "result is rounded to 8 bits as a saved file would be.",
        f"- Thresholds are set on the {n_clean} clean images under the same attack, so the "
        f"smallest false-positive rate this sample resolves is 1/{n_clean} = {1 / n_clean:.3g}: "
        "at the 1e-3 target the threshold is the highest clean score (no clean image flagged).",
        "- Baselines (invisible-watermark) score an image by the number of its 32 decoded bits "
        "that match the embedded message (known-message detection).",
        f"- Machine: {mach['processor']}, {mach['cpu_count']} CPUs, torch {mach['torch']} "
        f"({mach['torch_threads']} threads), GPU: {mach['cuda'] or 'none'}; "
        f"invisible-watermark {mach.get('invisible_watermark') or '-'}. "
        f"Wall time of this invocation: {results.get('wall_time_s', 0):.0f} s "
        f"({results['evaluated_rows']} rows measured, the rest resumed).",
    ]
    if cfg.get("command"):
        lines += ["", "```", cfg["command"], "```"]
    for note in results.get("notes", []):
        lines.append(f"- Note: {note}")
    return lines


def fidelity_table(results: dict) -> list[str]:
    lines = [
        "| method | bits | PSNR mean (dB) | PSNR min (dB) | SSIM mean | SSIM min |",
        "|---|---|---|---|---|---|",
    ]
    for m in _methods(results):
        f = results["summary"]["fidelity"][m]
        lines.append(
            f"| {m} | {results['methods'][m]['num_bits']} | {_fmt(f['psnr_mean'], '.2f')} | "
            f"{_fmt(f['psnr_min'], '.2f')} | {_fmt(f['ssim_mean'], '.4f')} | "
            f"{_fmt(f['ssim_min'], '.4f')} |"
        )
    return lines


def robustness_table(results: dict, *, key: str = "tpr_at_0.001") -> list[str]:
    """Rows attacks, columns methods: TPR (bit accuracy)."""
    methods = _methods(results)
    rob = results["summary"]["robustness"]
    lines = [
        "| attack | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for label in _attack_labels(results):
        cells = []
        for m in methods:
            s = rob[m].get(label)
            if s is None:
                cells.append("-")
                continue
            bits = f" ({s['bit_accuracy']:.2f})" if s.get("bit_accuracy") is not None else ""
            cells.append(f"{_fmt(s.get(key), '.2f')}{bits}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def fpr_1e2_section(results: dict) -> list[str]:
    """The TPR at FPR 1e-2 table, or why it would repeat the 1e-3 one."""
    n_clean = len(results["images"])
    if n_clean < 100:  # neither target resolvable: both thresholds are the top clean score
        return [f"At FPR 1e-2 the table is the same: with {n_clean} clean images neither "
                "target can be resolved, so both thresholds are the highest clean score "
                "(at least 100 images separate them)."]  # fmt: skip
    return [
        "TPR at FPR 1e-2 (same threshold rule):",
        "",
        *robustness_table(results, key="tpr_at_0.01"),
    ]


def own_threshold_table(results: dict) -> list[str]:
    """TPR and clean flag rate at each method's own threshold for FPR 1e-3."""
    methods = _methods(results)
    rob = results["summary"]["robustness"]
    lines = [
        "| attack | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for label in _attack_labels(results):
        cells = []
        for m in methods:
            s = rob[m].get(label) or {}
            if "own_tpr_at_0.001" not in s:
                cells.append("-")
                continue
            cells.append(f"{s['own_tpr_at_0.001']:.2f} / {s['own_fpr_at_0.001']:.2f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def where_it_breaks(results: dict) -> list[str]:
    """One line per method: the attacks where TPR at FPR 1e-3 falls below ``BREAK_TPR``."""
    lines = []
    for m in _methods(results):
        rob = results["summary"]["robustness"][m]
        broken = [
            (label, rob[label]) for label in _attack_labels(results)
            if label in rob and rob[label]["tpr_at_0.001"] < BREAK_TPR
        ]  # fmt: skip
        if not broken:
            lines.append(f"- **{m}**: TPR >= {BREAK_TPR:.0%} under every attack measured.")
            continue
        broken.sort(key=lambda kv: kv[1]["tpr_at_0.001"])
        items = ", ".join(
            f"{label} ({s['tpr_at_0.001']:.0%}"
            + (f", bits {s['bit_accuracy']:.2f}" if s.get("bit_accuracy") is not None else "")
            + ")"
            for label, s in broken
        )
        lines.append(f"- **{m}**: {len(broken)} of {len(rob)} attacks below "
                     f"{BREAK_TPR:.0%}: {items}.")  # fmt: skip
    return lines


def security_section(rows: list[dict]) -> list[str]:
    """The no-box forgery / removal table (rows of ``advsig.bench.security``)."""
    rows = [r for r in rows if r.get("section") == "security"]
    if not rows:
        return []
    lines = [
        "## Security: forgery and removal without W or F",
        "",
        "Forgery: share of clean images flagged at the kit's own FPR 1e-3 threshold after the "
        "attack, and how many of them the registry attributes to the victim's code. Removal: "
        "share of signed images no longer flagged. Strength: the estimate as it is, or rescaled "
        "to a stated PSNR.",
        "",
        "| source | attack | K | strength | success | attributed to victim | PSNR (dB) | n |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        k = r["value"] if r.get("param") == "K" else "-"
        strength = r.get("strength") or (r["value"] if r.get("param") == "strength" else "-")
        extra = ""
        if r.get("adversary") == "unattacked":
            extra = (f" (clean flagged {_fmt(r.get('clean_flagged'), '.3f')}, residual cosine "
                     f"{_fmt(r.get('residual_cosine'), '.3f')})")  # fmt: skip
        victim = r.get("attributed_to_victim")
        lines.append(
            f"| {r.get('source', '-')} | {r['adversary']}{extra} | {k} | {strength} | "
            f"{_fmt(r['success_rate'], '.3f')} | {'-' if victim is None else victim} | "
            f"{_fmt(r.get('psnr'), '.1f')} | {r['n']} |"
        )
    return lines + [""]


def adversaries_section(rows: list[dict]) -> list[str]:
    """One table per ``adversary`` value, with the union of its rows' keys as columns."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(str(r.get("adversary", "adversary")), []).append(r)
    lines = ["## Adversaries", ""]
    for name, grows in groups.items():
        cols: list[str] = []
        for r in grows:
            cols += [k for k in r if k != "adversary" and k not in cols]
        lines += [f"### {name}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for r in grows:
            cells = []
            for c in cols:
                v = r.get(c)
                cells.append(
                    _fmt(v, ".4g") if isinstance(v, float) else ("-" if v is None else str(v))
                )
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines


# --------------------------------------------------------------------------- plots
def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")


def plot_strength(results: dict, path: Path) -> Path | None:
    """TPR at FPR 1e-3 against attack strength, one panel per family with >= 2 strengths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families: dict[str, list[dict]] = {}
    for a in results["attacks"]:
        if a["strength"] is not None:
            families.setdefault(a["family"], []).append(a)
    families = {
        f: sorted(v, key=lambda a: a["strength"]) for f, v in families.items() if len(v) > 1
    }
    if not families:
        return None
    rob = results["summary"]["robustness"]
    cols = min(3, len(families))
    rows = math.ceil(len(families) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (family, attacks) in zip(axes.flat, families.items()):
        for k, m in enumerate(_methods(results)):
            pts = [(a["strength"], rob[m][a["label"]]["tpr_at_0.001"])
                   for a in attacks if a["label"] in rob[m]]  # fmt: skip
            if pts:  # distinct markers and dashes: methods at the same TPR stay visible
                ax.plot(*zip(*pts), marker="osD^v"[k % 5], linestyle=["-", "--", ":", "-."][k % 4],
                        markersize=max(3, 7 - k), alpha=0.85, label=m)  # fmt: skip
        ax.set_title(family)
        ax.set_xlabel(attacks[0].get("param") or "strength")
        ax.set_ylabel("TPR at FPR 1e-3")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(families) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def plot_fidelity_vs_robustness(results: dict, path: Path) -> Path | None:
    """Embedding PSNR against mean TPR at FPR 1e-3 over all attacks, one point per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fid, rob = results["summary"]["fidelity"], results["summary"]["robustness"]
    pts = []
    for m in _methods(results):
        tprs = [s["tpr_at_0.001"] for s in rob[m].values()]
        if fid[m]["psnr_mean"] is not None and tprs:
            pts.append((m, fid[m]["psnr_mean"], sum(tprs) / len(tprs)))
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.8))
    for m, x, y in pts:
        ax.scatter(x, y, s=40)
        ax.annotate(m, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=9)
    ax.set_xlabel("embedding PSNR (dB), higher = less visible")
    ax.set_ylabel("mean TPR at FPR 1e-3 over attacks")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def write_report(results: dict, out: str | Path) -> Path:
    """``out/report.md``, ``out/plots/*.png`` and ``out/report.html`` (self-contained).

    Returns the Markdown report's path.
    """
    out = Path(out)
    plots = out / "plots"
    strength = plot_strength(results, plots / "detection-vs-strength.png")
    scatter = plot_fidelity_vs_robustness(results, plots / "fidelity-vs-robustness.png")
    lines = [
        "# advsig bench",
        "",
        *setup_section(results),
        "",
        "## Fidelity (embedding, vs the original image)",
        "",
        *fidelity_table(results),
        "",
        "## Robustness: TPR at FPR 1e-3 (bit accuracy)",
        "",
        "Threshold set on the clean images under the same attack. Cell: share of watermarked "
        "images detected, then the mean share of message bits decoded right.",
        "",
        *robustness_table(results),
        "",
        *fpr_1e2_section(results),
        "",
        "## At each method's own threshold (FPR 1e-3)",
        "",
        "advsig: the kit's calibrated threshold; baselines: the binomial tail of matching bits. "
        "Cell: TPR / share of clean images flagged under the same attack. This is the threshold "
        "a deployment uses, fixed before seeing any attack.",
        "",
        *own_threshold_table(results),
        "",
        "## Where it breaks",
        "",
        *where_it_breaks(results),
        "",
    ]
    if strength or scatter:
        lines += ["## Plots", ""]
        if strength:
            lines += ["![detection vs attack strength](plots/detection-vs-strength.png)", ""]
        if scatter:
            lines += ["![fidelity vs robustness](plots/fidelity-vs-robustness.png)", ""]
    if results.get("adversaries"):
        lines += security_section(results["adversaries"])
        lines += adversaries_section(
            [r for r in results["adversaries"] if r.get("section") != "security"]
        )
    path = out / "report.md"
    write_text_atomic(path, "\n".join(lines) + "\n")
    write_html_report(path)
    return path
