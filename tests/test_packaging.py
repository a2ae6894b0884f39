"""Packaging: the desktop metadata files are valid, and the PyInstaller bundle really works.

The tests marked ``package`` build the one-folder bundle with packaging/tabmail.spec into a
temporary folder (about half a minute here) and run the *frozen* executable: the offscreen
``--smoke-test`` on a fresh database and on an existing one, the refusal of a database from a
newer tabmail (which only works if the bundled migrations are found), and the CLI reading and
storing a secret in the real Secret Service. They skip, with the reason, when PyInstaller is not
installed (``make test`` installs it). ``TABMAIL_PACKAGE_DIST=dist`` reuses a bundle that
``make package`` already built instead of building another one.
"""

from __future__ import annotations

import ast
import os
import plistlib
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tabmail import __version__
from tests.conftest import REPO

PACKAGING = REPO / "packaging"
APP_ID = "org.tabmail.Tabmail"
DESKTOP = PACKAGING / "linux" / f"{APP_ID}.desktop"
METAINFO = PACKAGING / "linux" / f"{APP_ID}.metainfo.xml"
EXE_NAME = "tabmail.exe" if sys.platform == "win32" else "tabmail"
BUILD_TIMEOUT = 900


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("timeout", 120)
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


# -- metadata files (no PyInstaller needed) -----------------------------------------------


def test_desktop_file_is_valid() -> None:
    tool = shutil.which("desktop-file-validate")
    if tool is None:
        pytest.skip("desktop-file-validate is not installed (apt-get install desktop-file-utils)")
    done = run([tool, str(DESKTOP)])
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_metainfo_is_valid_appstream() -> None:
    tool = shutil.which("appstreamcli")
    if tool is None:
        pytest.skip("appstreamcli is not installed (apt-get install appstream)")
    done = run([tool, "validate", "--no-net", "--explain", str(METAINFO)])
    assert done.returncode == 0, done.stdout + done.stderr


def test_metainfo_matches_the_package_and_the_desktop_file() -> None:
    root = ET.parse(METAINFO).getroot()
    assert root.findtext("id") == APP_ID
    assert root.findtext("project_license") == "AGPL-3.0-or-later"
    assert root.findtext("launchable") == DESKTOP.name
    assert root.find("content_rating") is not None
    newest = root.find("releases/release")
    assert newest is not None and newest.get("version") == __version__
    shots = [img.text or "" for img in root.iterfind("screenshots/screenshot/image")]
    assert shots and all(re.search(r"/docs/screenshots/[a-z-]+\.png$", url) for url in shots)
    # The names are those tools/screenshots.py writes (make screenshots).
    writer = (REPO / "tools" / "screenshots.py").read_text()
    for url in shots:
        assert f'"{url.rsplit("/", 1)[1]}"' in writer, url
    entry = dict(
        line.split("=", 1)
        for line in DESKTOP.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert entry["Icon"] == APP_ID and entry["Exec"] == "tabmail"


def test_icons_exist_at_the_sizes_the_desktop_wants() -> None:
    icons = REPO / "resources" / "icons"
    assert (icons / "tabmail.svg").is_file()
    for size in (64, 128, 256):
        head = (icons / f"tabmail-{size}.png").read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", head[16:24]) == (size, size)
    ico = (PACKAGING / "windows" / "tabmail.ico").read_bytes()
    assert struct.unpack("<HHH", ico[:6])[:2] == (0, 1) and struct.unpack("<H", ico[4:6])[0] >= 4
    assert (PACKAGING / "macos" / "tabmail.icns").read_bytes()[:4] == b"icns"


def test_windows_version_resource_fills_in_the_package_version() -> None:
    """version_info.txt is PyInstaller's format with placeholders the spec fills (as done here)."""
    numbers = tuple(int(n) for n in re.findall(r"\d+", __version__)[:4])
    numbers += (0,) * (4 - len(numbers))
    text = (PACKAGING / "windows" / "version_info.txt").read_text(encoding="utf-8")
    filled = text.replace("{version_tuple}", repr(numbers)).replace("{version}", __version__)

    def node(kind: str) -> Any:
        return lambda *args, **kwargs: (kind, args, kwargs)

    kinds = ["VSVersionInfo", "FixedFileInfo", "StringFileInfo", "StringTable", "StringStruct"]
    info = eval(
        filled, {k: node(k) for k in [*kinds, "VarFileInfo", "VarStruct"]}
    )  # PyInstaller evals it too
    ffi = info[2]["ffi"][2]
    assert ffi["filevers"] == ffi["prodvers"] == numbers
    strings = dict(s[1] for s in info[2]["kids"][0][1][0][0][1][1])
    assert strings["ProductVersion"] == strings["FileVersion"] == __version__
    assert "AGPL-3.0-or-later" in strings["LegalCopyright"]
    iss = (PACKAGING / "windows" / "tabmail.iss").read_text()
    assert 'GetStringFileInfo(DistDir + "\\" + AppExe, "ProductVersion")' in iss


def test_macos_info_plist_fragment() -> None:
    info = plistlib.loads((PACKAGING / "macos" / "Info.plist").read_bytes())
    assert info["CFBundleIdentifier"] == APP_ID
    assert info["NSHighResolutionCapable"] is True
    plistlib.loads((PACKAGING / "macos" / "entitlements.plist").read_bytes())


def test_the_spec_bundles_every_module_the_migrations_import() -> None:
    """Alembic's scripts are data to PyInstaller; the spec lists their imports as hidden imports."""
    spec = (PACKAGING / "tabmail.spec").read_text()
    tree = ast.parse(spec)
    imports_of = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "imports_of")
    namespace: dict[str, Any] = {"ast": ast}
    exec(compile(ast.Module([imports_of], []), "tabmail.spec", "exec"), namespace)
    found = namespace["imports_of"](sorted((REPO / "tabmail" / "store" / "migrations").rglob("*.py")))
    assert {"alembic.op", "alembic.context", "sqlalchemy", "tabmail.store.models"} <= set(found)


# -- the frozen bundle ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder holding the frozen ``tabmail`` executable: built here, or TABMAIL_PACKAGE_DIST."""
    given = os.environ.get("TABMAIL_PACKAGE_DIST")
    if given:
        folder = Path(given).resolve() / "tabmail"
        if not (folder / EXE_NAME).is_file():
            pytest.fail(f"TABMAIL_PACKAGE_DIST={given} holds no tabmail/{EXE_NAME}; run make package")
        return folder
    pytest.importorskip("PyInstaller", reason="PyInstaller is not installed (pip install -e '.[package]')")
    work = tmp_path_factory.mktemp("package")
    started = time.monotonic()
    done = run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level=WARN",
            "--distpath",
            str(work / "dist"),
            "--workpath",
            str(work / "build"),
            str(PACKAGING / "tabmail.spec"),
        ],
        cwd=REPO,
        timeout=BUILD_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    folder = work / "dist" / "tabmail"
    print(f"\n[package] built {folder} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return folder


def frozen_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TABMAIL_DB", "PYTHON_KEYRING_BACKEND")}
    env |= {
        "QT_QPA_PLATFORM": "offscreen",
        "TABMAIL_LOG_DIR": str(tmp_path / "logs"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # QSettings (window geometry) stay in tmp
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    return env | extra


def frozen(
    bundle: Path, *args: str, env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return run([str(bundle / EXE_NAME), *args], env=env, input=stdin, cwd=bundle.parent, timeout=120)


def revision(db: Path) -> str | None:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    return rows[0][0] if rows else None


def head_revision() -> str:
    from tabmail.store.db import Database

    return Database(":memory:").head_revision()


def tournament_names(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM tournaments ORDER BY id")]


@pytest.mark.package
@pytest.mark.timeout(BUILD_TIMEOUT + 120)
def test_bundle_layout_and_size(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # PyInstaller links some libraries into _internal/ by symlink: count each file once.
    files = [p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink()]
    size = sum(p.stat().st_size for p in files)
    with capsys.disabled():
        print(f"\n[package] {bundle}: {size / 1e6:.1f} MB in {len(files)} files")
    internal = bundle / "_internal"
    for part in ("templates/draw-all.txt", "demo/teams.csv", "icons/tabmail.svg", "icons/tabmail-256.png"):
        assert (internal / "resources" / part).is_file(), part
    migrations = internal / "tabmail" / "store" / "migrations"
    assert (migrations / "env.py").is_file() and (migrations / "script.py.mako").is_file()
    shipped = sorted(p.name for p in (migrations / "versions").glob("*.py"))
    source = sorted(p.name for p in (REPO / "tabmail" / "store" / "migrations" / "versions").glob("*.py"))
    assert shipped == source
    names = {p.name for p in files}
    assert not [n for n in names if re.match(r"libQt6(Quick|Qml|Pdf|Network|VirtualKeyboard)", n)]
    assert not [n for n in names if n.endswith(".qm")] and "libgtk-3.so.0" not in names
    if sys.platform.startswith("linux"):
        share = bundle / "share"
        assert (share / "applications" / DESKTOP.name).is_file()
        assert (share / "metainfo" / METAINFO.name).is_file()
        assert (share / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg").is_file()
    assert size < 250e6  # lean: measured 175 MB on Linux x86-64 (packaging/README.md)


@pytest.mark.package
@pytest.mark.timeout(BUILD_TIMEOUT + 120)
def test_frozen_smoke_test_on_a_fresh_database_loads_the_bundled_demo(bundle: Path, tmp_path: Path) -> None:
    db = tmp_path / "fresh.sqlite3"
    env = frozen_env(tmp_path)

    done = frozen(bundle, "--db", str(db), "--smoke-test", env=env)

    assert done.returncode == 0, done.stderr
    # The demo tournament comes from the bundle's resources/demo: one tournament means found.
    assert done.stdout.strip().splitlines()[-1] == "smoke test ok: 1 tournaments"
    assert revision(db) == head_revision()  # the bundled migrations ran
    assert "Traceback" not in done.stderr
    log_file = tmp_path / "logs" / "tabmail.log"
    assert log_file.is_file()
    version = frozen(bundle, "--version", env=env)
    assert version.stdout.strip() == f"tabmail {__version__}"


@pytest.mark.package
@pytest.mark.timeout(BUILD_TIMEOUT + 120)
def test_frozen_app_opens_an_existing_database_and_runs_its_migrations(bundle: Path, tmp_path: Path) -> None:
    """A database written by the source tree, left at an older schema where one exists.

    The source tree creates it, loads the demo tournament and, when the migration chain has a
    revision before head, downgrades it one step (additive migrations keep the rows): the frozen
    app must then upgrade it, keeping a backup. With only 0001 today the database stays at head,
    and the frozen app must still read its revision against the *bundled* scripts, keep the
    data and open it; the refusal test below shows those scripts are really consulted.
    """
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from tabmail.services.context import AppContext
    from tabmail.services.demo import load_demo_if_empty
    from tabmail.store.db import MIGRATIONS_DIR

    db = tmp_path / "existing.sqlite3"
    ctx = AppContext.open(db)
    try:
        load_demo_if_empty(ctx)
    finally:
        ctx.close()
    names = tournament_names(db)
    assert len(names) == 1
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", f"sqlite:///{db}")
    head = ScriptDirectory.from_config(cfg).get_revision("head")
    older = head.down_revision if isinstance(head.down_revision, str) else None
    if older:
        command.downgrade(cfg, older)
    assert revision(db) == (older or head.revision)

    done = frozen(bundle, "--db", str(db), "--smoke-test", env=frozen_env(tmp_path))

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "smoke test ok: 1 tournaments"
    assert revision(db) == head.revision
    assert tournament_names(db) == names
    backups = list(tmp_path.glob("existing.sqlite3.*.bak"))
    assert len(backups) == (1 if older else 0)
    listed = frozen(bundle, "--db", str(db), "tournaments", "--json", env=frozen_env(tmp_path))
    assert listed.returncode == 0, listed.stderr
    assert names[0] in listed.stdout


@pytest.mark.package
@pytest.mark.timeout(BUILD_TIMEOUT + 120)
def test_frozen_app_refuses_a_database_from_a_newer_tabmail(bundle: Path, tmp_path: Path) -> None:
    """Only possible if the frozen app found and parsed its bundled versions/*.py."""
    db = tmp_path / "newer.sqlite3"
    assert (
        frozen(bundle, "--db", str(db), "--no-demo", "--smoke-test", env=frozen_env(tmp_path)).returncode == 0
    )
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffff_from_the_future'")

    done = frozen(bundle, "--db", str(db), "--smoke-test", env=frozen_env(tmp_path))

    assert done.returncode == 1
    assert "written by a newer tabmail" in done.stderr and head_revision() in done.stderr
    assert revision(db) == "ffff_from_the_future"


@pytest.fixture
def real_keyring() -> Iterator[Any]:
    if os.environ.get("TABMAIL_REAL_KEYRING") != "1" or os.environ.get("TABMAIL_IN_KEYRING_SESSION") != "1":
        pytest.skip("needs the throwaway Secret Service of tools/with-keyring.sh (make unit runs inside it)")
    from keyring.backends import SecretService

    from tabmail.store.secrets import SecretStore

    backend = SecretService.Keyring()  # type: ignore[no-untyped-call]
    store = SecretStore(backend, environ={})
    assert store.available, store.unavailable_reason
    yield store
    for name in ("thread-key", "smtp-password"):
        store.delete(name)


@pytest.mark.package
@pytest.mark.keyring_real
@pytest.mark.timeout(BUILD_TIMEOUT + 120)
def test_frozen_cli_reads_and_stores_secrets_in_the_real_keyring(
    bundle: Path, tmp_path: Path, real_keyring: Any
) -> None:
    """The bundled keyring backends (SecretService over jeepney/secretstorage) really work."""
    env = frozen_env(tmp_path)
    del env["PYTHON_KEYRING_BACKEND"]  # the real one, as a director's machine has it
    written = f"thread-{uuid.uuid4().hex}"
    real_keyring.set("thread-key", written)

    status = frozen(bundle, "secret", "status", env=env)

    assert status.returncode == 0, status.stderr
    assert "thread-key         keyring" in status.stdout  # read through the keyring, not the env
    assert "No OS keyring" not in status.stdout
    assert written not in status.stdout + status.stderr

    typed = f"smtp-{uuid.uuid4().hex}"
    stored = frozen(bundle, "secret", "set", "smtp-password", env=env, stdin=typed + "\n")
    assert (stored.returncode, stored.stdout) == (0, "stored smtp-password in the OS keyring\n"), (
        stored.stderr
    )
    assert real_keyring.get("smtp-password") == typed
    logged = (tmp_path / "logs" / "tabmail.log").read_text()
    assert written not in logged and typed not in logged
