"""Command line: python3 -m report DIR"""

from __future__ import annotations

import argparse
import os
import sys

from .load import ReportError, load_runs


def run(directory: str, figures=None) -> None:
    runs = load_runs(directory)
    # Heavy imports only once the input is known to be good.
    from .figures import make_figures
    from .fits import fit_all, fit_lookup, write_fits_csv
    from .markdown import write_report

    fit_rows = fit_all(runs.df)
    write_fits_csv(fit_rows, os.path.join(directory, "fits.csv"))
    index = make_figures(runs.df, fit_lookup(fit_rows), directory, figures)
    write_report(os.path.join(directory, "report.md"), runs, fit_rows, index)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m report",
        description="Make figures/, fits.csv and report.md from "
                    "DIR/runs.csv.")
    parser.add_argument("dir", metavar="DIR",
                        help="results directory containing runs.csv")
    parser.add_argument("--figures", metavar="LIST", default=None,
                        help="comma-separated figures to draw (default: all): "
                             "throughput,fairness,latency_p99,handover,"
                             "cpu_per_mop")
    args = parser.parse_args(argv)
    figures = None
    if args.figures:
        figures = [f.strip() for f in args.figures.split(",") if f.strip()]
    try:
        run(args.dir, figures)
    except ReportError as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return 2
    print(f"report: wrote {os.path.join(args.dir, 'report.md')}, fits.csv "
          f"and figures/")
    return 0
