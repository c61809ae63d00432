#!/usr/bin/env python3
"""Direct invocation: python3 Experiments/report/make_report.py DIR"""

import os
import sys

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    # Make the package importable as `report` whatever the working directory.
    sys.path = [p for p in sys.path
                if os.path.abspath(p or os.curdir) != here]
    sys.path.insert(0, os.path.dirname(here))
    from report.cli import main

    sys.exit(main())
