"""The project's own test data (tests/data/, sources and licences in tests/data/PROVENANCE.md).

Importable without pytest (the test servers and benchmarks use it too). A missing file is an
error naming the path, never a reason to skip.
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"


def data_path(*parts: str) -> Path:
    """``tests/data/<parts>``; raises FileNotFoundError when it is not in the checkout."""
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"test data missing from the checkout: {path} (see tests/data/PROVENANCE.md)")
    return path
