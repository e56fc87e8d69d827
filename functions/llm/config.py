"""The `llm` summariser's settings, checked once when the functions are built."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pydantic import SecretStr

from digest.settings import Settings


class LLMNotConfigured(ValueError):
    """SUMMARIZER=llm without the settings that name a model."""


@dataclass(frozen=True)
class LLMConfig:
    base_url: str
    model: str
    # repr=False: a config printed in a log or a traceback shows no key.
    api_key: SecretStr | None = field(repr=False)
    context_tokens: int
    max_output_tokens: int
    max_concurrency: int
    timeout_seconds: float
    via_executor: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMConfig:
        missing = [
            name
            for name, value in (
                ("LLM_BASE_URL", settings.llm_base_url),
                ("LLM_MODEL", settings.llm_model),
            )
            if not (value or "").strip()
        ]
        if missing:
            raise LLMNotConfigured(
                f"SUMMARIZER=llm needs {' and '.join(missing)}: set the "
                "OpenAI-compatible endpoint (e.g. https://api.openai.com/v1) "
                "and the model name, or use SUMMARIZER=extractive"
            )
        return cls(
            base_url=str(settings.llm_base_url).strip().rstrip("/"),
            model=str(settings.llm_model).strip(),
            api_key=settings.llm_api_key,
            context_tokens=settings.llm_context_tokens,
            max_output_tokens=settings.llm_max_output_tokens,
            max_concurrency=settings.llm_max_concurrency,
            timeout_seconds=settings.llm_timeout_seconds,
            via_executor=settings.llm_via_executor,
        )

    @property
    def key(self) -> str:
        """The API key in clear, for the Authorization header only; "" if none."""
        return self.api_key.get_secret_value() if self.api_key else ""

    @property
    def completions_url(self) -> str:
        return f"{self.base_url}/chat/completions"

    @property
    def provider_key_expression(self) -> str:
        """A constant CEL string naming this provider, the concurrency key.

        The same endpoint and model share one limit, whichever function or
        run calls them; a CEL string literal is valid JSON, hence json.dumps.
        """
        return json.dumps(f"llm:{self.base_url}|{self.model}")
