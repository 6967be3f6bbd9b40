"""The wallboard's access rule and its centre-wide view, without a worker."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from slawatch.config.settings import Secret, Settings
from slawatch.core.kpi import KpiAccumulator, QueueSettings
from slawatch.errors import SlawatchError
from slawatch.web.access import COOKIE, access_middleware, is_loopback, web_token
from slawatch.web.live import combine

T0 = 1_795_348_800_000


# --- who may read ---------------------------------------------------------------------


def test_loopback_addresses_and_names() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("10.1.2.3")


def test_a_server_beyond_loopback_needs_a_token() -> None:
    with pytest.raises(SlawatchError, match=r"SLAWATCH_WEB_HOST=0\.0\.0\.0 serves beyond loopback"):
        web_token(Settings(web_host="0.0.0.0"))
    assert web_token(Settings(web_host="0.0.0.0", web_auth_token=Secret("s3cret"))) == "s3cret"
    assert web_token(Settings()) is None


def test_the_token_file_gives_its_first_line(tmp_path) -> None:
    path = tmp_path / "token"
    path.write_text("from-file\n")
    assert web_token(Settings(web_host="0.0.0.0", web_auth_token_file=str(path))) == "from-file"
    path.write_text("\n")
    with pytest.raises(SlawatchError, match="holds no token"):
        web_token(Settings(web_auth_token_file=str(path)))
    with pytest.raises(SlawatchError, match="cannot read"):
        web_token(Settings(web_auth_token_file=str(tmp_path / "missing")))
    with pytest.raises(SlawatchError, match="not both"):
        web_token(Settings(web_auth_token=Secret("a"), web_auth_token_file=str(path)))


def _serve(token: str | None, check: Callable[[TestClient], Awaitable[None]]) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application(middlewares=[access_middleware(token)])
        for path in ("/healthz", "/readyz", "/metrics", "/wallboard", "/wallboard/state"):
            app.router.add_get(path, ok)
        async with TestClient(TestServer(app)) as client:
            await check(client)

    asyncio.run(main())


def test_open_paths_stay_open_and_the_rest_asks_for_the_token() -> None:
    async def check(client: TestClient) -> None:
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await client.get(path)).status == 200
        refused = await client.get("/wallboard/state")
        assert refused.status == 401
        assert "WWW-Authenticate" not in refused.headers  # no login dialog for live updates
        page = await client.get("/wallboard", headers={"Accept": "text/html"})
        assert page.status == 401
        assert page.headers["WWW-Authenticate"].startswith("Basic")
        bearer = await client.get("/wallboard/state", headers={"Authorization": "Bearer tok"})
        assert bearer.status == 200
        wrong = await client.get("/wallboard/state", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401
        basic = base64.b64encode(b"supervisor:tok").decode()
        assert (
            await client.get("/wallboard", headers={"Authorization": f"Basic {basic}"})
        ).status == 200

    _serve("tok", check)


def test_a_token_in_the_url_becomes_a_cookie_and_leaves_the_address() -> None:
    async def check(client: TestClient) -> None:
        first = await client.get("/wallboard?token=tok&theme=dark", allow_redirects=False)
        assert first.status == 303
        assert first.headers["Location"] == "/wallboard?theme=dark"
        cookie = first.cookies[COOKIE]
        assert cookie.value == "tok" and cookie["httponly"]
        # The client keeps the cookie: the page and its updates need nothing else.
        assert (await client.get("/wallboard/state")).status == 200
        assert (await client.get("/wallboard?token=wrong", allow_redirects=False)).status in (
            200,  # the cookie still holds
            401,
        )

    _serve("tok", check)


def test_without_a_token_a_loopback_server_is_open() -> None:
    async def check(client: TestClient) -> None:
        assert (await client.get("/wallboard/state")).status == 200

    _serve(None, check)


# --- the view ------------------------------------------------------------------------


def _document(kpis: KpiAccumulator, now_ms: int, worker: str, **extra: Any) -> dict[str, Any]:
    from dataclasses import asdict

    snapshot = kpis.snapshot(now_ms)
    return {
        "worker": worker,
        "queues": {
            name: {
                "waiting": q.waiting,
                "longest_wait_ms": q.longest_wait_ms,
                "windows": {w: asdict(f) for w, f in q.windows.items()},
            }
            for name, q in snapshot.queues.items()
        },
        "watched": extra.get("watched", []),
        "breaches": extra.get("breaches", []),
    }


def test_partitions_add_up_to_the_centre_and_ratios_come_after_the_sums() -> None:
    first, second = KpiAccumulator(), KpiAccumulator()
    # billing: 3 answered in partition 0 (2 within 20 s), 1 abandoned in partition 1.
    for n, wait in enumerate((5_000, 10_000, 40_000)):
        first.queued("billing", f"c{n}", T0)
        first.answered(f"c{n}", T0 + wait)
    second.queued("billing", "c9", T0)
    second.abandoned("c9", T0 + 30_000)
    second.queued("billing", "w1", T0 + 50_000)  # still waiting
    now = T0 + 60_000
    view = combine(
        [_document(first, now, "a"), None, _document(second, now, "b")],
        lambda q: QueueSettings(target_ms=20_000, goal=0.8),
        now,
    )
    assert view["missing_partitions"] == [1]
    assert view["workers"] == 2
    (billing,) = view["queues"]
    assert billing["queue"] == "billing"
    assert billing["waiting"] == 1
    assert billing["longest_wait_s"] == 10.0
    day = billing["windows"]["day"]
    assert (day["offered"], day["answered"], day["abandoned"]) == (4, 3, 1)
    assert day["service_level"]["asterisk"] == pytest.approx(2 / 3)
    assert day["service_level"]["connect"] == pytest.approx(2 / 4)
    assert day["asa_s"] == pytest.approx(18.3, abs=0.05)
    assert view["overall"]["windows"]["day"]["offered"] == 4


def test_the_soonest_due_and_the_latest_breaches_come_first_across_partitions() -> None:
    empty = KpiAccumulator()
    a = _document(
        empty, T0, "a",
        watched=[{"due_ms": 30, "id": "T-3", "metric": "first_reply"}],
        breaches=[{"detected_ms": 1, "id": "T-1"}],
    )  # fmt: skip
    b = _document(
        empty, T0, "b",
        watched=[{"due_ms": 10, "id": "T-1", "metric": "first_reply"}],
        breaches=[{"detected_ms": 5, "id": "T-5"}],
    )  # fmt: skip
    view = combine([a, b], lambda q: QueueSettings(), T0)
    assert [w["id"] for w in view["watched"]] == ["T-1", "T-3"]
    assert [b_["id"] for b_ in view["breaches"]] == ["T-5", "T-1"]


def test_a_damaged_or_foreign_document_counts_as_missing_and_adds_nothing() -> None:
    good = _document(KpiAccumulator(), T0, "a")
    damaged = [
        {"worker": "b"},  # no queues
        {"worker": "b", "queues": {"q": {"waiting": "many"}}, "watched": [], "breaches": []},
        ["not", "a", "mapping"],
    ]
    for bad in damaged:
        view = combine([good, bad], lambda q: QueueSettings(), T0)  # type: ignore[list-item]
        assert view["missing_partitions"] == [1]
        assert view["workers"] == 1
    newer = _document(KpiAccumulator(), T0, "c")
    newer["queues"] = {
        "q": {"waiting": 1, "longest_wait_ms": 5, "windows": {"day": {"offered": 2, "new": 1}}}
    }
    view = combine([newer], lambda q: QueueSettings(), T0)
    assert view["queues"][0]["windows"]["day"]["offered"] == 2  # unknown fields left out
