"""Run benchmarks: `python -m tests.bench [NAME ...]`. Each prints a table and writes it to
bench-results/NAME.txt. NAME is a module tests/bench/bench_NAME.py exposing main() -> str."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

HERE = Path(__file__).parent
OUT = HERE.parents[1] / "bench-results"


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}",
            file=sys.stderr,
        )
        return 2
    OUT.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"tests.bench.bench_{name}")
        table: str = module.main()
        print(table)
        (OUT / f"{name}.txt").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
