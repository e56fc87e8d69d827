"""Cloud mode: signing calls to apps, checking their answers, bearer tokens.

The algorithms are those of the Python SDK 0.5.19 (``inngest._internal.net``
and ``transforms``), which is the ground truth (protocol section 5):

* requests are signed over the RFC 8785 (JCS) canonical form of the body,
  using the ``jcs`` package the SDK itself depends on, so both sides agree
  byte for byte on number and string formatting;
* answers are signed over the raw bytes the SDK sent (its ``json.dumps``
  output), so they are checked without canonicalising;
* the HMAC key is the prefix-stripped key as UTF-8 text, while the bearer is
  the sha256 of the prefix-stripped key decoded from hex.

Key material never leaves this module except inside signatures and bearer
comparisons; what is logged or shown is ``fingerprint``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

import httpx
import jcs

from devserver import wire

SIGNATURE_HEADER = "x-inngest-signature"
# Answers older or newer than this (seconds) are refused: the SDK does not
# check freshness itself, the spec says servers SHOULD, and a replayed answer
# from an earlier run must not be taken for a new one.
MAX_SKEW_S = 300
_PREFIX = re.compile(r"^signkey-\w+-")
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})+$")


class SignatureError(ValueError):
    """A signature that does not prove the sender holds one of our keys."""


def strip_prefix(key: str) -> str:
    """``signkey-test-abcd`` -> ``abcd``; keys without the prefix are unchanged."""
    match = _PREFIX.match(key)
    return key[match.end() :] if match else key


def check_signing_key(key: str) -> None:
    """Raise ValueError unless ``key`` is ``[signkey-<env>-]<even-length hex>``.

    Checked at start-up because the bearer needs the hex bytes: a malformed
    key would otherwise only show up as every sync failing. The message
    names the fingerprint, never the key.
    """
    if not _HEX.match(strip_prefix(key)):
        digest = hashlib.sha256(key.encode()).hexdigest()[:8]
        raise ValueError(
            f"signing key (sha256 of text {digest}) is not of the form "
            "signkey-<env>-<hex> with an even number of hex digits"
        )


def bearer_token(key: str) -> str:
    """What the SDK sends as ``Authorization: Bearer ...`` for this key."""
    return hashlib.sha256(bytes.fromhex(strip_prefix(key))).hexdigest()


def fingerprint(key: str) -> str:
    """A short name for a signing key that is safe to log.

    The first 8 hex digits of the bearer, i.e. of the ``signing_key_hash`` an
    SDK shows in its authenticated inspection, so the two can be compared.
    """
    return "sha256:" + bearer_token(key)[:8]


def event_key_fingerprint(key: str) -> str:
    """Like ``fingerprint``, for event keys (``event_key_hash`` of the SDK)."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:8]


def canonicalize(body: bytes) -> bytes:
    """JCS form of a JSON body, as the SDK computes it before checking."""
    if not body:
        return body
    return canonical_json(json.loads(body))


def canonical_json(value: Any) -> bytes:
    """JCS form of a JSON value."""
    encoded = jcs.canonicalize(value)
    if not isinstance(encoded, bytes):
        raise TypeError("jcs.canonicalize did not return bytes")
    return encoded


def _mac(key: str, message: bytes, t: int) -> str:
    digest = hmac.new(strip_prefix(key).encode("utf-8"), message, hashlib.sha256)
    digest.update(str(t).encode("utf-8"))
    return digest.hexdigest()


def _header(key: str, message: bytes, t: int) -> str:
    # t first: Inngest Cloud compares the header as a string.
    return f"t={t}&s={_mac(key, message, t)}"


def sign_request(body: bytes, key: str, t: int | None = None) -> str:
    """``x-inngest-signature`` value for a request body (canonicalised first)."""
    t = round(time.time()) if t is None else t
    return _header(key, canonicalize(body), t)


def parse_signature(header: str) -> tuple[int, str]:
    """``t=..&s=..`` -> (t, s); raise SignatureError if either is missing."""
    # parse_qs, like the SDK, so both sides split the header the same way.
    fields = urllib.parse.parse_qs(header)
    sig = fields.get("s", [""])[0]
    stamp = fields.get("t", [""])[0]
    if not sig:
        raise SignatureError("signature header has no s= value")
    if not stamp:
        # The SDK would accept a body-only HMAC, but without t there is no
        # way to tell a fresh answer from a replayed one.
        raise SignatureError("signature header has no t= timestamp")
    try:
        return int(stamp), sig
    except ValueError:
        raise SignatureError("signature timestamp t= is not an integer") from None


class SigningKeys:
    """The executor's signing key and, during a rotation, the previous one."""

    def __init__(self, primary: str, fallback: str | None = None) -> None:
        check_signing_key(primary)
        if fallback:
            check_signing_key(fallback)
        self._keys = (primary, fallback) if fallback else (primary,)
        # Both forms the official server accepts as a bearer: the hash and
        # the stripped key itself, lower-cased because hex is case-free.
        self._bearers = tuple(
            form.lower()
            for k in self._keys
            for form in (bearer_token(k), strip_prefix(k))
        )

    @property
    def keys(self) -> tuple[str, ...]:
        """Primary first, then the fallback if there is one."""
        return self._keys

    def describe(self) -> str:
        """Fingerprints of the keys, for logs."""
        text = fingerprint(self._keys[0])
        if len(self._keys) > 1:
            text += f" (fallback {fingerprint(self._keys[1])})"
        return text

    def __repr__(self) -> str:
        return f"SigningKeys({self.describe()})"

    def accepts_bearer(self, authorization: str | None) -> bool:
        """Does an ``Authorization`` header prove one of our keys?"""
        if not authorization:
            return False
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        token = strip_prefix(token.strip()).lower()
        # Compare with every form (no early exit) so timing says nothing
        # about which one came close.
        matches = [hmac.compare_digest(token, b) for b in self._bearers]
        return any(matches)

    def verify_answer(
        self, body: bytes, header: str | None, now: float | None = None
    ) -> str:
        """Check an answer's signature; return the key that made it.

        Raises SignatureError with a reason that names no secret.
        """
        if not header:
            raise SignatureError(
                f"answer has no {SIGNATURE_HEADER} header (an SDK in dev mode "
                "never signs: the app must run in cloud mode with this key)"
            )
        t, sig = parse_signature(header)
        now = time.time() if now is None else now
        skew = now - t
        if abs(skew) > MAX_SKEW_S:
            direction = "old" if skew > 0 else "in the future"
            raise SignatureError(
                f"answer signature is {abs(skew):.0f} s {direction} "
                f"(limit {MAX_SKEW_S} s)"
            )
        matched = [k for k in self._keys if hmac.compare_digest(sig, _mac(k, body, t))]
        if not matched:
            raise SignatureError(
                "answer signature matches neither the signing key nor its fallback"
                if len(self._keys) > 1
                else "answer signature does not match the signing key"
            )
        return matched[0]


# The SDK signs a streamed (201) answer before the function has finished,
# when the response body is still None: the signature covers ``null``.
_STREAMED_BODY = b"null"


class RequestSigner:
    """Signs the executor's requests to apps and checks what they answer.

    During a rotation an app may hold only the executor's fallback key: a
    401 from the SDK (which checks signatures before running anything, so
    nothing ran) is retried at once with the next key, and the key that
    worked is remembered per app URL so later calls go right to it.
    """

    def __init__(self, keys: SigningKeys) -> None:
        self.keys = keys
        self._preferred: dict[str, str] = {}

    async def send(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        payload: Any,
        headers: Mapping[str, str],
    ) -> httpx.Response:
        """Send ``payload`` as JSON, signed; fall back on a 401.

        Raises SignatureError if the payload has no canonical form (NaN).
        """
        # The plain json.dumps bytes are sent, not the canonical ones: JCS
        # writes numbers as doubles, so a large integer in event data would
        # reach the function rounded. The SDK canonicalises what it receives
        # exactly as sign_request does, so the signature still matches.
        content = json.dumps(payload).encode()
        try:
            canonical = canonicalize(content)
        except ValueError as exc:
            raise SignatureError(
                f"the body has no canonical JSON form: {exc}"
            ) from None
        target = url.split("?", 1)[0]
        preferred = self._preferred.get(target)
        order = sorted(self.keys.keys, key=lambda k: k != preferred)
        response: httpx.Response | None = None
        for key in order:
            signature = _header(key, canonical, round(time.time()))
            signed = {**headers, SIGNATURE_HEADER: signature}
            response = await client.request(
                method, url, content=content, headers=signed
            )
            if response.status_code != 401:
                self._preferred[target] = key
                break
        assert response is not None  # there is always at least one key
        return response

    def check_answer(
        self, status: int, headers: Mapping[str, str], content: bytes
    ) -> wire.CallResult | None:
        """None if the answer is genuine, else the failed attempt to record.

        ``headers`` must have lower-case keys.
        """
        if status == 401 and "x-inngest-sdk" not in headers:
            # The SDK's own refusal: it is unsigned by design, so say what
            # it means rather than that it is unsigned.
            return wire.CallResult(
                wire.Outcome.ERROR,
                error=wire.error_object(
                    "SignatureRejectedError",
                    "the app refused the executor's request signature "
                    f"(HTTP 401: {content[:200].decode('utf-8', 'replace')}); "
                    "the app and the executor must share a signing key "
                    f"(executor has {self.keys.describe()})",
                ),
            )
        body = _STREAMED_BODY if status == 201 else content
        try:
            self.keys.verify_answer(body, headers.get(SIGNATURE_HEADER))
        except SignatureError as exc:
            return wire.CallResult(
                wire.Outcome.ERROR,
                error=wire.error_object(
                    "SignatureVerificationError",
                    f"HTTP {status} answer rejected: {exc}",
                ),
            )
        return None


def keys_for(signing_key: str | None, fallback: str | None) -> SigningKeys | None:
    """The keys of a config, or None in dev mode (no signing key)."""
    return SigningKeys(signing_key, fallback) if signing_key else None
