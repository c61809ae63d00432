"""Report options: which figures, which locks, how panels group them, the
baseline of the relative figure, the thread count of the read-mostly
figures. A folder remembers the options its report
was drawn with in DIR/report.json, so `locklab report DIR` (or
`python3 -m report DIR`) with no options redraws exactly the committed
report; an option given on the command line replaces the remembered one,
and --defaults forgets them all."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from .load import ReportError

OPTIONS_FILE = "report.json"
DEFAULT_BASELINE = "mcs"


@dataclass
class ReportOptions:
    figures: list = None      # metric stems to draw; None = all
    locks: list = None        # lock labels or base names; None = all
    panels: object = "family"  # "family" | "none" | [[lock...]] | {t: [..]}
    baseline: str = DEFAULT_BASELINE
    read_threads: int = None  # read-mostly figures' threads; None = default

    def as_dict(self) -> dict:
        """The options as saved; `read_threads` only when set, so that the
        report.json of a folder drawn before it existed stays the same."""
        d = asdict(self)
        if d["read_threads"] is None:
            del d["read_threads"]
        return d

    def as_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, sort_keys=True) + "\n"


def parse_list(text):
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    return items or None


def parse_panels(text):
    if text is None:
        return None
    t = text.strip()
    if t in ("family", "none"):
        return t
    try:
        v = json.loads(t)
    except ValueError:
        raise ReportError(f"--panels: expected family, none or a JSON list "
                          f"of lock lists, got {text!r}")
    ok = (isinstance(v, list) and all(
        isinstance(p, list) and p and all(isinstance(x, str) for x in p)
        for p in v)) or (isinstance(v, dict) and all(
            isinstance(p, list) and all(isinstance(x, str) for x in p)
            for p in v.values()))
    if not ok or not v:
        raise ReportError(f"--panels: expected family, none or a JSON list "
                          f"of non-empty lock lists, got {text!r}")
    return v


def parse_threads(text):
    """--read-threads: a thread count >= 1 (None when not given)."""
    if text is None:
        return None
    try:
        n = int(str(text).strip())
    except ValueError:
        n = 0
    if n < 1:
        raise ReportError(f"--read-threads: expected a thread count >= 1, "
                          f"got {text!r}")
    return n


def resolve(directory, figures=None, locks=None, panels=None, baseline=None,
            defaults=False, read_threads=None) -> ReportOptions:
    """Remembered options (unless `defaults`), overridden by those given."""
    from .figures import FIGURE_STEMS
    opts = ReportOptions()
    path = os.path.join(directory, OPTIONS_FILE)
    if not defaults and os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as fh:
                saved = json.load(fh)
            for k in ("figures", "locks", "panels", "baseline",
                      "read_threads"):
                if k in saved:
                    setattr(opts, k, saved[k])
        except (OSError, ValueError) as exc:
            raise ReportError(f"{path}: unreadable ({exc})".splitlines()[0])
    if figures is not None:
        opts.figures = figures
    if locks is not None:
        opts.locks = locks
    if panels is not None:
        opts.panels = panels
    if baseline is not None:
        opts.baseline = baseline
    if read_threads is not None:
        opts.read_threads = read_threads
    if opts.figures is not None:
        bad = [f for f in opts.figures if f not in FIGURE_STEMS]
        if bad:
            raise ReportError(f"unknown figure(s) {', '.join(bad)}; known: "
                              f"{', '.join(FIGURE_STEMS)}")
    return opts


def save(directory, opts: ReportOptions) -> None:
    with open(os.path.join(directory, OPTIONS_FILE), "w", encoding="utf-8",
              newline="\n") as fh:
        fh.write(opts.as_json())


def select_locks(runs, opts: ReportOptions):
    """Keep only the runs of the chosen locks (label or base name)."""
    if not opts.locks:
        return
    df = runs.df
    base = df["lock"].str.split(":", n=1).str[0]
    present = set(df["lock"]) | set(base)
    missing = [lk for lk in opts.locks if lk not in present]
    if missing:
        raise ReportError(f"--locks: {', '.join(missing)} not in runs.csv "
                          f"(it has {', '.join(sorted(set(df['lock'])))})")
    keep = df["lock"].isin(opts.locks) | base.isin(opts.locks)
    runs.df = df[keep].reset_index(drop=True)


__all__ = ["ReportOptions", "resolve", "save", "select_locks", "parse_list",
           "parse_panels", "parse_threads", "OPTIONS_FILE"]
