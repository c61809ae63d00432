"""DIR/report.md: provenance, figures, median-throughput and fit tables."""

from __future__ import annotations

import json
import math

import numpy as np

from .figures import workload_label
from .fits import CONFIG_COLUMNS
from .load import MANIFEST_KEYS, WORKLOAD_COLUMNS


def _cell(text) -> str:
    s = str(text).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    return s.strip()


def _manifest_value(v) -> str:
    if isinstance(v, (list, tuple)):
        return " ".join(str(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True)
    return str(v)


def _distinct(values, limit=5) -> str:
    vals = sorted(set(str(v) for v in values) - {""})
    if not vals:
        return "(not recorded)"
    shown = ", ".join(f"`{v}`" for v in vals[:limit])
    if len(vals) > limit:
        shown += f" (and {len(vals) - limit} more)"
    return shown


def _num(v, spec) -> str:
    if v is None:
        return ""
    v = float(v)
    if math.isnan(v):
        return ""
    if math.isinf(v):
        return "inf"
    return format(v, spec)


def _pm(v, se, spec, scale=1.0) -> str:
    a = _num(None if v is None else v * scale, spec)
    if not a:
        return ""
    b = _num(None if se is None else se * scale, spec)
    return f"{a} +/- {b}" if b else a


def _table(header, rows, left=(0,)) -> list:
    """Markdown table; columns in `left` are left-aligned, others right."""
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i in left else "---:"
                          for i in range(len(header))) + "|"]
    for r in rows:
        out.append("| " + " | ".join(_cell(c) for c in r) + " |")
    return out


def median_table(wdf) -> list:
    threads = sorted(set(int(t) for t in wdf["threads"]))
    rows = []
    for lk in sorted(set(wdf["lock"])):
        g = wdf[wdf["lock"] == lk]
        med = (g[np.isfinite(g["ops_per_sec"])]
               .groupby("threads")["ops_per_sec"].median())
        rows.append([lk] + [_num(med.get(t) / 1e6, ".3f")
                            if t in med.index else "-" for t in threads])
    return _table(["lock \\ threads"] + [str(t) for t in threads], rows)


def fit_table(fit_rows_for_workload) -> list:
    header = ["lock", "points", "Amdahl X1 (M ops/s)", "Amdahl sigma",
              "Amdahl ceiling (M ops/s)", "USL lambda (M ops/s)",
              "USL sigma", "USL kappa", "USL peak N*", "USL R^2", "note"]
    rows = []
    for r in fit_rows_for_workload:
        rows.append([
            r["lock"], str(r["points"]),
            _pm(r["amdahl_x1"], r["amdahl_x1_se"], ".4g", 1e-6),
            _pm(r["amdahl_sigma"], r["amdahl_sigma_se"], ".4g"),
            _num(r["amdahl_ceiling_ops_per_sec"] / 1e6, ".4g"),
            _pm(r["usl_lambda"], r["usl_lambda_se"], ".4g", 1e-6),
            _pm(r["usl_sigma"], r["usl_sigma_se"], ".4g"),
            _pm(r["usl_kappa"], r["usl_kappa_se"], ".4g"),
            _num(r["usl_peak_threads"], ".1f"),
            _num(r["usl_r2"], ".4f"),
            r["note"] or "",
        ])
    return _table(header, rows, left=(0, len(header) - 1))


def write_report(path, runs, fit_rows, figure_index, extra=()) -> None:
    df = runs.df
    lines = ["# LockLab report", ""]
    lines.append(
        f"Source: `runs.csv`, {len(df)} runs used of {runs.total_rows}"
        + (f"; {runs.skipped_status} skipped (status not ok)"
           if runs.skipped_status else "")
        + (f"; {runs.skipped_bad} skipped (no usable thread count)"
           if runs.skipped_bad else "") + ".")
    lines.append("")
    info = [["machine", _distinct(df["machine"])],
            ["git commit", _distinct(df["git_commit"])]]
    for key in MANIFEST_KEYS:
        if key in runs.manifest and runs.manifest[key] not in (None, ""):
            info.append([f"{key} (manifest)",
                         f"`{_manifest_value(runs.manifest[key])}`"])
    lines += _table(["item", "value"], info, left=(0, 1))
    lines.append("")
    if runs.manifest_error:
        lines += [f"Note: {runs.manifest_error}.", ""]

    bad = df[df["mutex_ok"] == False]  # noqa: E712 (None-aware)
    if len(bad):
        ids = ", ".join(f"`{v}`" for v in sorted(set(bad["run_id"]))[:10])
        lines += [f"**Warning: {len(bad)} run(s) failed the mutual-exclusion "
                  f"check (mutex_ok false): {ids}.**", ""]

    lines += [
        "Figures show the median over repeats (line and markers) and the "
        "min-max range (shaded). Dashed curves on the throughput figures "
        "are USL fits. Fits use every run's throughput point:",
        "",
        "- Amdahl: X(N) = X1 N / (1 + sigma (N-1)); ceiling X1/sigma.",
        "- USL: X(N) = lambda N / (1 + sigma (N-1) + kappa N (N-1)); peak "
        "N* = sqrt((1-sigma)/kappa) (inf when kappa = 0, 1 when "
        "sigma >= 1).",
        "",
        "Values are given +/- one standard error; full precision is in "
        "`fits.csv`.",
        "",
    ]

    by_workload = {}
    for r in fit_rows:
        by_workload.setdefault(tuple(r[c] for c in WORKLOAD_COLUMNS),
                               []).append(r)
    for w, made in figure_index:
        mask = np.ones(len(df), dtype=bool)
        for c, v in zip(WORKLOAD_COLUMNS, w):
            mask &= (df[c] == v).to_numpy()
        wdf = df[mask]
        lines += [f"## Workload: {workload_label(w)}", ""]
        for metric, rel in made:
            lines += [f"### {metric.title}", "",
                      f"![{metric.title}]({rel}.png)", ""]
            lines += [f"Also: [SVG]({rel}.svg), [PDF]({rel}.pdf)", ""]
        lines += ["### Median throughput (M ops/s)", ""]
        lines += median_table(wdf)
        lines += ["", "### Scalability fits", ""]
        rows = sorted(by_workload.get(tuple(w), []),
                      key=lambda r: r["lock"])
        lines += fit_table(rows)
        lines.append("")

    lines += list(extra)
    text = "\n".join(lines).rstrip("\n") + "\n"
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


__all__ = ["write_report", "CONFIG_COLUMNS"]
