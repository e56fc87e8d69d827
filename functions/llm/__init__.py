"""The `llm` summariser: a chat model behind an OpenAI-compatible endpoint.

config    LLM_* settings, checked when the functions are built
tokens    the token estimate, the context budget and chunking with overlap
prompts   every instruction the model is given
provider  one HTTP call, and what each kind of failure means for the job
summarize map (a step per chunk) and reduce (one more step)
"""

from __future__ import annotations

from functions.llm.config import LLMConfig, LLMNotConfigured
from functions.llm.summarize import LLMSummarizer

__all__ = ["LLMConfig", "LLMNotConfigured", "LLMSummarizer"]
