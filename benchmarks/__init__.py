"""The kit's benchmarks: one bench_<topic>.py per claim, and report.py that runs them all (python -m benchmarks)."""
