"""python -m benchmarks: run every benchmark and write docs/benchmarks.md (see benchmarks/report.py)."""
import sys

from .report import main

sys.exit(main())
