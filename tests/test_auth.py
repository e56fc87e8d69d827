"""Bearer tokens, ownership, the dev token route, CORS and listing."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from backend.app import UnsafeSettings, create_app
from digest import stack
from digest.settings import DEV_JWT_SECRET, Settings

PATHS = [
    ("GET", "/api/summaries"),
    ("POST", "/api/summaries"),
    ("GET", "/api/summaries/01JZZZZZZZZZZZZZZZZZZZZZZZ"),
    ("POST", "/api/summaries/01JZZZZZZZZZZZZZZZZZZZZZZZ/cancel"),
    ("GET", "/api/summaries/01JZZZZZZZZZZZZZZZZZZZZZZZ/events"),
]


def _token(sub: str, *, secret: str = DEV_JWT_SECRET, exp: float = 3600) -> str:
    now = int(time.time())
    claims = {"sub": sub, "iat": now, "exp": now + int(exp)}
    return jwt.encode(claims, secret, algorithm="HS256")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _call(
    backend: stack.Service, method: str, path: str, **kw: object
) -> httpx.Response:
    return httpx.request(method, backend.url + path, timeout=10, **kw)  # type: ignore[arg-type]


BAD_AUTH = [
    pytest.param({}, "send 'Authorization: Bearer", id="missing"),
    pytest.param({"Authorization": "Basic dTpw"}, "Bearer", id="basic"),
    pytest.param({"Authorization": "Bearer not-a-jwt"}, "not a JWT", id="garbage"),
    pytest.param(_bearer(_token("ann", exp=-120)), "expired", id="expired"),
    pytest.param(
        _bearer(_token("ann", secret="an-attacker-secret-of-32-bytes-or-more!")),
        "signature",
        id="forged",
    ),
    pytest.param(
        _bearer(jwt.encode({"sub": "ann", "exp": time.time() + 60}, None, "none")),  # type: ignore[arg-type]
        "'none'",
        id="alg-none",
    ),
    pytest.param(
        _bearer(jwt.encode({"exp": time.time() + 60}, DEV_JWT_SECRET, "HS256")),
        "sub",
        id="no-sub",
    ),
]


@pytest.mark.parametrize(("method", "path"), PATHS)
@pytest.mark.parametrize(("headers", "says"), BAD_AUTH)
def test_bad_or_missing_token_is_a_401(
    lone_backend: stack.Service,
    method: str,
    path: str,
    headers: dict[str, str],
    says: str,
) -> None:
    answer = _call(lone_backend, method, path, headers=headers, json={"text": "Hi."})
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"] == "Bearer"
    error = answer.json()["error"]
    assert error["code"] == "unauthorized"
    assert says in error["message"]


def test_open_routes_need_no_token(lone_backend: stack.Service) -> None:
    assert _call(lone_backend, "GET", "/healthz").status_code == 200
    assert _call(lone_backend, "GET", "/api/inngest").status_code == 200
    assert _call(lone_backend, "GET", "/readyz").status_code == 503


def test_two_users_cannot_see_or_cancel_each_others_jobs(
    lone_backend: stack.Service,
) -> None:
    ann, bob = _bearer(_token("ann")), _bearer(_token("bob"))
    made = _call(
        lone_backend, "POST", "/api/summaries", headers=ann, json={"text": "Ann's."}
    )
    job_id = made.json()["id"]
    for method, path in [
        ("GET", f"/api/summaries/{job_id}"),
        ("GET", f"/api/summaries/{job_id}/events"),
        ("POST", f"/api/summaries/{job_id}/cancel"),
    ]:
        answer = _call(lone_backend, method, path, headers=bob)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["error"]["code"] == "not_found"
    listed = _call(lone_backend, "GET", "/api/summaries", headers=bob).json()
    assert job_id not in [item["id"] for item in listed["items"]]
    # Bob's failed attempt changed nothing; Ann still owns a live job.
    job = _call(lone_backend, "GET", f"/api/summaries/{job_id}", headers=ann).json()
    assert job["status"] == "queued"
    cancelled = _call(
        lone_backend, "POST", f"/api/summaries/{job_id}/cancel", headers=ann
    )
    assert cancelled.status_code == 202
    assert cancelled.json()["status"] == "cancelled"
    again = _call(lone_backend, "POST", f"/api/summaries/{job_id}/cancel", headers=ann)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert "cancelled" in again.json()["error"]["message"]


def test_listing_pages_newest_first_and_filters(lone_backend: stack.Service) -> None:
    carol = _bearer(_token(f"carol-{time.time_ns()}"))
    made = [
        _call(
            lone_backend,
            "POST",
            "/api/summaries",
            headers=carol,
            json={"text": f"Document number {n}."},
        ).json()["id"]
        for n in range(5)
    ]
    _call(lone_backend, "POST", f"/api/summaries/{made[1]}/cancel", headers=carol)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = _call(
            lone_backend, "GET", "/api/summaries", headers=carol, params=params
        ).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    cancelled = _call(
        lone_backend,
        "GET",
        "/api/summaries",
        headers=carol,
        params={"status": "cancelled"},
    ).json()
    assert [item["id"] for item in cancelled["items"]] == [made[1]]


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "finished"}, "status"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WzEsMl0"}, "cursor"),
    ],
)
def test_bad_listing_parameters_are_a_422(
    lone_backend: stack.Service, params: dict[str, object], names: str
) -> None:
    answer = _call(
        lone_backend,
        "GET",
        "/api/summaries",
        headers=_bearer(_token("ann")),
        params=params,
    )
    assert answer.status_code == 422, answer.text
    assert names in answer.json()["error"]["message"]


def test_dev_token_route(lone_backend: stack.Service) -> None:
    answer = _call(lone_backend, "POST", "/api/dev/token", json={"sub": "dana"})
    assert answer.status_code == 200
    token = answer.json()["token"]
    claims = jwt.decode(token, DEV_JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "dana"
    assert 23 * 3600 < claims["exp"] - time.time() <= 24 * 3600
    for body in [{}, {"sub": ""}, {"sub": "   "}, {"sub": 5}, {"sub": "x" * 256}]:
        refused = _call(lone_backend, "POST", "/api/dev/token", json=body)
        assert refused.status_code == 422, (body, refused.text)
    for raw in [b"x", b"{", b'{"sub": "dana"']:
        headers = {"Content-Type": "application/json"}
        refused = _call(
            lone_backend, "POST", "/api/dev/token", content=raw, headers=headers
        )
        assert refused.status_code == 400, (raw, refused.text)
        assert refused.json()["error"]["code"] == "invalid_json"


def test_cors_preflight_allows_authorization_and_last_event_id(
    lone_backend: stack.Service,
) -> None:
    # The backend runs the dev profile, whose origins include this one.
    answer = _call(
        lone_backend,
        "OPTIONS",
        "/api/summaries/01JZZZZZZZZZZZZZZZZZZZZZZZ/events",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, last-event-id",
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == "http://localhost:3000"
    allowed = answer.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "last-event-id" in allowed


def _prod(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "app_env": "prod",
        "inngest_signing_key": "signkey-prod-" + "ab" * 32,
        "inngest_event_key": "event-key",
        "auth_jwt_secret": "a-production-secret-of-more-than-32-bytes",
        "database_url": "sqlite+aiosqlite:///:memory:",
        "allow_sqlite_in_prod": True,
        "public_url": "https://digest.example.com",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def test_prod_has_no_dev_token_route() -> None:
    transport = httpx.ASGITransport(app=create_app(_prod()))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        answer = await http.post("/api/dev/token", json={"sub": "eve"})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"auth_jwt_secret": None}, "AUTH_JWKS_URL"),
        ({"auth_jwt_secret": DEV_JWT_SECRET}, "dev secret"),
        ({"fetch_allow_loopback_for_tests": [8080]}, "FETCH_ALLOW_LOOPBACK"),
    ],
)
def test_prod_refuses_unsafe_settings(overrides: dict[str, object], says: str) -> None:
    with pytest.raises(UnsafeSettings, match=says):
        create_app(_prod(**overrides))
