"""The dashboard over a real server, on SQLite and on PostgreSQL: JSON API, pages, writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dashboard_helpers import get_json, running_dashboard
from dashboard_seed import CACHE_FP, ENV_BOUND, FLAKY, SECRET, START, seed_history

from greenloop.redact import Redactor
from greenloop.store import Store, store_url

RUNS = 30
CACHE_DOWN = [i for i in range(RUNS) if i % 7 == 3]  # the seed's outage runs


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, list[str]]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = store_url(request.getfixturevalue("pg_database"), tmp_path)
    store = Store.open(url)
    ids = seed_history(store, RUNS)
    yield store, ids
    store.close()


def test_api_reads_the_same_history_on_both_stores(seeded: tuple[Store, list[str]]) -> None:
    store, ids = seeded
    with running_dashboard(store) as base:
        # Runs: newest first, paginated by next links until the end.
        seen: list[str] = []
        url: str | None = f"{base}/api/runs?limit=7"
        pages = 0
        while url:
            page = get_json(url)
            assert page["total"] == RUNS and page["limit"] == 7
            seen += [r["run_id"] for r in page["items"]]
            url = page["next"]
            pages += 1
        assert pages == 5 and seen == ids[::-1]
        everything = get_json(f"{base}/api/runs?limit=500")["items"]
        failing = get_json(f"{base}/api/runs?verdict=failing&limit=500")
        assert failing["total"] == sum(r["verdict"] == "failing" for r in everything) > 0
        assert {r["verdict"] for r in failing["items"]} == {"failing"}

        # One outage run: its gate table, its cluster with whys, its money at risk.
        outage = ids[CACHE_DOWN[0]]
        row = next(r for r in everything if r["run_id"] == outage)
        assert row["availability"] == 0.5 and row["mrr_at_risk_usd"] >= 12000
        detail = get_json(f"{base}/api/runs/{outage}")
        assert {(p["component"], p["ok"]) for p in detail["probes"]} == {
            ("backend", True),
            ("cache", False),
        }
        cluster = next(c for c in detail["clusters"] if c["fingerprint"] == CACHE_FP)
        assert cluster["component"] == "cache" and cluster["impact_usd"] == 12000
        assert [w["verified"] for w in cluster["whys"]] == [True, True]
        failed = {t["nodeid"]: t for t in detail["tests"] if t["outcome"] == "failed"}
        assert failed[ENV_BOUND]["cluster_id"] == cluster["cluster_id"]
        assert detail["phases"][0]["counts"]["failed"] == len(failed)
        assert detail["actions"][0]["name"] == "restart-cache"
        assert {i["key"] for i in detail["issues"]} >= {"acme/shop#41"}
        assert httpx.get(f"{base}/api/runs/no-such-run").status_code == 404

        # Problems over time: first and last seen are the outage runs' starts.
        body = get_json(f"{base}/api/clusters")
        clusters = {c["fingerprint"]: c for c in body["items"]}
        assert [p["run_id"] for p in body["per_run"]] == ids
        by_run = {r["run_id"]: r for r in everything}
        for point in body["per_run"]:
            clean = by_run[point["run_id"]]["mrr_at_risk_usd"] == 0
            assert (point["problems"] == 0) == clean, point
        cache = clusters[CACHE_FP]
        assert cache["occurrences"] == len(CACHE_DOWN)
        assert cache["first_seen"].startswith(_iso_minute(CACHE_DOWN[0]))
        assert cache["last_seen"].startswith(_iso_minute(CACHE_DOWN[-1]))
        assert cache["last_run_id"] == ids[CACHE_DOWN[-1]]
        assert cache["issue"]["key"] == "acme/shop#41" and cache["issue"]["state"] == "closed"

        issues = get_json(f"{base}/api/issues")
        assert issues["stats"] == {"open": 1, "closed": 1, "mttr_s": 7200.0}
        assert [i["state"] for i in issues["items"]] == ["open", "closed"]

        # Flaky: the flipping test is flaky, the outage-bound one is the environment's.
        flaky = {f["nodeid"]: f for f in get_json(f"{base}/api/flaky")["items"]}
        assert flaky[FLAKY]["verdict"] == "flaky" and flaky[FLAKY]["flips"] > 0
        assert flaky[ENV_BOUND]["verdict"] == "environment"
        assert len(flaky[FLAKY]["history"]) == 20  # triage.flaky_window, oldest first
        assert flaky[FLAKY]["history"][-1][1] == ids[-1]

        probes = {c["component"]: c for c in get_json(f"{base}/api/probes")["items"]}
        assert probes["backend"]["availability"] == 1.0
        assert probes["cache"]["ok"] == RUNS - len(CACHE_DOWN)
        assert probes["cache"]["total"] == RUNS
        assert probes["cache"]["last_failure"]["detail"].startswith("HTTP 503")
        assert [r[0] for r in probes["cache"]["per_run"]] == ids

        trend = get_json(f"{base}/api/trend?limit=10")["items"]
        assert [p["run_id"] for p in trend] == ids[-10:]
        assert all(20 <= p["duration_s"] <= 60 for p in trend)


def _iso_minute(i: int) -> str:
    from datetime import timedelta

    return (START + timedelta(minutes=10 * i)).strftime("%Y-%m-%dT%H:%M")


def test_no_secret_reaches_a_page_or_the_api(store: Store) -> None:
    ids = seed_history(store, 10)
    outage = ids[CACHE_DOWN[0]]
    paths = ["/", f"/runs/{outage}", "/clusters", "/flaky", "/probes"]
    paths += ["/api/runs", f"/api/runs/{outage}", "/api/clusters", "/api/flaky", "/api/probes"]
    with running_dashboard(store, redactor=Redactor(secrets=[SECRET])) as base:
        for path in paths:
            response = httpx.get(base + path, timeout=30)
            assert response.status_code == 200, path
            assert SECRET not in response.text, path
        detail = get_json(f"{base}/api/runs/{outage}")
    assert "--token ***" in detail["command_line"]
    assert any("password=***" in t["message"] for t in detail["tests"])


def test_pages_link_to_each_other_and_say_what_is_missing(store: Store) -> None:
    ids = seed_history(store, 60)
    with running_dashboard(store) as base:
        home = httpx.get(base + "/", timeout=30).text
        assert f'href="/runs/{ids[-1]}"' in home and f'href="/runs/{ids[9]}"' not in home
        assert 'href="/?offset=50"' in home  # 60 runs: a second page
        older = httpx.get(base + "/?offset=50", timeout=30).text
        assert f'href="/runs/{ids[9]}"' in older and 'href="/?offset=0"' in older
        assert "<svg" in home and "<circle" in home
        missing = httpx.get(base + "/runs/nope", timeout=30)
        assert missing.status_code == 404 and "No run nope" in missing.text
        assert httpx.get(base + "/api/runs?limit=0", timeout=30).status_code == 422
        assert httpx.get(base + "/api/docs", timeout=30).status_code == 404  # no CDN assets


def test_an_empty_store_renders_every_page(store: Store) -> None:
    with running_dashboard(store) as base:
        for path in ("/", "/clusters", "/flaky", "/probes"):
            response = httpx.get(base + path, timeout=30)
            assert response.status_code == 200, path
        assert "No runs in the store yet" in httpx.get(base + "/", timeout=30).text
        assert get_json(base + "/api/runs") == {
            "items": [],
            "total": 0,
            "limit": 50,
            "offset": 0,
            "next": None,
            "previous": None,
        }


def test_writes_need_the_token(store: Store) -> None:
    seed_history(store, 5)  # run 3 has the cache cluster C-cache
    body = {"target": "C-cache", "category": "infrastructure", "note": "seen it"}
    with running_dashboard(store) as base:
        refused = httpx.post(f"{base}/api/labels", json=body, timeout=30)
        assert refused.status_code == 403 and "read-only" in refused.text
    with running_dashboard(store, token="s3cret-token") as base:
        anonymous = httpx.post(f"{base}/api/labels", json=body, timeout=30)
        assert anonymous.status_code == 401
        wrong = httpx.post(
            f"{base}/api/labels", json=body, headers={"Authorization": "Bearer nope"}, timeout=30
        )
        assert wrong.status_code == 401
        bad = httpx.post(
            f"{base}/api/labels",
            json={**body, "category": "nonsense"},
            headers={"Authorization": "Bearer s3cret-token"},
            timeout=30,
        )
        assert bad.status_code == 422
        gate_only = httpx.post(
            f"{base}/api/labels",
            json={**body, "category": "blocked"},
            headers={"Authorization": "Bearer s3cret-token"},
            timeout=30,
        )
        assert gate_only.status_code == 422 and "health gate" in gate_only.text
        allowed = httpx.post(
            f"{base}/api/labels",
            json=body,
            headers={"Authorization": "Bearer s3cret-token"},
            timeout=30,
        )
        if not hasattr(store, "record_label"):  # a store from before `greenloop label`
            assert allowed.status_code == 501
            return
        assert allowed.status_code == 201, allowed.text
        assert allowed.json() == {
            "target": "C-cache",
            "kind": "cluster",
            "category": "infrastructure",
        }
        (row,) = store.triage.labels()
        assert (row.target, row.category, row.note) == ("C-cache", "infrastructure", "seen it")
        unknown = httpx.post(
            f"{base}/api/labels",
            json={**body, "target": "C-nothing"},
            headers={"Authorization": "Bearer s3cret-token"},
            timeout=30,
        )
        assert unknown.status_code == 404
