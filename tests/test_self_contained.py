"""The project stands alone: its tests, test servers and tools read nothing outside the checkout,
and on CI a test may skip only for a named reason CI cannot meet (tests/ci_skips.py).

`.ci/run` proves the first end to end (the suite runs from a copy with nothing beside it); these
tests say where a regression is, quickly, from any checkout.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO

# Run with the checkout's own parent as the forbidden zone: any file or folder the loaders open or
# list beside the checkout (any ../<folder>) is reported.
LOADERS = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path

    repo = Path(sys.argv[1])
    outside = []

    def hook(event, args):
        if event in ("open", "os.listdir", "os.scandir", "glob.glob", "os.chdir") and args:
            target = args[0]
            if isinstance(target, (str, bytes, os.PathLike)):
                path = os.path.abspath(os.fsdecode(target))
                inside = path == str(repo) or path.startswith(str(repo) + os.sep)
                if path.startswith(str(repo.parent) + os.sep) and not inside:
                    outside.append(path)

    sys.addaudithook(hook)
    sys.path.insert(0, str(repo))
    from tests.datafiles import data_path
    from tests.servers import tabbycat
    from tests.servers.sendgrid import spec
    from tabmail.importers.csv_import import read_csv_folder

    recordings = len(tabbycat.Dataset.from_recordings())
    specs = [spec._api(name) for _prefix, name in spec._FILES]
    bundle = read_csv_folder(data_path("tabbycat-demo-csv", "bp88team"))
    print(json.dumps({"outside": outside, "recordings": recordings, "specs": len(specs),
                      "people": len(bundle.people)}))
    """
)


def test_the_loaders_read_only_inside_the_checkout(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", LOADERS, str(REPO)],
        cwd=tmp_path,  # not the checkout: nothing may depend on the working directory either
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["outside"] == []
    assert result["recordings"] > 400  # tabbycat-api/: 9 global + 421 bp88 recordings
    assert result["specs"] == 7
    assert result["people"] > 200


# A relative path to any folder beside the checkout, an absolute path into the workplace the
# project was written in, or a path built from the checkout's parent.
_OUTSIDE = re.compile(r"\.\./[A-Za-z_]|/work/|parents?\[\d+\]\.parent\b|\b(?:REPO|ROOT|HERE)\.parent\b")


def test_the_pattern_catches_every_way_out_of_the_checkout() -> None:
    sibling = "/".join(["..", "specs", "openapi.yaml"])
    for line in (
        f'SPECS = Path("{sibling}")',
        'DATA = "/work/data/x.csv"',
        "root = Path(__file__).parents[2].parent",
        'here = REPO.parent / "recordings"',
    ):
        assert _OUTSIDE.search(line), line
    assert not _OUTSIDE.search('DATA = REPO / "tests" / "data" / "bp88"')


_SKIP_DIRS = {".git", ".venv", "build", "dist", ".mypy_cache", ".ruff_cache", "bench-results", "data"}


def _sources() -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.startswith("tabmail-")]
        for name in files:
            if name.endswith((".py", ".sh", ".spec", ".toml", ".cfg", ".ini")) or name in ("Makefile", "run"):
                found.append(Path(folder, name))
    return found


def test_no_source_names_a_path_beside_the_checkout() -> None:
    sources = _sources()
    assert REPO / "tests" / "servers" / "tabbycat.py" in sources and REPO / "Makefile" in sources
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in sources
        if path != Path(__file__)
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if _OUTSIDE.search(line)
    ]
    # Comments too: a stranger's clone has nothing beside it to point at. Copy what is needed into
    # tests/data/ (with a line in tests/data/PROVENANCE.md) or say it in words.
    assert offenders == []


# -- skips on CI -------------------------------------------------------------------------------

SKIPPING = textwrap.dedent(
    """
    import pytest

    def test_runs():
        assert True

    def test_needs_a_tool():
        pytest.skip("frobnicate is not installed")

    @pytest.mark.skipif(True, reason="POSIX file modes")
    def test_posix_only():
        pass
    """
)


def _pytest(folder: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (folder / "test_skipping.py").write_text(SKIPPING)
    (folder / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(REPO)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.ci_skips",
            "-p",
            "no:cacheprovider",
            "-rA",
            str(folder),
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_on_ci_a_skip_without_a_named_reason_fails_the_run(tmp_path: Path) -> None:
    done = _pytest(tmp_path, ci="true")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 1 passed, 1 skipped" in done.stdout
    assert (
        "FAILED test_skipping.py::test_needs_a_tool - skipped on CI (frobnicate is not installed)"
        in done.stdout
    )
    assert re.search(r"^SKIPPED \[1\] test_skipping.py:\d+: POSIX file modes$", done.stdout, re.M)


def test_off_ci_skips_stay_skips(tmp_path: Path) -> None:
    done = _pytest(tmp_path, ci=None)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 2 skipped" in done.stdout
