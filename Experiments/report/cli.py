"""Command line: python3 -m report DIR"""

from __future__ import annotations

import argparse
import os
import sys

from .load import ReportError, load_runs


def run(directory: str) -> None:
    runs = load_runs(directory)
    # Heavy imports only once the input is known to be good.
    from .figures import make_figures
    from .fits import fit_all, fit_lookup, write_fits_csv
    from .markdown import write_report

    fit_rows = fit_all(runs.df)
    write_fits_csv(fit_rows, os.path.join(directory, "fits.csv"))
    index = make_figures(runs.df, fit_lookup(fit_rows), directory)
    write_report(os.path.join(directory, "report.md"), runs, fit_rows, index)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m report",
        description="Make figures/, fits.csv and report.md from "
                    "DIR/runs.csv.")
    parser.add_argument("dir", metavar="DIR",
                        help="results directory containing runs.csv")
    args = parser.parse_args(argv)
    try:
        run(args.dir)
    except ReportError as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return 2
    print(f"report: wrote {os.path.join(args.dir, 'report.md')}, fits.csv "
          f"and figures/")
    return 0
