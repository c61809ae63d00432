"""The report as a list of blocks, written as DIR/report.md (and, by
html.py, as DIR/report.html): provenance first, then per configuration its
figures, a median-throughput table, a latency table and the fits."""

from __future__ import annotations

import json
import math

import numpy as np

from .tables import duration_ns, markdown_table, series_stats, si


# Blocks: ("h", level, text) ("p", text) ("ul", [text]) ("table", header,
# rows, left) ("figure", title, rel) ("note", text). Text may hold `code`.


def _manifest_get(m, *paths):
    """First value found at any of the dotted paths."""
    for p in paths:
        v = m
        for part in p.split("."):
            if isinstance(v, dict) and part in v:
                v = v[part]
            else:
                v = None
                break
        if v not in (None, "", [], {}):
            return v
    return None


def _text(v) -> str:
    if isinstance(v, (list, tuple)):
        return " ".join(str(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _distinct(values, limit=6) -> str:
    vals = sorted(set(str(v) for v in values) - {"", "nan"},
                  key=lambda s: (len(s), s))
    if not vals:
        return "(not recorded)"
    shown = ", ".join(vals[:limit])
    if len(vals) > limit:
        shown += f" (and {len(vals) - limit} more)"
    return shown


def provenance(runs, opts) -> list:
    df, m = runs.df, runs.manifest
    rows = []

    def add(item, value):
        if value not in (None, ""):
            rows.append([item, _text(value)])

    add("machine", _manifest_get(m, "machine.host", "host")
        or _distinct(df["machine"]))
    add("CPU model", _manifest_get(m, "machine.cpu_model", "cpu_model"))
    add("CPUs online", _manifest_get(m, "machine.online_cpus"))
    add("NUMA nodes (real)", _manifest_get(m, "machine.real_numa_nodes"))
    add("memory (GiB)", _manifest_get(m, "machine.memory_gib"))
    add("kernel", _manifest_get(m, "machine.kernel", "kernel"))
    add("cycles per ns", _manifest_get(m, "machine.cycles_per_ns"))
    add("topology", _manifest_get(m, "topology"))
    partial = _manifest_get(m, "partial")
    if isinstance(partial, list) and partial:
        add("PARTIAL", "a partial merge (`locklab merge --partial`): "
            + "; ".join(_text(p) for p in partial))
    add("lab version", _manifest_get(m, "build.lab_version"))
    add("build", " ".join(str(x) for x in (
        _manifest_get(m, "build.build_flags") or "",
        ("Swift " + str(_manifest_get(m, "build.swift_version")))
        if _manifest_get(m, "build.swift_version") else "") if x))
    add("git commit", _distinct(df["git_commit"]))
    add("CSV machine", _distinct(df["machine"]))
    if "virtual_nodes" in df.columns:
        add("virtual nodes", _distinct(
            df["_text_virtual_nodes"] if "_text_virtual_nodes" in df.columns
            else df["virtual_nodes"]))
    add("duration (s)", _distinct(df["_text_duration_s"]))
    if "_text_warmup_s" in df.columns:
        add("warm-up (s)", _distinct(df["_text_warmup_s"]))
    reps = df.groupby(["context", "lock", "threads"]).size()
    add("repeats", _distinct(reps.tolist()))
    add("thread counts", _distinct(df["threads"].tolist(), limit=12))
    add("latency sampling", _manifest_get(m, "latency_sampling"))
    inv = _manifest_get(m, "invocations")
    if isinstance(inv, list):
        for k, i in enumerate(inv):
            if isinstance(i, dict):
                add(f"command {k + 1}", "`" + _text(i.get("command", "")) +
                    "`" + (f" ({i['utc_start']})" if i.get("utc_start")
                           else ""))
    else:
        cmd = _manifest_get(m, "command")
        if cmd:
            add("command", f"`{_text(cmd)}`")
    add("report options", "`" + json.dumps(opts.as_dict(),
                                           sort_keys=True) + "`")
    used = (f"{len(df)} of {runs.total_rows}"
            + (f"; {runs.skipped_status} skipped (status not ok)"
               if runs.skipped_status else "")
            + (f"; {runs.skipped_bad} skipped (no usable thread count)"
               if runs.skipped_bad else ""))
    add("runs used", used)
    return rows


READING = [
    "Each figure is a grid of panels, one per lock family; the baselines "
    "(`pthread-mutex`, `mcs`) are repeated in grey in the other panels. A "
    "lock has the same colour and marker in every figure; a Concurrency Kit "
    "twin (`ck-mcs`) has its Swift lock's colour, dashed with hollow "
    "markers.",
    "Lines are medians over repeats; the shaded band is the min-max range. "
    "The y axis is logarithmic (and says so) when the values span more than "
    "two decades. The grey region holds thread counts above the number of "
    "CPUs (oversubscribed).",
    "An empty latency cell (in runs.csv, summary.csv or the tables here) "
    "means no acquisition was sampled in that run; it is missing, not zero, "
    "and is left out of medians and figures.",
    "Amdahl `X(N) = X1 N / (1 + sigma (N-1))` and the USL `X(N) = lambda N "
    "/ (1 + sigma (N-1) + kappa N (N-1))` are fitted only to thread counts "
    "up to the number of CPUs, and only with at least 3 of them; a fit with "
    "sigma outside [0, 1], a USL peak below 1 thread, kappa = 0 or a "
    "standard error larger than its value is reported as no fit, with the "
    "reason (`fits.csv`).",
    "`summary.csv` has one row per configuration and thread count (median, "
    "min, max, repeats); `fits.csv` one row per configuration.",
]


def throughput_table(cdf) -> tuple:
    threads = sorted(set(int(t) for t in cdf["threads"]))
    over = set(int(t) for t in cdf.loc[cdf["oversubscribed"] == True,  # noqa
                                        "threads"])
    st = series_stats(cdf, "ops_per_sec")
    rows = []
    for lk in sorted(set(cdf["lock"])):
        row = [lk]
        for t in threads:
            key = (int(cdf["context"].iat[0]), lk, t)
            row.append(si(st.loc[key]["median"]) if key in st.index
                       else "-")
        rows.append(row)
    header = ["lock \\ threads"] + [f"{t}*" if t in over else str(t)
                                    for t in threads]
    return header, rows


def latency_table(cdf) -> tuple:
    threads = sorted(set(int(t) for t in cdf["threads"]))
    st = series_stats(cdf, "lat_p99_ns")
    ran = set(zip(cdf["lock"], cdf["threads"]))
    rows = []
    for lk in sorted(set(cdf["lock"])):
        row = [lk]
        for t in threads:
            key = (int(cdf["context"].iat[0]), lk, t)
            if key in st.index:
                row.append(duration_ns(st.loc[key]["median"]))
            else:
                row.append("" if (lk, t) in ran else "-")
        rows.append(row)
    return ["lock \\ threads"] + [str(t) for t in threads], rows


def _pm(v, se, fmtf) -> str:
    if v is None or not math.isfinite(v):
        return ""
    s = fmtf(v)
    if se is not None and math.isfinite(se):
        s += " +/- " + fmtf(se)
    return s


def fit_blocks(rows) -> list:
    if not rows:
        return []
    fitted = [r for r in rows if not (r["amdahl_note"] and r["usl_note"])]
    out = []
    if fitted:
        g = lambda v: f"{v:.3g}"  # noqa: E731
        table = []
        for r in fitted:
            table.append([
                r["lock"], r["fit_threads"].replace(";", ","),
                _pm(r["amdahl_x1_ops_per_sec"],
                    r["amdahl_x1_se_ops_per_sec"], si),
                _pm(r["amdahl_sigma"], r["amdahl_sigma_se"], g),
                si(r["amdahl_ceiling_ops_per_sec"]),
                _pm(r["usl_lambda_ops_per_sec"],
                    r["usl_lambda_se_ops_per_sec"], si),
                _pm(r["usl_sigma"], r["usl_sigma_se"], g),
                _pm(r["usl_kappa"], r["usl_kappa_se"], g),
                "" if not math.isfinite(r["usl_peak_threads"])
                else f"{r['usl_peak_threads']:.1f}",
                "" if not math.isfinite(r["usl_r2"])
                else f"{r['usl_r2']:.3f}",
                "; ".join(n for n in (r["amdahl_note"] and
                                      "Amdahl " + r["amdahl_note"],
                                      r["usl_note"] and
                                      "USL " + r["usl_note"]) if n),
            ])
        header = ["lock", "threads fitted", "Amdahl X1 (ops/s)",
                  "Amdahl sigma", "Amdahl ceiling (ops/s)",
                  "USL lambda (ops/s)", "USL sigma", "USL kappa",
                  "USL peak N*", "USL R^2", "note"]
        out.append(("table", header, table, (0, 1, len(header) - 1)))
    rest = [r for r in rows if r["amdahl_note"] and r["usl_note"]]
    if rest:
        reasons = {}
        for r in rest:
            reason = r["usl_note"] if r["usl_note"] == r["amdahl_note"] \
                else f"Amdahl {r['amdahl_note']}; USL {r['usl_note']}"
            reasons.setdefault(reason, []).append(r["lock"])
        if len(reasons) == 1 and not fitted:
            (reason, _), = reasons.items()
            out.append(("p", f"No lock has a fit ({reason}); no curve is "
                             f"drawn."))
        else:
            out.append(("ul", [f"{', '.join(f'`{x}`' for x in locks)}: "
                               f"{reason}" for reason, locks in
                               sorted(reasons.items())]))
    return out


def build(runs, fit_rows, figure_index, opts, extra=(),
          read_index=()) -> list:
    """The report's blocks; `read_index` the read-mostly figures
    (readmostly.make_read_figures), whose sections follow the
    configurations'; `extra` is Markdown lines appended as they are (the
    coherence probe's section, coherence.py)."""
    df = runs.df
    exps = sorted(set(df["experiment"])) if "experiment" in df.columns \
        else []
    exps = [e for e in exps if e]
    title = "LockLab report" + (f": {', '.join(exps)}" if exps else "")
    blocks = [("h", 1, title), ("h", 2, "Provenance"),
              ("table", ["item", "value"], provenance(runs, opts), (0, 1))]
    if runs.manifest_error:
        blocks.append(("p", f"Note: {runs.manifest_error}."))
    bad = df[df["mutex_ok"] == False]  # noqa: E712 (None-aware)
    if len(bad):
        ids = ", ".join(f"`{v}`" for v in sorted(set(bad["run_id"]))[:10])
        blocks.append(("p", f"**Warning: {len(bad)} run(s) failed the "
                            f"mutual-exclusion check (mutex_ok false): "
                            f"{ids}.**"))
    if runs.no_latency:
        blocks.append(("p", f"{runs.no_latency} run(s) sampled no "
                            f"acquisition: their latency is empty, not 0."))
    blocks += [("h", 2, "How to read this report"), ("ul", list(READING))]

    fits_by_ctx = {}
    for r in fit_rows:
        fits_by_ctx.setdefault(r["context"], []).append(r)
    for ci, made in figure_index:
        ctx = runs.contexts[ci]
        cdf = df[df["context"] == ci]
        blocks.append(("h", 2, f"Configuration: {ctx.label()}"))
        blocks.append(("p", f"Figures: `figures/<figure>__{ctx.slug}"
                            f".{{png,svg,pdf}}`."))
        for metric, rel, reason in made:
            if rel is None:
                blocks.append(("p", f"*{metric.title}: not drawn: "
                                    f"{reason}.*"))
            else:
                blocks.append(("figure", metric.title, rel))
        header, rows = throughput_table(cdf)
        blocks += [("h", 3, "Median throughput (ops/s; k = 10^3, "
                            "M = 10^6; * = oversubscribed)"),
                   ("table", header, rows, (0,))]
        header, rows = latency_table(cdf)
        blocks += [("h", 3, "Median p99 acquire latency (empty: no "
                            "acquisition sampled)"),
                   ("table", header, rows, (0,))]
        blocks.append(("h", 3, "Scalability fits"))
        blocks += fit_blocks(sorted(fits_by_ctx.get(ci, []),
                                    key=lambda r: r["lock"]))
    if read_index:
        from .readmostly import blocks as read_blocks
        blocks += read_blocks(read_index)
    if extra:
        blocks.append(("markdown", list(extra)))
    return blocks


def render_markdown(blocks) -> str:
    lines = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            lines += ["#" * b[1] + " " + b[2], ""]
        elif kind == "p":
            lines += [b[1], ""]
        elif kind == "ul":
            lines += [f"- {t}" for t in b[1]] + [""]
        elif kind == "table":
            lines += markdown_table(b[1], b[2], left=b[3]) + [""]
        elif kind == "figure":
            lines += [f"![{b[1]}]({b[2]}.png)", "",
                      f"{b[1]}: [SVG]({b[2]}.svg), [PDF]({b[2]}.pdf)", ""]
        elif kind == "markdown":
            lines += list(b[1]) + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_report(path, blocks) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(render_markdown(blocks))


__all__ = ["build", "render_markdown", "write_report"]
