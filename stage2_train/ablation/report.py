"""The ablation's tables and chart: per-variant mean and spread over seeds, per-class deltas against
the baseline, and a paired test over seeds (a run of one variant and the baseline's run of the same
seed form a pair: same seed, same data order, same initial skeleton weights).

The test is scipy's paired t-test when scipy is installed, else an exact sign-flip permutation test
(`sign_flip_test`); the report names the one it used. Torch-free: it reads only the runs' outputs.
"""

from __future__ import annotations

import csv
import itertools
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.csv_cells import SafeWriter

# Seeds up to this count enumerate all 2**n sign patterns; more draw this many at random.
EXACT_SIGN_FLIPS = 16
RANDOM_SIGN_FLIPS = 20000


@dataclass(frozen=True)
class RunResult:
    """One finished run of the ablation, as its eval/ reports it."""

    variant: str
    seed: int
    top1: float
    mean_class_accuracy: float
    per_class: np.ndarray  # (C,) accuracy per test class, NaN where the class has no test sample
    class_names: list[str]
    work_dir: Path


@dataclass(frozen=True)
class PairedTest:
    method: str
    statistic: float
    p_value: float


def sign_flip_test(diffs) -> PairedTest:
    """Two-sided paired permutation test of mean(diffs) = 0: under the null each pair's difference
    is as likely negated, so p is the share of sign patterns whose |mean| reaches the observed one."""
    d = np.asarray(diffs, dtype=np.float64)
    observed = abs(d.mean())
    if len(d) <= EXACT_SIGN_FLIPS:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(d))))
    else:
        signs = np.random.default_rng(0).choice((1.0, -1.0), size=(RANDOM_SIGN_FLIPS, len(d)))
    means = np.abs(signs @ d / len(d))
    # A tolerance so that float rounding never drops the observed pattern from its own count.
    p = float(np.mean(means >= observed - 1e-12))
    return PairedTest(
        "sign-flip permutation test (exact)"
        if len(d) <= EXACT_SIGN_FLIPS
        else f"sign-flip permutation test ({RANDOM_SIGN_FLIPS} random patterns)",
        float(d.mean()),
        p,
    )


def paired_test(variant, baseline) -> PairedTest:
    """variant vs baseline, paired by seed: scipy's ttest_rel if importable, else `sign_flip_test`."""
    a, b = np.asarray(variant, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    try:
        from scipy.stats import ttest_rel
    except ImportError:
        return sign_flip_test(a - b)
    if len(a) < 2:
        return PairedTest("paired t-test (scipy.stats.ttest_rel)", math.nan, math.nan)
    with warnings.catch_warnings():  # identical differences: t is undefined, scipy warns and gives NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        result = ttest_rel(a, b)
    return PairedTest("paired t-test (scipy.stats.ttest_rel)", float(result.statistic), float(result.pvalue))


def spread(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single seed)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def write_ablation(out: Path, results: list[RunResult], variants: list[str], title: str) -> list[Path]:
    """ablation.csv (one row per run), ablation_per_class.csv, ablation.md and ablation.png in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    by_variant = {v: sorted((r for r in results if r.variant == v), key=lambda r: r.seed) for v in variants}
    paths = [out / "ablation.csv", out / "ablation_per_class.csv", out / "ablation.md", out / "ablation.png"]
    _write_runs_csv(paths[0], results)
    _write_per_class_csv(paths[1], by_variant)
    paths[2].write_text(markdown(by_variant, title))
    plot(paths[3], by_variant, title)
    return paths


def _write_runs_csv(path: Path, results: list[RunResult]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)  # no user text: the variants are ours ("+FAM" is their name, not a formula)
        w.writerow(["variant", "seed", "top1", "mean_class_accuracy", "work_dir"])
        for r in results:
            w.writerow([r.variant, r.seed, f"{r.top1:.6f}", f"{r.mean_class_accuracy:.6f}", r.work_dir])


def per_class_means(by_variant: dict[str, list[RunResult]]) -> dict[str, np.ndarray]:
    """variant -> (C,) per-class accuracy averaged over its seeds."""
    with warnings.catch_warnings():  # a class without test samples stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return {v: np.nanmean([r.per_class for r in runs], axis=0) for v, runs in by_variant.items()}


def _write_per_class_csv(path: Path, by_variant: dict[str, list[RunResult]]) -> None:
    variants = list(by_variant)
    baseline, means = variants[0], per_class_means(by_variant)
    names = by_variant[baseline][0].class_names
    with path.open("w", newline="") as f:
        w = SafeWriter(f)
        w.writerow(["class", "name", *(f"accuracy {v}" for v in variants), *(f"delta {v}" for v in variants[1:])])
        for c, name in enumerate(names):
            w.writerow(
                [
                    c,
                    name,
                    *(_num(means[v][c]) for v in variants),
                    *(_num(means[v][c] - means[baseline][c]) for v in variants[1:]),
                ]
            )


def _num(x: float) -> str:
    return "" if np.isnan(x) else f"{x:.6f}"


def _pct(x: float, signed: bool = False) -> str:
    return "n/a" if np.isnan(x) else (f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}")


def _mean_sd(mean: float, sd: float, n: int) -> str:
    """`61.11 ± 2.80`; one seed has no spread: `61.11` alone (never "± 0.00 over 1 seeds")."""
    return f"{_pct(mean)} ± {_pct(sd)}" if n > 1 else _pct(mean)


def _p(x: float) -> str:
    return "n/a" if np.isnan(x) else f"{x:.3f}"


def markdown(by_variant: dict[str, list[RunResult]], title: str) -> str:
    variants = list(by_variant)
    baseline = variants[0]
    seeds = [r.seed for r in by_variant[baseline]]
    base_top1 = [r.top1 for r in by_variant[baseline]]
    base_mca = [r.mean_class_accuracy for r in by_variant[baseline]]
    method = paired_test(base_top1, base_top1).method
    how = (
        f"1 seed ({seeds[0]}): one run per variant, in %, no spread and no test. Δ: variant − {baseline}."
        if len(seeds) == 1
        else f"{len(seeds)} seeds ({', '.join(map(str, seeds))}); mean ± standard deviation over seeds "
        f"(ddof 1), in %. Δ: mean over seeds of (variant − {baseline}) of the same seed. "
        f"p: {method}, two-sided, paired by seed."
    )
    lines = [
        f"# Ablation: {title}",
        "",
        how,
        "",
        "| variant | top-1 | mean class acc. | Δ top-1 | p (top-1) | Δ mean class acc. | p (mean class acc.) |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in variants:
        top1 = [r.top1 for r in by_variant[v]]
        mca = [r.mean_class_accuracy for r in by_variant[v]]
        (m1, s1), (m2, s2) = spread(top1), spread(mca)
        row = [v, _mean_sd(m1, s1, len(top1)), _mean_sd(m2, s2, len(mca))]
        if v == baseline:
            row += ["", "", "", ""]
        else:
            t1, t2 = paired_test(top1, base_top1), paired_test(mca, base_mca)
            row += [
                _pct(float(np.mean(np.subtract(top1, base_top1))), True),
                _p(t1.p_value),
                _pct(float(np.mean(np.subtract(mca, base_mca))), True),
                _p(t2.p_value),
            ]
        lines.append("| " + " | ".join(row) + " |")
    means = per_class_means(by_variant)
    names = by_variant[baseline][0].class_names
    lines += [
        "",
        f"## Per-class accuracy (mean over seeds, %) and deltas against {baseline}",
        "",
        "| class | " + f"{baseline} | " + " | ".join(f"Δ {v}" for v in variants[1:]) + " |",
        "|---" * len(variants) + "|---|",
    ]
    for c, name in enumerate(names):
        lines.append(
            f"| {c} {name} | {_pct(means[baseline][c])} | "
            + " | ".join(_pct(means[v][c] - means[baseline][c], True) for v in variants[1:])
            + " |"
        )
    lines += ["", "Runs: " + ", ".join(sorted({str(r.work_dir.parent) for rs in by_variant.values() for r in rs})), ""]
    return "\n".join(lines)


def plot(path: Path, by_variant: dict[str, list[RunResult]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    variants = list(by_variant)
    metrics = (("top-1", "top1"), ("mean class accuracy", "mean_class_accuracy"))
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(variants)
    for i, v in enumerate(variants):
        stats = [spread([100 * getattr(r, key) for r in by_variant[v]]) for _, key in metrics]
        x = np.arange(len(metrics)) + (i - (len(variants) - 1) / 2) * width
        bars = ax.bar(x, [m for m, _ in stats], width, yerr=[s for _, s in stats], capsize=4, label=v)
        ax.bar_label(bars, labels=[f"{m:.1f}" for m, _ in stats], padding=2, fontsize=8)
    n = len(by_variant[variants[0]])
    ax.set_xticks(np.arange(len(metrics)), [name for name, _ in metrics])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 118)  # room for the legend above the bars
    ax.set_title(f"{title}\n" + (f"mean ± std over {n} seeds" if n > 1 else "one seed"), fontsize=10)
    ax.legend(fontsize=8, loc="upper center", ncols=len(variants))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_backbone_table(out: Path, results: dict[str, list[RunResult]], variants: list[str]) -> list[Path]:
    """ablation-backbones.csv and .md in `out`: per backbone and variant, top-1 and mean class accuracy
    (mean ± std over seeds) and the change against that backbone's baseline (paired by seed)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for backbone, runs in results.items():
        by_variant = {v: sorted((r for r in runs if r.variant == v), key=lambda r: r.seed) for v in variants}
        base = [r.top1 for r in by_variant[variants[0]]]
        for v in variants:
            top1 = [r.top1 for r in by_variant[v]]
            (m1, s1), (m2, s2) = spread(top1), spread([r.mean_class_accuracy for r in by_variant[v]])
            delta = float(np.mean(np.subtract(top1, base))) if v != variants[0] else math.nan
            p = paired_test(top1, base).p_value if v != variants[0] else math.nan
            rows.append((backbone, v, len(top1), m1, s1, m2, s2, delta, p))
    csv_path, md_path = out / "ablation-backbones.csv", out / "ablation-backbones.md"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "backbone",
                "variant",
                "seeds",
                "top1_mean",
                "top1_std",
                "mean_class_accuracy_mean",
                "mean_class_accuracy_std",
                "delta_top1",
                "p_top1",
            ]
        )
        for b, v, n, m1, s1, m2, s2, d, p in rows:
            w.writerow([b, v, n, f"{m1:.6f}", f"{s1:.6f}", f"{m2:.6f}", f"{s2:.6f}", _num(d), _num(p)])
    lines = [
        "# Ablation across backbones",
        "",
        f"Mean ± standard deviation over seeds (ddof 1), in %. Δ: mean over seeds of (variant − "
        f"{variants[0]}) of the same backbone and seed; p: {paired_test([0.0], [0.0]).method}, "
        f"two-sided, paired by seed. Each backbone's own tables: <backbone>/ablation.md.",
        "",
        "| backbone | variant | seeds | top-1 | mean class acc. | Δ top-1 | p (top-1) |",
        "|---|---|---|---|---|---|---|",
    ]
    for b, v, n, m1, s1, m2, s2, d, p in rows:
        lines.append(
            f"| {b} | {v} | {n} | {_mean_sd(m1, s1, n)} | {_mean_sd(m2, s2, n)} | "
            f"{'' if math.isnan(d) else _pct(d, True)} | {'' if math.isnan(p) else _p(p)} |"
        )
    md_path.write_text("\n".join(lines) + "\n")
    return [csv_path, md_path]
