"""GET /v1/entries?q= on a running node (issue 12): the full-text search of the view, over real HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.support.cli import run
from tests.support.nodes import Federation, entry, wait_for

pytestmark = pytest.mark.slow


def call(url: str, token: str | None = None, *, headers: dict | None = None) -> tuple[int, dict, bytes]:
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=h), timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory):
    fed = Federation(tmp_path_factory.mktemp("search"), ("un", "eu"), pull_interval=2)
    eu = fed["eu"]
    toml = eu.data / "sync.toml"  # many reads by one token: above the default rate limit (not what is tested here)
    toml.write_text(toml.read_text().replace("[api]\n", "[api]\ntoken_requests_per_second = 1000\n", 1))
    eu.put(
        entry(
            "AUT/technical", organisation="Bundesamt für Beispielschutz", position="Lagezentrum", networks=["eu-csirts"]
        ),
        entry(
            "DEU/diplomatic", organisation="Example Foreign Office", position="Cyber ambassador", networks=["osce-cbm"]
        ),
        entry("FRA/technical", organisation="Agence d'exemple", position="Duty officer", networks=["cyclone"]),
    )
    fed.start("eu")
    yield fed
    fed.stop()


@pytest.fixture(scope="module")
def tok(node: Federation) -> str:
    return run("token", "issue", "--data", node["eu"].data, "--poc", "AUT/technical", "--days", "1").output.strip()


def found(node: Federation, tok: str, q: str, **more: str) -> list[str]:
    status, _, body = call(node["eu"].url + "/v1/entries?" + urllib.parse.urlencode({"q": q, **more}), tok)
    assert status == 200, body
    return [e["key"] for e in json.loads(body)["entries"]]


def test_search_by_organisation_position_network_and_state(node: Federation, tok: str) -> None:
    assert found(node, tok, "bundesamt") == ["AUT/technical"]
    assert found(node, tok, "Beispiel") == ["AUT/technical"]  # the start of a word
    assert found(node, tok, "ambassador") == ["DEU/diplomatic"]
    assert found(node, tok, "duty officer") == ["FRA/technical"]
    assert found(node, tok, "cyclone") == ["FRA/technical"]
    assert found(node, tok, "osce-cbm") == ["DEU/diplomatic"]
    assert found(node, tok, "Austria") == ["AUT/technical"]
    assert found(node, tok, "DEU") == ["DEU/diplomatic"]
    assert sorted(found(node, tok, "technical")) == ["AUT/technical", "FRA/technical"]
    assert found(node, tok, "technical", state="FRA") == ["FRA/technical"]  # with the other filters
    assert found(node, tok, "example.org") == [] and found(node, tok, "tech-aut") == []  # addresses: not searched
    status, _, body = call(node["eu"].url + "/v1/entries?q=nowhere", tok)
    assert status == 200 and json.loads(body)["total"] == 0


@pytest.mark.parametrize(
    "q",
    [
        '"',
        '"bundesamt',
        "bundesamt*",
        "*",
        "NEAR",
        "NEAR(a b)",
        "a NEAR b",
        "-",
        "-x",
        ":",
        "organisation:x",
        "a OR b",
        "(",
        "^x",
        "x AND",
        "\\",
        "'",
    ],
)
def test_search_syntax_is_never_an_error(node: Federation, tok: str, q: str) -> None:
    assert isinstance(found(node, tok, q), list)


@pytest.mark.parametrize("q", ["", "   ", "x" * 201, "fra\x00x", "w " * 17])
def test_a_bad_q_is_a_400_naming_the_parameter(node: Federation, tok: str, q: str) -> None:
    status, headers, body = call(node["eu"].url + "/v1/entries?" + urllib.parse.urlencode({"q": q}), tok)
    assert status == 400 and headers["Content-Type"].startswith("application/problem+json")
    problem = json.loads(body)
    assert problem["status"] == 400 and "q" in problem["detail"].split(":")[0].split()


def test_search_needs_a_token_and_the_etag_differs_per_q(node: Federation, tok: str) -> None:
    assert call(node["eu"].url + "/v1/entries?q=bundesamt")[0] == 401
    url = node["eu"].url + "/v1/entries?q="
    status_a, head_a, _ = call(url + "bundesamt", tok)
    status_b, head_b, _ = call(url + "cyclone", tok)
    assert status_a == status_b == 200 and head_a["ETag"] != head_b["ETag"]
    assert call(url + "bundesamt", tok, headers={"If-None-Match": head_a["ETag"]})[0] == 304
    assert call(url + "cyclone", tok, headers={"If-None-Match": head_a["ETag"]})[0] == 200


def test_search_follows_edits_and_deletes(node: Federation, tok: str) -> None:
    eu = node["eu"]
    eu.put(entry("ITA/technical", organisation="Agenzia Prima", networks=["eu-csirts"]))
    wait_for(lambda: found(node, tok, "prima") == ["ITA/technical"], 15, "the new entry to be found")
    eu.put(entry("ITA/technical", organisation="Agenzia Seconda", networks=["eu-csirts"]))
    wait_for(lambda: found(node, tok, "seconda") == ["ITA/technical"], 15, "the edit to be found")
    assert found(node, tok, "prima") == []
    run("entry", "delete", "--data", eu.data, "ITA/technical")
    wait_for(lambda: found(node, tok, "agenzia") == [], 15, "the deleted entry to be gone")


def test_searches_are_audited_with_their_q(node: Federation, tok: str) -> None:
    probe = f"probe{time.time_ns()}"
    assert found(node, tok, probe) == []

    def audited() -> bool:
        rows = json.loads(run("audit", "--data", node["eu"].data, "--json").output)
        return any(r["action"] == "entries.list" and probe in r["target"] for r in rows)

    wait_for(audited, 15, "the search's audit row")


def test_the_poc_page_searches_as_one_types(node: Federation, tok: str) -> None:
    from playwright.sync_api import expect

    from tests.support.browser import browser

    with browser() as b:
        page = b.new_context(locale="fr-FR").new_page()
        page.set_default_timeout(30_000)
        expect.set_options(timeout=30_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(node["eu"].url + "/")
        page.fill("#token", tok)
        page.click("#signin-btn")
        rows = page.locator("#results tbody tr")
        expect(rows).to_have_count(3)
        page.locator("#q").press_sequentially("lagez")  # no button: the search runs after a pause in typing
        expect(rows).to_have_count(1)
        expect(rows).to_contain_text("Bundesamt für Beispielschutz")
        page.fill("#q", "Allemagne")  # a State's name in the page's language
        page.click("#search-btn")
        expect(rows).to_have_count(1)
        expect(rows).to_contain_text("Example Foreign Office")
        page.fill("#q", '"NEAR(-:*')
        page.click("#search-btn")
        expect(rows).to_have_count(1)
        expect(page.locator("#count")).to_contain_text("0")
        assert errors == []
