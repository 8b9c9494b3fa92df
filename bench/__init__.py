"""ccbench's proxy benchmark: a zero-latency backend, a load client and the runner (`python bench/run_bench.py`)."""
