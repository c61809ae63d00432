"""LockLab report generator: figures, Amdahl/USL fits and report.md from a
results directory's runs.csv. Run as `python3 -m report DIR` from
Experiments/."""

__all__ = ["main"]


def main(argv=None):
    from .cli import main as _main
    return _main(argv)
