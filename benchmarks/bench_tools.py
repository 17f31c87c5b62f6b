"""Benchmark of the local code executor against one fresh subprocess per call, side by side.

Per-call latency (p50 / p95, sequential) and throughput (calls/s, as many concurrent
callers as workers) for trivial code and for code that imports numpy and sympy; and
trivial code on workers that preload neither (the tiny preset's ``tool.preload``): a
call forks its worker, and a smaller worker forks faster.
Targets: p50 <= 10 ms for trivial code; >= 5x the baseline's calls/s with sympy.
Run: ``python benchmarks/bench_tools.py [--calls N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from sodctl.config import load_config
from sodctl.tools import LocalExecutor

CODES = {
    "trivial": "print(1 + 1)",
    "numpy+sympy": "import numpy as np, sympy as sp\nprint(int(np.arange(10).sum()), sp.factorint(2**20 - 1))",
}


LEAN = tuple(load_config(preset="tiny").tool.preload)  # read, so the two never drift


def baseline(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=True)


def measure(call, n: int, workers: int) -> tuple[float, float, float]:
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        lat.append(time.perf_counter() - t0)
    lat.sort()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: call(), range(n)))
    rate = n / (time.perf_counter() - t0)
    return statistics.median(lat), lat[int(0.95 * (len(lat) - 1))], rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=60)
    args = ap.parse_args()
    workers = os.cpu_count() or 1
    with LocalExecutor(workers) as ex:
        ex.execute("pass")
        print(f"{workers} workers, {args.calls} calls per row, root={os.geteuid() == 0}")
        print(f"{'code':12s} {'executor':10s} {'p50 ms':>8s} {'p95 ms':>8s} {'calls/s':>8s}")
        for name, code in CODES.items():
            rows = {
                "local": measure(lambda c=code: ex.execute(c, timeout_s=30), args.calls, workers),
                "subprocess": measure(
                    lambda c=code: baseline(c), max(10, args.calls // 3), workers
                ),
            }
            if name == "trivial":
                trivial_rate = rows["local"][2]
            for kind, (p50, p95, rate) in rows.items():
                print(f"{name:12s} {kind:10s} {p50 * 1e3:8.1f} {p95 * 1e3:8.1f} {rate:8.1f}")
            ratio = rows["local"][2] / rows["subprocess"][2]
            print(f"{name:12s} local / subprocess throughput: {ratio:.1f}x")
        with LocalExecutor(workers, preload=LEAN) as lean:
            lean.execute("pass")
            p50, p95, rate = measure(
                lambda: lean.execute(CODES["trivial"], timeout_s=30), args.calls, workers
            )
            print(f"{'trivial':12s} {'lean':10s} {p50 * 1e3:8.1f} {p95 * 1e3:8.1f} {rate:8.1f}")
            print(f"{'trivial':12s} lean / local throughput: {rate / trivial_rate:.2f}x")
        print("targets: trivial p50 <= 10 ms; numpy+sympy throughput >= 5x the subprocess baseline")


if __name__ == "__main__":
    main()
