"""A Tabbycat site that misbehaves (issue 9, items 8, 9, 10): plain http, a server that trickles
or paginates forever, wrong nested types. Against the loopback replay server with a generated
tournament (tests/servers/tabbycat.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tabmail.cli.main import main
from tabmail.importers.tabbycat import TabbycatClient, TabbycatError
from tabmail.services.context import AppContext
from tabmail.services.importing import import_tabbycat
from tests.servers.tabbycat import GeneratedTournament, TabbycatServer, generate_tournament

SLUG = "gen"
T = f"/api/v1/tournaments/{SLUG}"


@pytest.fixture
def generated() -> GeneratedTournament:
    return generate_tournament(teams=8, adjudicators=4, rounds=2, slug=SLUG)


@pytest.fixture
def server(generated: GeneratedTournament) -> Iterator[TabbycatServer]:
    with TabbycatServer(generated.dataset) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _no_token_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TABMAIL_TABBYCAT_TOKEN", raising=False)


# -- item 8: plain http ------------------------------------------------------------------------
def test_plain_http_to_another_machine_is_refused_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "t.sqlite3")
    code = main(["--db", db, "import", "tabbycat", "--url", "http://tab.example.org", "--tournament", "x"])
    err = capsys.readouterr().err
    assert code == 1
    [line] = err.splitlines()
    assert line.startswith("tabmail: error: refusing http://tab.example.org: ")
    assert "token" in line and "in clear" in line and "--insecure" in line
    with pytest.raises(TabbycatError, match="in clear"):
        TabbycatClient("http://10.1.2.3:8000/api", "tok")
    # Knowingly: the client is built (nothing is sent until an import asks).
    TabbycatClient("http://tab.example.org", "tok", insecure=True).close()
    # https and this machine need nothing.
    TabbycatClient("https://tab.example.org", "tok").close()
    for local in ("http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000"):
        TabbycatClient(local, "tok").close()


def test_plain_http_to_this_machine_still_imports(ctx: AppContext, server: TabbycatServer) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    result = import_tabbycat(ctx, server.url, SLUG, token="admin")
    assert result.problems == [] and result.created["team"] == 8
