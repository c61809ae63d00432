"""Reads each CSV given with Python's csv module and with pandas at its default settings, as a
researcher would, and fails (exit 1, one line per problem) unless both see the same table: the
header's columns, every record with as many fields, and no value that pandas reads as missing
(NaN) where the field is not empty. Used by the Swift tests (CSVRoundTripTests)."""

import csv
import sys

import pandas as pd


def check(path: str) -> list[str]:
    problems = []
    with open(path, newline="", encoding="ascii") as f:
        records = list(csv.reader(f, strict=True))
    if not records:
        return [f"{path}: empty"]
    header, rows = records[0], records[1:]
    for i, row in enumerate(rows, start=2):
        if len(row) != len(header):
            problems.append(f"{path}: record {i} has {len(row)} fields, the header {len(header)}")
    try:
        df = pd.read_csv(path)
    except Exception as exc:  # a parser error is exactly what this test looks for
        return problems + [f"{path}: pandas cannot read it: {str(exc).splitlines()[0]}"]
    if list(df.columns) != header:
        problems.append(f"{path}: pandas columns {list(df.columns)} != header {header}")
    if len(df) != len(rows):
        problems.append(f"{path}: pandas reads {len(df)} rows, csv {len(rows)}")
    for i, row in enumerate(rows[: len(df)]):
        for j, field in enumerate(row[: len(df.columns)]):
            value = df.iat[i, j]
            missing = pd.isna(value)
            if field != "" and missing:
                problems.append(f"{path}: row {i + 2} column {header[j]}: '{field}' read as missing")
            elif field == "" and not missing:
                problems.append(f"{path}: row {i + 2} column {header[j]}: empty field read as {value!r}")
            elif isinstance(value, str) and value != field:
                problems.append(f"{path}: row {i + 2} column {header[j]}: '{field}' read as '{value}'")
    return problems


if __name__ == "__main__":
    found = [p for path in sys.argv[1:] for p in check(path)]
    for p in found:
        print(p)
    print(f"{len(sys.argv) - 1} CSV files, {len(found)} problems")
    sys.exit(1 if found else 0)
