"""Table 1 (faithfulness) and Table 2 (efficiency) from the per-prompt records, as Markdown and CSV.

Every cell is the mean over prompts and its standard error (sample std / sqrt(n)); prompts where a value is
undefined (NaN, e.g. the AUC of a prompt without a non-sound word) are left out of that cell only.
"""
from __future__ import annotations

import math
from pathlib import Path

from ..tables import markdown_table, write_csv

TABLE1 = (("FidF", "fid_f"), ("FidCF", "fid_cf"), ("KLF", "kl_f"), ("KLCF", "kl_cf"), ("Size", "size"),
          ("FidF-Ori", "fid_f_minus_ori"), ("KLF-Ori", "kl_f_minus_ori"))
# FidF-Ori, KLF-Ori: a method's FidF / KLF minus the Ori floor's on the SAME prompt, averaged (a paired difference:
# the prompt-to-prompt spread, which dominates each column's own standard error, cancels). Below 0 or within
# about two standard errors of it: the factual audio is as close to x as plain regeneration is.
PAIRED = {"fid_f_minus_ori": "fid_f", "kl_f_minus_ori": "kl_f"}
AUC = ("AUC", "auc")  # Table 1's extra column, for a model with ground truth (``tag.ground_truth``)
TABLE2 = (("seconds", "seconds"), ("peak_MB", "peak_mb"), ("MB_per_explanation", "mb_per_explanation"))
ORI = "ori"


def table1_columns(ground_truth: bool) -> tuple[tuple[str, str], ...]:
    """Table 1's columns: the paper's, plus the AUC against the ground truth when the model has one."""
    return TABLE1 + (AUC,) if ground_truth else TABLE1


def paired_with_ori(record: dict, ori: dict | None) -> dict:
    """A method's per-prompt record with its ``*_minus_ori`` values (`PAIRED`) against the same prompt's Ori."""
    if ori is None:
        return record
    return {**record, **{key: record[base] - ori[base] for key, base in PAIRED.items()
                         if record.get(base) is not None and ori.get(base) is not None}}


def mean_se(values) -> tuple[float, float, int]:
    values = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(values) / n
    if n == 1:
        return mean, math.nan, 1
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n), n


def summarise(records: dict[str, list[dict]], columns) -> list[dict]:
    """records: method -> per-prompt dicts. Returns one row per method: {method, n, COL, COL_se, ...}."""
    rows = []
    for method, items in records.items():
        row = {"method": method, "n": len(items)}
        for column, key in columns:
            mean, se, _ = mean_se(item.get(key) for item in items)
            row[column], row[f"{column}_se"] = mean, se
        rows.append(row)
    return rows


def write_table(rows: list[dict], columns, folder: Path, name: str, title: str) -> tuple[Path, Path]:
    """``{name}.csv`` (means and standard errors in separate columns) and ``{name}.md`` (mean ± se)."""
    folder.mkdir(parents=True, exist_ok=True)
    header = ["method", "n"] + [c for column, _ in columns for c in (column, f"{column}_se")]
    csv_path, md_path = folder / f"{name}.csv", folder / f"{name}.md"
    write_csv([{k: _csv(row.get(k)) for k in header} for row in rows], csv_path, header)
    cells = [{"method": row["method"], "n": row["n"], **{c: _md(row[c], row[f"{c}_se"]) for c, _ in columns}}
             for row in rows]
    md_path.write_text(f"### {title}\n\n" + markdown_table(cells, ["method", "n", *(c for c, _ in columns)]))
    return md_path, csv_path


def _csv(value):
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def _md(mean: float, se: float) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.4g}" if math.isnan(se) else f"{mean:.4g} ± {se:.2g}"
