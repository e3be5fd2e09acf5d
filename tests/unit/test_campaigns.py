"""Check campaigns on a real store (issue 15, ADR 26): planning, coordination, tokens, deadlines, messages."""

from __future__ import annotations

import email
import json
from email import policy
from pathlib import Path

import pytest

from pocsync.directory import campaigns
from pocsync.errors import ConfigError, EntryError
from pocsync.store import Store
from tests.support.fed import T0, Fed, put

HOUR = 3_600_000


def make(tmp_path: Path, node: str = "eu") -> tuple[Fed, Store]:
    fed = Fed()
    s = Store.create(tmp_path / f"{node}.sqlite", node_id=node)
    s.install_manifest(fed.manifest, now_ms_=T0)
    s.edit(
        [
            put("DEU/technical", emails=["cert-deu@example.org", "CERT-DEU@example.org ", "soc@example.org"]),
            put("FRA/diplomatic", languages=["fr"]),
            put("ITA/technical", languages=["es-ES"]),
        ],
        key=fed.key(node, "k1"),
        author="staff",
        now_ms_=T0,
    )
    return fed, s


class Signed(list):
    def __call__(self, ops: list[dict]) -> None:
        self.append(ops)


def test_plan_covers_scope_selection_and_distinct_channels(tmp_path: Path) -> None:
    _, s = make(tmp_path)
    every = campaigns.plan_targets(s, campaigns.Selector(), max_per_entry=5)
    assert [(k, lab) for k, _, lab in every] == [
        ("DEU/technical", "email 1"),
        ("DEU/technical", "email 3"),
        ("FRA/diplomatic", "email 1"),
        ("ITA/technical", "email 1"),
    ]
    assert every[0][1] == campaigns.channel_id("email", "cert-deu@example.org")
    assert len(campaigns.plan_targets(s, campaigns.Selector(), max_per_entry=1)) == 3
    only = campaigns.plan_targets(s, campaigns.selector("fra", "", ""), max_per_entry=5)
    assert [k for k, _, _ in only] == ["FRA/diplomatic"]
    assert [k for k, _, _ in campaigns.plan_targets(s, campaigns.selector("", "", "diplomatic"), max_per_entry=5)] == [
        "FRA/diplomatic"
    ]
    with pytest.raises(EntryError):
        campaigns.selector("XY", "", "")
    with pytest.raises(EntryError):
        campaigns.selector("", "", "consular")


def test_send_sign_acknowledge_once_and_deadline(tmp_path: Path) -> None:
    _, s = make(tmp_path)
    out = campaigns.create_campaign(
        s, node="eu", sel=campaigns.Selector(), deadline_s=3600, started_by="t", now_ms=T0, max_per_entry=5
    )
    assert out["channels"] == 4 and campaigns.CAMPAIGN_RE.match(out["campaign"])
    jobs = campaigns.prepare_batch(s, now_ms=T0, limit=10, window_ms=30 * 24 * HOUR)
    assert len(jobs) == 4 and {j.language for j in jobs} == {"en", "fr", "es"}
    stored = [r[0] for r in s.conn.execute("SELECT token_hash FROM check_targets")]
    assert all(j.token not in stored and campaigns.token_hash(j.token) in stored for j in jobs)
    signed = Signed()
    outcomes = [
        campaigns.SendOutcome(jobs[0], "sent"),
        campaigns.SendOutcome(jobs[1], "bounced", smtp_code=550),
        campaigns.SendOutcome(jobs[2], "sent"),
        campaigns.SendOutcome(jobs[3], "retry", error="smtp_unavailable"),
    ]
    assert campaigns.commit_batch(s, outcomes, now_ms=T0 + 1000, sign=signed) == 3
    assert [(o["result"], o.get("smtp_code"), o.get("deadline_ms")) for o in signed[0]] == [
        ("sent", None, T0 + HOUR),
        ("bounced", 550, None),
        ("sent", None, T0 + HOUR),
    ]
    assert all(set(o) <= {"op", "key", "channel", "result", "campaign", "deadline_ms", "smtp_code"} for o in signed[0])
    # the link: used once; a replayed, a guessed and an expired token are refused alike
    ack = campaigns.acknowledge_token(s, jobs[0].token, now_ms=T0 + 61_000, sign=signed)
    assert ack["response_seconds"] == 60 and signed[-1][0]["result"] == "acknowledged"
    refusals = []
    for tok, t in ((jobs[0].token, T0 + 62_000), ("x" * 43, T0 + 62_000), (jobs[2].token, T0 + HOUR + 1)):
        with pytest.raises(campaigns.AckRefused) as exc:
            campaigns.acknowledge_token(s, tok, now_ms=t, sign=signed)
        refusals.append(exc.value.message)
    assert len(set(refusals)) == 1
    # the deadline passes: no_response for the one left waiting, and the retried one goes out again
    assert campaigns.sweep_deadlines(s, now_ms=T0 + HOUR + 1, sign=signed) == 1
    assert signed[-1][0]["result"] == "no_response" and signed[-1][0]["key"] == jobs[2].key
    again = campaigns.prepare_batch(s, now_ms=T0 + HOUR + 2, limit=10, window_ms=30 * 24 * HOUR)
    assert [(j.key, j.label) for j in again] == [(jobs[3].key, jobs[3].label)]
    st = campaigns.campaign_status(s)[0]
    assert st["counts"]["acknowledged"] == 1 and st["counts"]["bounced"] == 1 and st["counts"]["no_response"] == 1
    assert st["response_seconds"] == {"median": 60.0, "p90": 60.0, "n": 1}
    assert st["bounce_codes"] == {"550": 1} and st["by_state"]["DEU"]["acknowledged"] == 1
    assert "example.org" not in json.dumps(st)


def test_ack_while_the_batch_is_mailing_is_not_overwritten_by_sent(tmp_path: Path) -> None:
    _, s = make(tmp_path)
    campaigns.create_campaign(s, node="eu", sel=campaigns.selector("ITA"), deadline_s=3600, started_by="t", now_ms=T0)
    [job] = campaigns.prepare_batch(s, now_ms=T0, limit=10, window_ms=HOUR)
    signed = Signed()
    campaigns.acknowledge_token(s, job.token, now_ms=T0 + 5, sign=signed)
    assert [o["result"] for o in signed[0]] == ["sent", "acknowledged"]  # one change-set: the later op wins
    assert campaigns.commit_batch(s, [campaigns.SendOutcome(job, "sent")], now_ms=T0 + 6, sign=signed) == 0


def test_a_channel_checked_within_the_window_is_not_mailed_again(tmp_path: Path) -> None:
    _, s = make(tmp_path)
    ch = campaigns.channel_id("email", "cert-ita@example.org")
    s.conn.execute(
        "INSERT INTO records (ns, key, origin, op, hlc, cs_id, idx, seq, author, entry) VALUES "
        "('check', 'ITA/technical ' || ?, 'un', 'check', ?, 'x', 0, 1, 'a', ?)",
        (
            ch,
            f"{T0 - HOUR:013d}-0000",
            json.dumps({"op": "check", "key": "ITA/technical", "channel": ch, "result": "sent", "campaign": "un-1"}),
        ),
    )
    campaigns.create_campaign(s, node="eu", sel=campaigns.selector("ITA"), deadline_s=3600, started_by="t", now_ms=T0)
    assert campaigns.prepare_batch(s, now_ms=T0, limit=10, window_ms=2 * HOUR) == []
    st = campaigns.campaign_status(s)[0]
    assert st["counts"]["skipped"] == 1 and st["skipped_by"] == {"un": 1} and st["status"] == "done"
    campaigns.create_campaign(s, node="eu", sel=campaigns.selector("ITA"), deadline_s=3600, started_by="t", now_ms=T0)
    assert len(campaigns.prepare_batch(s, now_ms=T0 + 3 * HOUR, limit=10, window_ms=2 * HOUR)) == 1


def test_messages_name_state_kind_directory_and_link_only(tmp_path: Path) -> None:
    for lang, word in (("en", "technical"), ("fr", "technique"), ("es", "técnico")):
        m = campaigns.check_message(
            language=lang,
            directory="EU node (example)",
            key="DEU/technical",
            link="https://eu.example.org/check/ack?token=abc",
            page="https://eu.example.org/",
            deadline_ms=T0,
        )
        assert "DEU" in m.subject and word in m.subject and "EU node (example)" in m.body
        assert "https://eu.example.org/check/ack?token=abc" in m.body and "https://eu.example.org/" in m.body
        msg = email.message_from_string(f"Subject: {m.subject}\n\n{m.body}", policy=policy.default)
        assert msg["subject"] == m.subject
    assert campaigns.language_of({"languages": ["Français"]}) == "fr"
    assert campaigns.language_of({"languages": ["de"]}) == "en"
    assert campaigns.language_of({}) == "en"


def test_durations() -> None:
    assert campaigns.parse_duration("48h") == 172_800 and campaigns.parse_duration("10s") == 10
    for bad in ("", "48", "1s", "91d", "2w", "-1h"):
        with pytest.raises(ConfigError):
            campaigns.parse_duration(bad)


# --- property: whatever the order of sends, commits, acknowledgements and deadlines ------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

STEPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "prepare",
                "commit_sent",
                "commit_bounced",
                "commit_retry",
                "ack",
                "ack_again",
                "guess",
                "sweep",
                "page_ack",
            ]
        ),
        st.integers(0, 3),
        st.integers(0, 3_000_000),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_any_order_signs_at_most_one_result_per_mailing_and_never_sent_after_a_result(tmp_path_factory, steps) -> None:
    """Every token works once at most, before its deadline only; for each channel the ops signed by the node
    never put a `sent` after a result of the same mailing; `acknowledged` comes only after a `sent`."""
    _, s = make(tmp_path_factory.mktemp("p"))
    campaigns.create_campaign(s, node="eu", sel=campaigns.Selector(), deadline_s=3600, started_by="t", now_ms=T0)
    signed = Signed()
    jobs: list[campaigns.Job] = []
    used: set[str] = set()
    t = T0
    for what, i, dt in steps:
        t += dt
        if what == "prepare":
            jobs += campaigns.prepare_batch(s, now_ms=t, limit=2, window_ms=10 * 24 * HOUR)
        elif what.startswith("commit") and jobs:
            j = jobs[i % len(jobs)]
            status = what.split("_")[1]
            campaigns.commit_batch(
                s,
                [
                    campaigns.SendOutcome(
                        j, status, smtp_code=550 if status == "bounced" else None, error="smtp_unavailable"
                    )
                ],
                now_ms=t,
                sign=signed,
            )
        elif what in ("ack", "ack_again") and jobs:
            j = jobs[i % len(jobs)]
            try:
                campaigns.acknowledge_token(s, j.token, now_ms=t, sign=signed)
                assert j.token not in used and t < j.deadline_ms
                used.add(j.token)
            except campaigns.AckRefused:
                pass
        elif what == "guess":
            with pytest.raises(campaigns.AckRefused):
                campaigns.acknowledge_token(s, "g" * 43, now_ms=t, sign=signed)
        elif what == "sweep":
            campaigns.sweep_deadlines(s, now_ms=t, sign=signed)
        elif what == "page_ack" and jobs:
            j = jobs[i % len(jobs)]
            try:
                campaigns.acknowledge_channel(s, j.key, j.channel, now_ms=t, sign=signed)
            except campaigns.AckRefused:
                pass
    per_channel: dict[tuple[str, str], list[str]] = {}
    for cs in signed:
        for op in cs:
            per_channel.setdefault((op["key"], op["channel"]), []).append(op["result"])
    for results in per_channel.values():
        # one mailing of a channel: sent, then at most one result; a later mailing only after a result
        for k, r in enumerate(results):
            if r in ("acknowledged", "no_response"):
                assert k > 0 and results[k - 1] == "sent", results
            if r == "sent" and k > 0:
                assert results[k - 1] != "sent", results
    acks = sum(r == "acknowledged" for rs in per_channel.values() for r in rs)
    rows = s.conn.execute("SELECT count(*) FROM check_targets WHERE status='acknowledged'").fetchone()[0]
    assert acks == rows


def test_checks_config_and_token_messages(tmp_path: Path) -> None:
    from pocsync.folder import config

    f = tmp_path / "sync.toml"
    f.write_text('[node]\nid = "eu"\n[checks]\nkinds = ["consular"]\n')
    with pytest.raises(ConfigError, match="consular"):
        config.load(f)
    f.write_text('[node]\nid = "eu"\n[checks]\nwindow_days = 0\n')
    with pytest.raises(ConfigError, match="window_days"):
        config.load(f)
    for lang in campaigns.LANGUAGES:
        m = campaigns.text_message(
            "token",
            lang,
            directory="EU node (example)",
            state="DEU",
            kind=campaigns.KIND_WORDS[lang]["technical"],
            page="https://eu.example.org/",
            renew="https://eu.example.org/v1/token/renew",
            token="eyJ.x.y",
            expires="2026-12-10",
        )
        assert "eyJ.x.y" in m.body and "https://eu.example.org/v1/token/renew" in m.body and "DEU" in m.subject
