"""URLs as Digest shows and reads them: credentials masked, user parts
found even where URL parsers lose them, http(s) URLs told apart.

A URL setting can carry a secret in its user part, its query or its
fragment, and a mistyped one can carry it where no parser looks. Every
place that shows a URL (logs, errors, `digest config show`, `digest
doctor`) goes through `without_password`; the profile checks read URLs
through `url_parts` and `http_url_fault`.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, quote, unquote_plus, urlsplit


def without_password(url: str) -> str:
    """The URL as logs, `digest doctor` and `digest config show` show it:
    every credential in it replaced by ***.

    That is the password of its user part; a user name without a password
    too (`https://sk-…@host`: a key sent as Basic auth), except a database
    URL's role, while a user name beside a password is shown; the value of
    every query parameter whose name says it is a secret (`?password=`,
    `api_key=`, `access_token=`, `sslpassword=`…); and a fragment entirely
    (`#sk-…`: no URL setting means anything by one). A password with '#',
    '?', '/' or '@' in it, which URL parsers take for the end of the user
    part, is found as well (`split_userinfo`), and so is a user part in a
    URL whose scheme is mistyped or missing (`htps://`, `https:/`,
    `postgresql//`, `sk-…@host`): there, the text before the last '@' is all
    read as the user part.
    """
    prefix, userinfo, rest, strict = find_userinfo(url)
    rest = _without_secret_params(rest)
    if userinfo is None:
        return prefix + rest
    user, colon, password = userinfo.partition(":")
    if password:
        userinfo = f"{user}:***"
    elif not (strict and _is_database_scheme(prefix)):
        userinfo = "***" + colon
    return f"{prefix}{userinfo}@{rest}"


# A URL's scheme and `//` (after any blanks, which parsers skip), then the
# rest; a URL without `//` has no user part.
_AUTHORITY = re.compile(r"(\s*[A-Za-z][A-Za-z0-9+.\-]*://)(.*)", re.DOTALL)
# What ends the host part for urllib (and the WHATWG parser httpx follows).
AUTHORITY_END = re.compile(r"[/?#]")
# The start of a URL whose scheme is mistyped (`https:/`, `postgresql//`,
# `:///`): what comes after it up to the last '@' is read as a user part.
_LOOSE_PREFIX = re.compile(r"\s*(?:[A-Za-z][A-Za-z0-9+.\-]*)?(?::/+|/{2,})")
# The database schemes (SQLAlchemy backends, before any `+driver`) whose
# user name is a role, not a secret.
_DATABASE_SCHEMES = frozenset(
    {
        "cockroachdb",
        "mariadb",
        "mssql",
        "mysql",
        "oracle",
        "postgres",
        "postgresql",
        "sqlite",
    }
)


def _is_database_scheme(prefix: str) -> bool:
    scheme = prefix.strip().lower().removesuffix("://")
    return scheme.partition("+")[0] in _DATABASE_SCHEMES


def split_userinfo(url: str) -> tuple[str, str | None, str]:
    """`url` as (scheme and `//`, the user part or None, what follows its @).

    urllib ends the host part at the first '/', '?' or '#', so in
    `https://user:pa#ss@host/v1` it sees host `user` and no password, and
    the secret ends up in the fragment. Here the user part runs to the last
    '@' whenever what comes before it starts as `name:` (a name with none of
    those characters): a password is what holds them, and an '@' later in a
    base URL's path or query is rarer than one in a password. Reading too
    much as the user part hides more than needed, never a secret.
    """
    prefix, userinfo, rest, _ = find_userinfo(url)
    return prefix, userinfo, rest


def find_userinfo(url: str) -> tuple[str, str | None, str, bool]:
    """`split_userinfo`, and whether the URL starts as `scheme://`; one that
    does not has everything before its last '@' read as the user part."""
    match = _AUTHORITY.fullmatch(url)
    if match is None:
        at = url.rfind("@")
        if at < 0:
            return "", None, url, False
        loose = _LOOSE_PREFIX.match(url[:at])
        start = loose.end() if loose else 0
        return url[:start], url[start:at], url[at + 1 :], False
    prefix, rest = match.groups()
    at = rest.rfind("@")
    if at < 0:
        return prefix, None, rest, True
    userinfo = rest[:at]
    end = AUTHORITY_END.search(userinfo)
    if end is not None and ":" not in userinfo[: end.start()]:
        # `host/path@x`: no user part before the path, unless an '@' comes
        # before the path too (`user@host/path@x`).
        at = rest.rfind("@", 0, end.start())
        if at < 0:
            return prefix, None, rest, True
        userinfo = rest[:at]
    return prefix, userinfo, rest[at + 1 :], True


def url_parts(url: str) -> SplitResult:
    """urlsplit of `url`, its user part quoted first so that a '#', '?',
    '/' or '@' in a password does not move the host (ValueError if the URL
    cannot be read, as urlsplit raises)."""
    prefix, userinfo, rest = split_userinfo(url)
    if userinfo is not None:
        quoted = quote(userinfo, safe="%:!$&'()*+,;=-._~")
        url = f"{prefix}{quoted}@{rest}"
    return urlsplit(url)


# Parameter names that say their value is a secret, word by word
# (`api_key`, `X-Api-Key`, `client.secret`) or at the end of a name run
# together (`apikey`, `accesstoken`, `sslpassword`).
_SECRET_WORDS = frozenset(
    {
        "auth",
        "authorization",
        "credential",
        "credentials",
        "pass",
        "passphrase",
        "passwd",
        "password",
        "pwd",
        "secret",
        "sig",
        "signature",
        "token",
        "key",
    }
)
_SECRET_ENDINGS = ("key", "password", "passwd", "pwd", "secret", "token", "signature")


def _is_secret_param(name: str) -> bool:
    """Whether a query parameter by this name holds a secret."""
    words = [word for word in re.split(r"[^a-z0-9]+", name.lower()) if word]
    return any(word in _SECRET_WORDS for word in words) or "".join(words).endswith(
        _SECRET_ENDINGS
    )


def _without_secret_params(rest: str) -> str:
    """The part of a URL after its user part, with the values of secret
    query parameters and any fragment shown as *** (the rest as typed)."""
    before, hash_, fragment = rest.partition("#")
    path, question, query = before.partition("?")
    if question:
        path += question + _masked_params(query)
    if hash_:
        path += hash_ + ("***" if fragment else "")
    return path


def _hides_secret(param: str) -> bool:
    """Whether a `name=value` query parameter holds a secret value."""
    name, equals, value = param.partition("=")
    return bool(equals and value) and _is_secret_param(unquote_plus(name))


def _masked_params(params: str) -> str:
    shown = []
    for param in params.split("&"):
        if _hides_secret(param):
            param = param.partition("=")[0] + "=***"
        shown.append(param)
    return "&".join(shown)


def secret_param_names(url: str) -> list[str]:
    """The names (as typed) of the query parameters of `url` that
    `without_password` masks: those holding a secret value."""
    rest = split_userinfo(url)[2]
    query = rest.partition("#")[0].partition("?")[2]
    return [
        param.partition("=")[0] for param in query.split("&") if _hides_secret(param)
    ]


def _is_http_url(url: str) -> bool:
    return http_url_fault(url) is None


NOT_HTTP = "not an http(s) URL with a host"


def http_url_fault(url: str) -> str | None:
    """Why `url` is no http(s) URL with a host, as a problem line says it
    after the (masked) value, or None if it is one."""
    try:
        parts = url_parts(url.strip())
    except ValueError:
        return NOT_HTTP
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return NOT_HTTP
    try:
        port = parts.port
    except ValueError:
        # urlsplit reads the port only now: not a number, or past 65535.
        port = None
        text = parts.netloc.rpartition("@")[2].rpartition(":")[2]
        if not (text.isascii() and text.isdigit()):
            return "whose port is not a number"
        return f"whose port {text} is out of range (1-65535)"
    if port == 0:
        return "whose port 0 is out of range (1-65535)"
    return None
