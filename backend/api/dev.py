"""Dev only: a token for any user id, so the page and the CLI work at once.

This router is not mounted in prod, where tokens come from the identity
provider: there the route is a 404 like any unknown path.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError

from backend.api.body import read_small_json_object
from backend.api.schemas import DevToken, DevTokenRequest, error_responses
from backend.auth import TokenVerifier, subject_problem
from backend.errors import InvalidRequest, describe_validation_error

router = APIRouter(prefix="/api/dev", tags=["dev"])

TOKEN_SECONDS = 24 * 3600
EXAMPLE = '{"sub": "local-user"}'


@router.post(
    "/token",
    response_model=DevToken,
    responses=error_responses(400, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": DevTokenRequest.model_json_schema()}
            },
        }
    },
)
async def dev_token(request: Request) -> DevToken:
    """A bearer token for user `sub`, valid for 24 hours (dev profile only)."""
    # Read as POST /api/summaries reads its body: a body that is not JSON
    # (or empty: `sub` has no default) is a 400, one that is not sent as
    # application/json a 415, and only a field that is wrong a 422.
    raw = await read_small_json_object(request, example=EXAMPLE)
    try:
        ask = DevTokenRequest.model_validate(raw)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc)) from None
    problem = subject_problem(ask.sub)
    if problem is not None:
        raise InvalidRequest(f"'sub' {problem}")
    verifier: TokenVerifier = request.app.state.tokens
    return DevToken(token=verifier.issue(ask.sub, ttl_seconds=TOKEN_SECONDS))
