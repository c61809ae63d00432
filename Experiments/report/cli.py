"""Command line: python3 -m report DIR [--figures LIST] [--locks LIST]
[--panels family|none|JSON] [--baseline LOCK] [--read-threads N]
[--defaults]"""

from __future__ import annotations

import argparse
import os
import sys

from .coherence import CoherenceError
from .load import ReportError, load_runs

OUTPUTS = ("report.md", "report.html", "fits.csv", "summary.csv",
           "report.json", "figures/")


def run(directory: str, figures=None, locks=None, panels=None,
        baseline=None, defaults=False, explicit_baseline=False,
        coherence_file=None, read_threads=None) -> None:
    from . import coherence
    from . import options as ropts
    if (not os.path.isfile(os.path.join(directory, "runs.csv"))
            and os.path.isfile(os.path.join(directory, coherence.CSV_NAME))):
        # A `locklab coherence --out DIR` folder: its own figures and report.
        from .load import load_manifest
        coherence.report_only(directory, load_manifest(directory)[0])
        return
    opts = ropts.resolve(directory, figures, locks, panels, baseline,
                         defaults, read_threads)
    runs = load_runs(directory)
    ropts.select_locks(runs, opts)
    if explicit_baseline and opts.baseline not in set(runs.df["lock"]):
        raise ReportError(f"--baseline: {opts.baseline} not in runs.csv")
    from .readmostly import check_threads, make_read_figures
    check_threads(runs, read_threads)
    # Heavy imports only once the input is known to be good.
    from .figures import make_figures
    from .fits import fit_all, fit_lookup, write_fits_csv
    from .html import write_html
    from .markdown import build, write_report
    from .tables import write_summary_csv

    coherence_section, ceilings = coherence.for_runs(
        runs.df, directory, coherence_file)
    fit_rows = fit_all(runs)
    write_fits_csv(fit_rows, runs, os.path.join(directory, "fits.csv"))
    write_summary_csv(runs, os.path.join(directory, "summary.csv"))
    index = make_figures(runs, fit_lookup(fit_rows), directory, opts,
                         ceilings=ceilings)
    read_index = make_read_figures(runs, directory, opts)
    blocks = build(runs, fit_rows, index, opts, extra=coherence_section,
                   read_index=read_index)
    write_report(os.path.join(directory, "report.md"), blocks)
    write_html(os.path.join(directory, "report.html"), blocks, directory)
    ropts.save(directory, opts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m report",
        description="Make figures/, fits.csv, summary.csv, report.md and "
                    "report.html from DIR/runs.csv. Options not given are "
                    "those remembered in DIR/report.json.")
    parser.add_argument("dir", metavar="DIR",
                        help="results directory containing runs.csv")
    parser.add_argument("--figures", metavar="LIST", default=None,
                        help="comma-separated figures to draw (default: "
                             "all): throughput,relative,fairness,"
                             "latency_p99,handover,cpu_per_mop,"
                             "read_ratio,read_update")
    parser.add_argument("--locks", metavar="LIST", default=None,
                        help="comma-separated locks to draw (labels or "
                             "base names; default: all)")
    parser.add_argument("--panels", metavar="HOW", default=None,
                        help="family (one panel per lock family, default), "
                             "none (one panel) or a JSON list of lock lists")
    parser.add_argument("--baseline", metavar="LOCK", default=None,
                        help="the relative figure's denominator (default "
                             "mcs)")
    parser.add_argument("--read-threads", metavar="N", default=None,
                        help="thread count of the read-mostly figures "
                             "(read_ratio, read_update) and tables "
                             "(default: the largest not oversubscribed)")
    parser.add_argument("--coherence", metavar="FILE", default=None,
                        help="coherence.csv for the handover ceiling "
                             "(default: DIR/coherence.csv or "
                             "DIR/../coherence/coherence.csv)")
    parser.add_argument("--defaults", action="store_true",
                        help="ignore the options remembered in "
                             "DIR/report.json")
    args = parser.parse_args(argv)
    from .options import parse_list, parse_panels, parse_threads
    try:
        run(args.dir, parse_list(args.figures), parse_list(args.locks),
            parse_panels(args.panels), args.baseline, args.defaults,
            explicit_baseline=args.baseline is not None,
            coherence_file=args.coherence,
            read_threads=parse_threads(args.read_threads))
    except (ReportError, CoherenceError) as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return 2
    if not os.path.isfile(os.path.join(args.dir, "runs.csv")):
        print(f"report: wrote {os.path.join(args.dir, 'report.md')} and "
              f"figures/")
    else:
        print(f"report: wrote {os.path.join(args.dir, 'report.md')}, "
              f"report.html, fits.csv, summary.csv and figures/")
    return 0
