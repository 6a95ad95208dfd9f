"""Run every benchmark and save the results under benchmarks/results/ (figures go to BENCHMARKS.md).

make bench        # or: .venv/bin/python -m benchmarks.run_all
"""

from __future__ import annotations

import json

from benchmarks import bench_bbox, bench_first_paint, bench_import


def main() -> None:
    results = {
        "import": bench_import.main(),
        "bbox": bench_bbox.main(),
        "first_paint": bench_first_paint.main(),
    }
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "machine"} for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
