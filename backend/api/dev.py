"""Dev only: a token for any user id, so the page and the CLI work at once.

This router is not mounted in prod, where tokens come from the identity
provider: there the route is a 404 like any unknown path.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from backend.api.schemas import DevToken, DevTokenRequest, error_responses
from backend.auth import TokenVerifier, subject_problem
from backend.errors import InvalidRequest

router = APIRouter(prefix="/api/dev", tags=["dev"])

TOKEN_SECONDS = 24 * 3600


@router.post("/token", response_model=DevToken, responses=error_responses(400, 422))
async def dev_token(request: Request, ask: DevTokenRequest) -> DevToken:
    """A bearer token for user `sub`, valid for 24 hours (dev profile only)."""
    problem = subject_problem(ask.sub)
    if problem is not None:
        raise InvalidRequest(f"'sub' {problem}")
    verifier: TokenVerifier = request.app.state.tokens
    return DevToken(token=verifier.issue(ask.sub, ttl_seconds=TOKEN_SECONDS))
