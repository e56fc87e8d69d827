"""Who is asking: bearer tokens (JWT) on every /api/summaries* call.

A token is HS256 signed with AUTH_JWT_SECRET, or signed by a key published
at AUTH_JWKS_URL (an identity provider, in prod). Its `sub` claim is the
user, who owns the jobs they create. Each algorithm is only ever checked
with its own kind of key, so an HS256 token can never be "verified" with a
public key taken from the key set.
"""

from __future__ import annotations

import asyncio
import time
import unicodedata
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backend.errors import Unauthorized
from digest.settings import Settings

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}
)
MAX_SUBJECT = 255
LEEWAY_SECONDS = 30

bearer = HTTPBearer(
    auto_error=False,
    description="A JWT whose `sub` is the user; in dev, POST /api/dev/token.",
)


def subject_problem(sub: object) -> str | None:
    """What makes `sub` unusable as a user id, or None if it is fine.

    A user id is stored with every job it owns, so it must be text a
    database takes: no control characters (PostgreSQL refuses NUL) and no
    lone surrogates, which JSON can spell but UTF-8 cannot.
    """
    if not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUBJECT:
        return f"must be a user id of 1 to {MAX_SUBJECT} characters"
    if not sub.strip():
        return "must name a user, not only spaces"
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in sub):
        return "must not hold control characters (such as NUL) or lone surrogates"
    return None


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self._secret = settings.jwt_secret
        self._audience = settings.auth_audience
        self._jwks = (
            jwt.PyJWKClient(settings.auth_jwks_url, cache_keys=True, timeout=5)
            if settings.auth_jwks_url
            else None
        )

    def issue(self, subject: str, *, ttl_seconds: int) -> str:
        """A token for `subject` signed with the HS256 secret (dev only)."""
        if self._secret is None:
            raise RuntimeError("no AUTH_JWT_SECRET to sign tokens with")
        now = int(time.time())
        claims = {"sub": subject, "iat": now, "exp": now + ttl_seconds}
        if self._audience:
            claims["aud"] = self._audience
        return jwt.encode(claims, self._secret, algorithm="HS256")

    async def subject(self, token: str) -> str:
        """The token's `sub`, or Unauthorized saying what is wrong with it."""
        try:
            alg = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise Unauthorized("the bearer token is not a JWT") from None
        key: Any
        if alg == "HS256" and self._secret is not None:
            key = self._secret
        elif alg in ASYMMETRIC and self._jwks is not None:
            key = await self._public_key(token)
        else:
            raise Unauthorized(f"tokens signed with {alg!r} are not accepted here")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._audience,
                leeway=LEEWAY_SECONDS,
                options={
                    "require": ["sub", "exp"],
                    "verify_aud": self._audience is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired; get a new one") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("the token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the token is not valid: {exc}") from None
        sub = claims.get("sub")
        problem = subject_problem(sub)
        if problem is not None or not isinstance(sub, str):
            raise Unauthorized(f"the token's 'sub' {problem}")
        return sub

    async def _public_key(self, token: str) -> Any:
        assert self._jwks is not None
        try:
            # PyJWKClient fetches with blocking urllib; keep it off the loop.
            signing = await asyncio.to_thread(
                self._jwks.get_signing_key_from_jwt, token
            )
        except jwt.PyJWKClientConnectionError:
            raise Unauthorized(
                "the token cannot be checked now: the signing keys are unreachable"
            ) from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"no signing key for this token: {exc}") from None
        return signing.key


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The `sub` of the request's bearer token; a 401 without a good one."""
    if credentials is None:
        raise Unauthorized(
            "send 'Authorization: Bearer <token>' (in dev, get one from "
            "POST /api/dev/token)"
        )
    verifier: TokenVerifier = request.app.state.tokens
    return await verifier.subject(credentials.credentials)


User = Annotated[str, Depends(current_user)]
