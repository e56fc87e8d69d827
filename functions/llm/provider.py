"""Calls to an OpenAI-compatible chat-completions endpoint, and what their
failures mean for the job.

    429, 5xx            retried; the provider's retry-after is honoured
                        (inngest.RetryAfterError), else the executor's backoff
    timeout, no answer  retried with the executor's backoff (ModelTimeout,
                        ModelUnavailable)
    400, 401, 403, 404, 422
                        the job fails at once with a reason a person can act
                        on (inngest.NonRetriableError): retrying cannot help
    a 2xx answer that is not a chat completion
                        retried (MalformedAnswer): proxies and overloaded
                        servers do cut answers short, and the next attempt
                        usually reads whole; after the last attempt the job
                        fails saying what came back

The API key goes into the Authorization header and nowhere else: no message
built here quotes a request, and text quoted from an answer is passed
through `redact` first, because some providers echo the key they refused.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import re
from typing import Any

import httpx
import inngest

from functions.llm.config import LLMConfig
from functions.llm.prompts import Message

# Statuses after which the same request can never succeed.
REFUSED = {
    400: "refused the request as invalid",
    401: "did not accept the API key; check LLM_API_KEY",
    403: "denied access; check that LLM_API_KEY may use LLM_MODEL",
    404: "has no such model or endpoint; check LLM_BASE_URL and LLM_MODEL",
    422: "refused the request as invalid",
}
_DETAIL_CHARS = 300
_GATEWAY_STATUS = re.compile(r"status code:? (\d{3})")


class ModelError(Exception):
    """A model call failed in a way that the next attempt may not."""


class ModelTimeout(ModelError):
    pass


class ModelUnavailable(ModelError):
    pass


class MalformedAnswer(ModelError):
    pass


def redact(text: str, config: LLMConfig) -> str:
    """`text` with the API key, if any, replaced."""
    key = config.key
    return text.replace(key, "[redacted]") if key else text


def refusal(status: int, detail: str, config: LLMConfig) -> inngest.NonRetriableError:
    what = REFUSED.get(status, "refused the request")
    message = f"the model provider {what} (HTTP {status} from {config.base_url})"
    if detail:
        message += f": {detail}"
    return inngest.NonRetriableError(redact(message, config))


def failure_for(
    status: int, headers: httpx.Headers, body: bytes, config: LLMConfig
) -> Exception:
    """The exception a non-2xx answer becomes (see the module's table)."""
    detail = redact(_detail(body), config)
    if status in REFUSED:
        return refusal(status, detail, config)
    message = f"the model provider answered HTTP {status} ({config.base_url})"
    if detail:
        message += f": {detail}"
    if status == 429 or status >= 500:
        wait = retry_after(headers)
        if wait is not None:
            return inngest.RetryAfterError(message, wait)
    return ModelUnavailable(message)


def retry_after(headers: httpx.Headers) -> datetime.timedelta | None:
    """How long the provider asked us to wait, from `retry-after-ms` or
    `retry-after` (seconds or an HTTP date); None if it did not say."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return datetime.timedelta(milliseconds=max(float(millis), 0))
        except ValueError:
            pass
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        return datetime.timedelta(seconds=max(float(value), 0))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when - datetime.datetime.now(datetime.UTC), datetime.timedelta(0))


def read_answer(payload: Any, config: LLMConfig) -> str:
    """The text of a chat completion; MalformedAnswer if it is not one."""
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        content = None
    if not isinstance(content, str) or not content.strip():
        shown = redact(json.dumps(payload)[:_DETAIL_CHARS], config)
        raise MalformedAnswer(
            f"the answer from {config.base_url} is not a chat completion with "
            f"text in choices[0].message.content: {shown}"
        )
    return content.strip()


def gateway_failure(
    error: inngest.StepError, config: LLMConfig
) -> inngest.NonRetriableError:
    """The job's reason when a model call made by the executor failed for
    good (the executor has already spent the retries it would)."""
    found = _GATEWAY_STATUS.search(error.message or "")
    detail = redact(_detail((error.stack or "").encode()), config)
    if found is not None and int(found.group(1)) in REFUSED:
        return refusal(int(found.group(1)), detail, config)
    return inngest.NonRetriableError(
        redact(
            f"the model call through the executor failed: {error.message}"
            + (f": {detail}" if detail else ""),
            config,
        )
    )


async def complete(
    config: LLMConfig,
    messages: list[Message],
    max_tokens: int,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> str:
    """One chat completion over HTTP; the text of its first choice."""
    headers = {"authorization": f"Bearer {config.key}"} if config.key else {}
    timeout = httpx.Timeout(config.timeout_seconds, connect=10.0)
    async with httpx.AsyncClient(timeout=timeout, transport=transport) as client:
        try:
            answer = await client.post(
                config.completions_url,
                json=request_body(config, messages, max_tokens),
                headers=headers,
            )
        except httpx.TimeoutException:
            raise ModelTimeout(
                f"the model at {config.base_url} did not answer within "
                f"{config.timeout_seconds:g} s (LLM_TIMEOUT_SECONDS)"
            ) from None
        except httpx.TransportError as exc:
            raise ModelUnavailable(
                f"could not reach the model at {config.base_url}: {type(exc).__name__}"
            ) from None
    if not answer.is_success:
        raise failure_for(answer.status_code, answer.headers, answer.content, config)
    try:
        payload = answer.json()
    except ValueError:
        shown = redact(answer.text[:_DETAIL_CHARS], config)
        raise MalformedAnswer(
            f"the answer from {config.base_url} (HTTP {answer.status_code}) "
            f"is not valid JSON: {shown!r}"
        ) from None
    return read_answer(payload, config)


def request_body(
    config: LLMConfig, messages: list[Message], max_tokens: int
) -> dict[str, Any]:
    return {
        "model": config.model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0.2,
    }


def _detail(body: bytes) -> str:
    """The provider's own error message, or the start of its answer."""
    text = body.decode("utf-8", "replace").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        return text[:_DETAIL_CHARS]
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])[:_DETAIL_CHARS]
    if isinstance(error, str):
        return error[:_DETAIL_CHARS]
    return text[:_DETAIL_CHARS]
