"""Command line: python3 -m report DIR"""

from __future__ import annotations

import argparse
import os
import sys

from .coherence import CoherenceError
from .load import ReportError, load_runs


def run(directory: str, figures=None, coherence_file=None) -> None:
    from . import coherence
    if (not os.path.isfile(os.path.join(directory, "runs.csv"))
            and os.path.isfile(os.path.join(directory, coherence.CSV_NAME))):
        # A `locklab coherence --out DIR` folder: its own figures and report.
        from .load import load_manifest
        coherence.report_only(directory, load_manifest(directory)[0])
        return
    runs = load_runs(directory)
    # Heavy imports only once the input is known to be good.
    from .figures import make_figures
    from .fits import fit_all, fit_lookup, write_fits_csv
    from .markdown import write_report

    coherence_section, ceilings = coherence.for_runs(
        runs.df, directory, coherence_file)
    fit_rows = fit_all(runs.df)
    write_fits_csv(fit_rows, os.path.join(directory, "fits.csv"))
    index = make_figures(runs.df, fit_lookup(fit_rows), directory, figures,
                         ceilings=ceilings)
    write_report(os.path.join(directory, "report.md"), runs, fit_rows, index,
                 extra=coherence_section)


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
    parser.add_argument("--coherence", metavar="FILE", default=None,
                        help="coherence.csv for the handover ceiling "
                             "(default: DIR/coherence.csv or "
                             "DIR/../coherence/coherence.csv)")
    args = parser.parse_args(argv)
    figures = None
    if args.figures:
        figures = [f.strip() for f in args.figures.split(",") if f.strip()]
    try:
        run(args.dir, figures, args.coherence)
    except (ReportError, CoherenceError) as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return 2
    what = ("figures/" if not os.path.isfile(os.path.join(args.dir, "runs.csv"))
            else "fits.csv and figures/")
    print(f"report: wrote {os.path.join(args.dir, 'report.md')}, {what}")
    return 0
