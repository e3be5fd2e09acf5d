"""Communication checks by mail across a three-node federation (issue 15, ADR 26, ADR 27).

Real parts: three `pocsync run` processes on loopback, a real SMTP server (aiosmtpd, STARTTLS with a test CA,
AUTH), Debian's Chromium driven by Playwright, SQLite.  Every node and the CLI read one clock offset file
(pocsync.clock), which the test moves two days forward at the end so that the short freshness policy
(confirm every day) makes entries overdue.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import pytest

from pocsync.core.checks import channel_id
from pocsync.directory import freshness
from tests.support.browser import browser, screenshot
from tests.support.cli import run
from tests.support.nodes import Federation, entry, wait_for
from tests.support.smtp import SmtpServer

LINK_RE = re.compile(r"(http://127\.0\.0\.1:[0-9]+/check/ack\?token=[A-Za-z0-9_-]+)")
DAY_MS = 86_400_000


def _to(m: EmailMessage) -> str:
    return str(m["To"]).lower()


def _mails(srv: SmtpServer, to: str) -> list[EmailMessage]:
    with srv.lock:
        return [m for m in srv.messages if to.lower() in _to(m)]


def _one_mail(srv: SmtpServer, to: str, timeout: float = 90) -> EmailMessage:
    wait_for(lambda: _mails(srv, to), timeout, f"a mail to {to}")
    return _mails(srv, to)[-1]


def _latest(node, key: str, channel: str) -> dict | None:
    with node.store() as s:
        rows = s.check_records("check", f"{key}/{channel}")
    return {"origin": rows[0]["origin"], **rows[0]["op"]} if rows else None


def _request(
    url: str,
    *,
    token: str | None = None,
    data: bytes | None = None,
    method: str | None = None,
    ctype: str = "application/json",
) -> tuple[int, bytes, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if data is not None:
        headers["Content-Type"] = ctype
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


@pytest.mark.slow
def test_mail_campaigns_across_three_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from playwright.sync_api import expect
    from prometheus_client.parser import text_string_to_metric_families

    offset = tmp_path / "clock-offset-ms"
    offset.write_text("0")
    monkeypatch.setenv("POCSYNC_CLOCK_OFFSET_FILE", str(offset))
    with SmtpServer(tmp_path, reject={"gone-fra@example.org"}) as srv:
        fed = Federation(tmp_path, names=("un", "eu", "osce"))
        policy = tmp_path / "policy.json"
        policy.write_text(json.dumps({"freshness": {"confirm_days": 1, "verify_days": 3650}}))
        m2 = tmp_path / "m2.json"
        m2.write_bytes(fed.manifest.read_bytes())
        run("manifest", "set-features", m2, "--features", "comm-checks,freshness", "--policy", policy)
        fed.sign(m2)
        for n in fed.nodes:
            run("manifest", "install", "--data", fed[n].data, m2)
            toml = fed[n].data / "sync.toml"
            text = toml.read_text().replace("[node]\n", f'[node]\ncontact_email = "secretariat-{n}@example.org"\n')
            toml.write_text(text + srv.smtp_toml(sender=f"directory-{n}@example.org"))
        fed["eu"].put(
            entry("DEU/technical", emails=["cert-deu@example.org"], languages=["de", "en"]),
            entry("FRA/technical", emails=["gone-fra@example.org"], languages=["fr"]),
            entry("ITA/technical", emails=["soc-ita@example.org"], languages=["es"]),
        )
        fed["osce"].put(entry("UKR/technical", emails=["cert-ukr@example.org"], languages=["en"]))
        deu = channel_id("email", "cert-deu@example.org")
        fra = channel_id("email", "gone-fra@example.org")
        ita = channel_id("email", "soc-ita@example.org")
        ukr = channel_id("email", "cert-ukr@example.org")
        try:
            fed.start()
            fed.wait_converged()

            # --- 1. eu checks DEU and FRA: one message each; FRA's address is refused by the relay ------------
            out = json.loads(
                run(
                    "check", "start", "--data", fed["eu"].data, "--states", "DEU,FRA", "--deadline", "1h", "--json"
                ).output
            )
            assert out["channels"] == 2
            msg = _one_mail(srv, "cert-deu@example.org")
            assert "DEU" in msg["Subject"] and "technical" in msg["Subject"]
            body = msg.get_content()
            assert "FRA" not in body and "gone-fra" not in body and "UKR" not in body  # no other entry's data
            assert "PoC page" in body and fed["eu"].url + "/" in body
            [link] = LINK_RE.findall(body)
            token = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0]
            assert len(token) >= 22  # ≥ 128 bits
            wait_for(
                lambda: (_latest(fed["eu"], "FRA/technical", fra) or {}).get("result") == "bounced",
                90,
                "eu to sign FRA's bounce",
            )
            bounced = _latest(fed["eu"], "FRA/technical", fra)
            assert bounced["smtp_code"] == 550 and bounced["origin"] == "eu"
            assert set(bounced) == {"origin", "op", "key", "channel", "result", "campaign", "smtp_code"}
            assert not _mails(srv, "gone-fra@example.org")
            wait_for(
                lambda: (_latest(fed["eu"], "DEU/technical", deu) or {}).get("result") == "sent",
                90,
                "eu to sign DEU's sent",
            )

            # --- 2. the link, in Chromium: the page records nothing; the button does; a second use is refused --
            console: list[str] = []
            with browser() as b:
                page = b.new_page()
                page.set_default_timeout(90_000)
                expect.set_options(timeout=90_000)
                page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
                resp = page.goto(link)
                assert resp is not None and resp.headers["referrer-policy"] == "no-referrer"
                expect(page.locator("#acknowledge")).to_be_visible()
                time.sleep(1.5)
                assert _latest(fed["eu"], "DEU/technical", deu)["result"] == "sent"  # a GET records nothing
                page.click("#acknowledge")
                expect(page.locator("h1")).to_have_text("Thank you")
                screenshot(page, "check-acknowledged")
                assert console == [], console
                page.goto(link)
                page.click("#acknowledge")
                expect(page.locator("h1")).to_have_text("This link is not valid")  # answered 400
            ack = _latest(fed["eu"], "DEU/technical", deu)
            assert (
                ack["result"] == "acknowledged" and ack["origin"] == "eu" and isinstance(ack["response_seconds"], int)
            )
            # a guessed token and a replay get the same answer
            guessed = _request(
                fed["eu"].url + "/check/ack", data=b"token=" + b"A" * 43, ctype="application/x-www-form-urlencoded"
            )
            replay = _request(
                fed["eu"].url + "/check/ack", data=f"token={token}".encode(), ctype="application/x-www-form-urlencoded"
            )
            assert guessed[0] == replay[0] == 400 and guessed[1] == replay[1]
            digest = fed.wait_converged()
            verified = set()
            for n in fed.nodes:
                with fed[n].store() as s:
                    verified.add(
                        freshness.by_key(s, now_ms=None, key="DEU/technical")["DEU/technical"]["last_verified"]
                    )
                    assert s.digest() == digest
            assert len(verified) == 1 and None not in verified
            for n in fed.nodes:  # the bounce reached every node too
                wait_for(
                    lambda n=n: (_latest(fed[n], "FRA/technical", fra) or {}).get("smtp_code") == 550,
                    90,
                    f"{n} to hold FRA's bounce",
                )

            # --- 3. a short deadline: ITA does not answer ------------------------------------------------
            run("check", "start", "--data", fed["eu"].data, "--states", "ITA", "--deadline", "5s")
            _one_mail(srv, "soc-ita@example.org")
            assert "técnico" in _mails(srv, "soc-ita@example.org")[0]["Subject"]  # the entry's first language
            for n in fed.nodes:
                wait_for(
                    lambda n=n: (_latest(fed[n], "ITA/technical", ita) or {}).get("result") == "no_response",
                    90,
                    f"{n} to show ITA's no response",
                )

            # --- 4. un's campaign skips what eu checked, mails UKR; UKR's PoC answers from the PoC page -------
            run("check", "start", "--data", fed["un"].data, "--deadline", "1h")
            _one_mail(srv, "cert-ukr@example.org")
            wait_for(lambda: (_latest(fed["un"], "UKR/technical", ukr) or {}).get("result") == "sent", 90, "un's sent")
            st = json.loads(run("check", "status", "--data", fed["un"].data, "--json").output)["campaigns"][0]
            assert st["skipped_by"] == {"eu": 3} and st["counts"]["sent"] == 1
            assert len(_mails(srv, "cert-deu@example.org")) == 1  # not mailed again by un
            sent = run("token", "issue", "--data", fed["un"].data, "--poc", "UKR/technical", "--send").output
            assert "eyJ" not in sent and "email 1" in sent
            wait_for(
                lambda: any("token" in m["Subject"].lower() for m in _mails(srv, "cert-ukr@example.org")),
                90,
                "the token mail",
            )
            tmail = next(m for m in _mails(srv, "cert-ukr@example.org") if "token" in m["Subject"].lower())
            poc_token = re.search(r"^(eyJ[A-Za-z0-9_.-]+)\r?$", tmail.get_content(), re.M).group(1)
            assert "/v1/token/renew" in tmail.get_content()
            with browser() as b:
                page = b.new_page()
                page.set_default_timeout(90_000)
                page.goto(fed["un"].url + "/")
                page.fill("#token", poc_token)
                page.click("#signin-btn")
                page.wait_for_selector("#directory:not(.hidden)")
                page.goto(fed["un"].url + "/#/entry/UKR%2Ftechnical")
                page.wait_for_selector("#checks-waiting button")
                page.click("#checks-waiting button")
                expect(page.locator("#checks-waiting")).to_contain_text("Acknowledged")
                # and the PoC reports that another entry is wrong: it reaches that entry's origin (eu)
                page.goto(fed["un"].url + "/#/entry/DEU%2Ftechnical")
                page.click("summary")
                page.fill("#report-text", "The duty phone number changed last month (fictional report).")
                page.click("#report-send")
                expect(page.locator(".checks-report")).to_contain_text("Sent")
            for n in fed.nodes:
                wait_for(
                    lambda n=n: (_latest(fed[n], "UKR/technical", ukr) or {}).get("result") == "acknowledged",
                    90,
                    f"{n} to show UKR's acknowledgement",
                )
            status, body_, _ = _request(
                fed["un"].url + "/v1/checks/acknowledge", token=poc_token, data=json.dumps({"channel": deu}).encode()
            )
            assert status == 409  # a PoC acknowledges its own entry's channels only
            report = _one_mail(srv, "secretariat-eu@example.org")
            assert "DEU/technical" in report["Subject"] and "fictional report" in report.get_content()

            # --- 5. operators: the dashboard and /metrics, with no contact data ------------------------
            op = run("token", "issue", "--data", fed["eu"].data, "--operator", "duty", "--days", "1").output.strip()
            with browser() as b:
                page = b.new_page()
                page.set_default_timeout(90_000)
                page.goto(fed["eu"].url + "/dashboard")
                page.fill("#token", op)
                page.click("#signin-btn")
                page.wait_for_selector("#checks section.campaign")
                expect(page.locator("#checks")).to_contain_text("Reports received")
                expect(page.locator("table.federation-campaigns")).to_contain_text(st["campaign"])  # un's, seen at eu
                text = page.inner_text("#checks")
                screenshot(page, "dashboard-checks")
            low = text.lower()  # table headers are upper-cased by the style sheet
            assert "acknowledged" in low and "bounced" in low and "no response" in low and "550 × 1" in text
            # campaign 1: awaiting 0, acknowledged 1, no response 0, bounced 1; campaign 2: no response 1
            assert "All\t0\t1\t0\t1\t0\t0\t0" in text and "All\t0\t0\t1\t0\t0\t0\t0" in text, text
            assert "@" not in text and "example.org" not in text and deu[6:] not in text
            rows = {
                r["campaign"]: r
                for r in json.loads(run("check", "status", "--data", fed["eu"].data, "--json").output)["campaigns"]
            }
            first = rows[out["campaign"]]
            assert (first["counts"]["acknowledged"], first["counts"]["bounced"]) == (1, 1)
            status, raw, _ = _request(fed["eu"].url + "/metrics", token=op)
            assert status == 200 and b"example.org" not in raw
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for f in text_string_to_metric_families(raw.decode())
                for s in f.samples
            }
            assert samples[("pocsync_check_channels", (("campaign", out["campaign"]), ("status", "acknowledged")))] == 1
            assert samples[("pocsync_check_channels", (("campaign", out["campaign"]), ("status", "bounced")))] == 1
            assert samples[("pocsync_check_reports", (("origin", "eu"),))] == 1
            log = fed["eu"].log.read_text()
            assert token not in log and "check/ack" in log  # the access log has the request, not the token

            # --- 6. two days later: every entry is overdue for confirmation; the secretariat is reminded ----
            offset.write_text(str(2 * DAY_MS))
            reminder = _one_mail(srv, "secretariat-eu@example.org", timeout=60)
            wait_for(
                lambda: any("overdue" in m["Subject"] for m in _mails(srv, "secretariat-eu@example.org")),
                60,
                "the overdue reminder",
            )
            reminder = next(m for m in _mails(srv, "secretariat-eu@example.org") if "overdue" in m["Subject"])
            assert "ITA/technical" in reminder.get_content()
            overdue = json.loads(run("entry", "overdue", "--data", fed["eu"].data, "--json").output)
            keys = {r["key"] for r in (overdue["overdue"] if isinstance(overdue, dict) else overdue)}
            assert {"DEU/technical", "FRA/technical", "ITA/technical"} <= keys
            # the CLI signs once a peer's head vector, signed after the jump, confirmed eu's head (ADR 19)
            wait_for(
                lambda: (
                    run(
                        "entry",
                        "confirm",
                        "--data",
                        fed["eu"].data,
                        "DEU/technical",
                        "FRA/technical",
                        "ITA/technical",
                        ok=False,
                    ).exit_code
                    == 0
                ),
                90,
                "entry confirm to sign",
            )
            for n in fed.nodes:

                def cleared(n: str = n) -> bool:
                    o = json.loads(run("entry", "overdue", "--data", fed[n].data, "--all", "--json").output)
                    ks = {r["key"] for r in (o["overdue"] if isinstance(o, dict) else o)}
                    return not ks & {"DEU/technical", "FRA/technical", "ITA/technical"}

                wait_for(cleared, 90, f"{n} to clear eu's confirmed entries")
            with sqlite3.connect(fed["eu"].data / "store.sqlite") as c:  # tokens are stored hashed only
                assert not c.execute("SELECT count(*) FROM check_targets WHERE token_hash = ?", (token,)).fetchone()[0]
        except BaseException:
            print(fed.logs())
            raise
        finally:
            fed.stop()


@pytest.mark.slow
def test_scheduled_campaign_waits_for_the_feature_and_the_ack_endpoint_is_rate_limited(tmp_path: Path) -> None:
    """[checks] every_days starts a campaign by itself (once per period, across restarts); while the manifest
    does not enable comm-checks nothing is mailed (a mail whose result cannot be signed would go again); the
    acknowledgement POST answers 429 beyond its rate; neither the SMTP password nor a token reaches the log."""
    with SmtpServer(tmp_path) as srv:
        fed = Federation(tmp_path, names=("un",))
        node = fed["un"]
        toml = node.data / "sync.toml"
        toml.write_text(
            toml.read_text()
            + '\n[checks]\nevery_days = 1\ndeadline_hours = 1\nkinds = ["technical"]\n'
            + srv.smtp_toml()
        )
        node.put(entry("DEU/technical", emails=["cert-deu@example.org"]), entry("DEU/diplomatic"))
        m2, m3 = tmp_path / "m2.json", tmp_path / "m3.json"
        m2.write_bytes(fed.manifest.read_bytes())
        run("manifest", "set-features", m2, "--features", "")  # a new manifest lists every feature: none here
        fed.sign(m2)
        run("manifest", "install", "--data", node.data, m2)
        op = run("token", "issue", "--data", node.data, "--operator", "duty", "--days", "1").output.strip()

        def view() -> dict:
            status, raw, _ = _request(node.url + "/v1/checks", token=op)
            assert status == 200, raw
            return json.loads(raw)

        try:
            node.start()
            wait_for(lambda: view()["campaigns"], 90, "the scheduled campaign")
            wait_for(lambda: view()["mail"]["campaigns_held"], 90, "the campaign to be held")
            assert "comm-checks" in view()["mail"]["campaigns_held"]
            time.sleep(2)
            assert srv.messages == [] and view()["campaigns"][0]["counts"]["pending"] == 1
            m3.write_bytes(m2.read_bytes())
            run("manifest", "set-features", m3, "--features", "comm-checks")
            fed.sign(m3)
            run("manifest", "install", "--data", node.data, m3)
            [msg] = srv.wait_for(1, timeout=60)
            assert _to(msg) == "cert-deu@example.org" and "technical" in msg["Subject"]  # kinds: technical only
            c = view()["campaigns"][0]
            assert c["started_by"] == "schedule" and c["channels"] == 1
            wait_for(lambda: view()["campaigns"][0]["counts"]["sent"] == 1, 90, "the sent result")
            token = LINK_RE.findall(msg.get_content())[0].split("token=")[1]
            answers = [
                _request(
                    node.url + "/check/ack", data=f"token=x{i:042d}".encode(), ctype="application/x-www-form-urlencoded"
                )[0]
                for i in range(12)
            ]
            assert 429 in answers and set(answers) <= {400, 429}
            node.stop()
            node.start()  # the period has not passed: no second campaign
            time.sleep(3)
            assert len(view()["campaigns"]) == 1 and len(srv.messages) == 1
            log = node.log.read_text()
            assert srv.password not in log and token not in log and "cert-deu@example.org" not in log
        except BaseException:
            print(fed.logs())
            raise
        finally:
            fed.stop()
