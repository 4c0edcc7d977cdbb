"""How close synthetic structured records are to the real ones, column by column and pair by
pair: what a steward reads before approving a dp-tabular batch.

- marginals: total variation distance per column over its bins or categories (0 = same
  distribution, 1 = disjoint);
- pairs: Cramér's V of every column pair over the codes (works for numeric bins and
  categories alike), real against synthetic, and Pearson correlation of numeric pairs.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from synth.tabular import TabularCodec


def fidelity_report(
    codec: TabularCodec,
    real: np.ndarray,
    synthetic: np.ndarray,
    real_numeric: np.ndarray,
    synthetic_numeric: np.ndarray,
) -> dict[str, Any]:
    """``real``/``synthetic``: code matrices; ``*_numeric``: the numeric columns' values."""
    if len(real) == 0 or len(synthetic) == 0:
        return {"rows_real": len(real), "rows_synthetic": len(synthetic)}
    marginals = {
        column.name: round(_tvd(real[:, j], synthetic[:, j], size), 4)
        for j, (column, size) in enumerate(zip(codec.columns, codec.sizes, strict=True))
    }
    pairs = {}
    for a, b in combinations(range(len(codec.columns)), 2):
        name = f"{codec.columns[a].name}~{codec.columns[b].name}"
        pairs[name] = {
            "real": round(_cramers_v(real[:, a], real[:, b]), 4),
            "synthetic": round(_cramers_v(synthetic[:, a], synthetic[:, b]), 4),
        }
    differences = [abs(p["real"] - p["synthetic"]) for p in pairs.values()]
    numeric = [c.name for c in codec.columns if c.kind == "numeric"]
    correlation: dict[str, Any] = {}
    if len(numeric) >= 2:
        real_corr = np.nan_to_num(np.corrcoef(real_numeric, rowvar=False))
        synth_corr = np.nan_to_num(np.corrcoef(synthetic_numeric, rowvar=False))
        upper = np.triu_indices(len(numeric), 1)
        gap = np.abs(real_corr - synth_corr)[upper]
        correlation = {
            "columns": numeric,
            "mean_abs_difference": round(float(gap.mean()), 4),
            "max_abs_difference": round(float(gap.max()), 4),
        }
    return {
        "rows_real": len(real),
        "rows_synthetic": len(synthetic),
        "marginal_tvd": marginals,
        "mean_marginal_tvd": round(float(np.mean(list(marginals.values()))), 4),
        "pairwise_cramers_v": pairs,
        "mean_cramers_v_difference": round(float(np.mean(differences)), 4) if pairs else 0.0,
        "numeric_correlation": correlation,
    }


def _tvd(real: np.ndarray, synthetic: np.ndarray, size: int) -> float:
    p = np.bincount(real, minlength=size) / len(real)
    q = np.bincount(synthetic, minlength=size) / len(synthetic)
    return float(0.5 * np.abs(p - q).sum())


def _cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    _, a_codes = np.unique(a, return_inverse=True)
    _, b_codes = np.unique(b, return_inverse=True)
    rows, cols = a_codes.max() + 1, b_codes.max() + 1
    if rows < 2 or cols < 2:
        return 0.0
    table = np.zeros((rows, cols))
    np.add.at(table, (a_codes, b_codes), 1)
    n = table.sum()
    expected = table.sum(axis=1, keepdims=True) @ table.sum(axis=0, keepdims=True) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / (n * (min(rows, cols) - 1))))
