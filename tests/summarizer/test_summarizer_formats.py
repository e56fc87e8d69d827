"""Format detection and prose extraction for markdown, plain text and rst."""

from __future__ import annotations

import pytest

from functions.summarizer import detect_format, extract_prose, summarize

MARKDOWN = """\
---
title: Caching notes
---

# Caching in Digest

Digest caches summaries so that repeated requests are cheap. The cache key
is the document hash, which makes **stale entries** impossible by design.
See [the docs](https://example.com/docs) for the `cache_dir` option.

```python
def cache_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
```

| Setting | Meaning of the setting |
|---------|------------------------|
| ttl     | How long an entry lives |

## Eviction policy

<div class="note">
An HTML block is markup, not prose to summarise.
</div>

- Entries expire after a configurable time to live.
- Old entries are removed by a background sweeper every hour.

Indented code follows:

    sweeper.run(interval=3600)  # not a sentence either
"""

PLAIN = """\
Release notes for the spring version

The new release improves startup time considerably for large projects.
Users upgrading from older versions should read the migration notes first.

Name         Default      Meaning of the setting
timeout      30           Seconds before a request is abandoned

    $ digest run --all --verbose because this is a command line
    and this indented line is code as well, not prose

```
fenced code is still code even when the text is plain text
```

All settings can also be given as environment variables.
"""

RST = """\
Caching
=======

.. contents::

Digest caches summaries so that repeated requests are cheap. See
`the docs <https://example.com/docs>`_ and :func:`cache_key` for details [1]_.

.. note:: Admonitions hold prose, so their paragraphs are kept.

.. code-block:: python

   print("code is not prose, even if it reads like a sentence.")

Options
-------

:Author: Somebody Important
:Version: 1.0

.. _docs: https://example.com/docs
.. |name| replace:: Digest the summariser
.. image:: diagram.png
.. This comment is not prose either, despite the words.

=====  =========================
Name   Meaning of this table row
=====  =========================
ttl    How long an entry lives
=====  =========================

.. [1] A footnote body is a reference, not prose.
"""


def test_detect_format() -> None:
    assert detect_format(MARKDOWN) == "markdown"
    assert detect_format(RST) == "rst"
    assert detect_format(PLAIN.replace("```", "")) == "text"
    assert detect_format("") == "text"
    assert detect_format("Just a line of prose. And another one.") == "text"
    assert detect_format("PEP: 1\nTitle: A header block\n\nBody text.") == "rst"


def test_markdown_prose() -> None:
    assert extract_prose(MARKDOWN, "markdown") == [
        "Digest caches summaries so that repeated requests are cheap. The cache "
        "key is the document hash, which makes stale entries impossible by "
        "design. See the docs for the cache_dir option.",
        "Entries expire after a configurable time to live.",
        "Old entries are removed by a background sweeper every hour.",
        "Indented code follows:",
    ]


def test_plain_text_prose() -> None:
    assert extract_prose(PLAIN, "text") == [
        "The new release improves startup time considerably for large projects. "
        "Users upgrading from older versions should read the migration notes "
        "first.",
        "All settings can also be given as environment variables.",
    ]


def test_plain_text_underlined_heading_is_dropped() -> None:
    text = "Intro line of the paragraph.\nA Heading Here\n==============\nBody."
    assert extract_prose(text, "text") == ["Intro line of the paragraph.", "Body."]


def test_rst_prose() -> None:
    assert extract_prose(RST, "rst") == [
        "Digest caches summaries so that repeated requests are cheap. See the "
        "docs and cache_key for details.",
        "Admonitions hold prose, so their paragraphs are kept.",
    ]


@pytest.mark.parametrize(("text", "fmt"), [(MARKDOWN, None), (PLAIN, "text")])
def test_summaries_of_inline_samples(text: str, fmt: str | None) -> None:
    summary = summarize(text, max_sentences=3, fmt=fmt)
    assert 1 <= len(summary) <= 3
    prose = " ".join(extract_prose(text, fmt or detect_format(text)))
    for sentence in summary:
        assert sentence in prose
        for banned in ("hashlib", "|", "sweeper.run", "digest run", "fenced code"):
            assert banned not in sentence


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        extract_prose("text", "asciidoc")
