"""App registration: checking a ``/fn/register`` payload and storing it."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from devserver.appstatus import record_sync
from devserver.clock import now_ms
from devserver.logtext import get_logger
from devserver.store import Store

logger = get_logger("digest.devserver.apps")

SERVER_KIND = "dev"
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://digest.local/devserver")


class RegistrationError(ValueError):
    """A register payload this server refuses; the text goes to the SDK."""


@dataclass(frozen=True)
class Registered:
    app_id: str
    sync_id: str
    modified: bool


def stable_uuid(name: str) -> str:
    """A UUID for a name, stable across restarts (apps, functions)."""
    return str(uuid.uuid5(_ID_NAMESPACE, name))


def register(store: Store, payload: object) -> Registered:
    """Store the app and its functions; raise RegistrationError if malformed."""
    if not isinstance(payload, dict):
        raise RegistrationError("register payload must be a JSON object")
    app_name = payload.get("appname") or payload.get("appName")
    if not isinstance(app_name, str) or not app_name:
        raise RegistrationError("appname is required")
    url = payload.get("url")
    if not isinstance(url, str) or not url:
        raise RegistrationError("url is required")
    functions = payload.get("functions")
    if not isinstance(functions, list):
        raise RegistrationError("functions must be a list")
    for function in functions:
        _check_function(function)
    checksum = hashlib.sha256(
        json.dumps(
            {"app": app_name, "url": url, "functions": functions}, sort_keys=True
        ).encode()
    ).hexdigest()
    app_id = stable_uuid(f"app:{app_name}")
    sync_id = str(uuid.uuid4())
    modified = store.app_checksum(app_name) != checksum
    previous_url = store.app_url(app_name)
    # Every sync is stored, changed or not: it refreshes the sync time and
    # the app's reachability, and brings back functions archived meanwhile.
    with store.transaction():
        store.save_app(app_name, url, checksum, sync_id, now_ms(), functions)
        record_sync(store, app_name, payload)
    if previous_url is not None and previous_url != url:
        # One app id has one URL: a sync from another URL replaces the first
        # (the app moved, e.g. its functions now run as a service of their
        # own), so each event still runs once.
        logger.warning(
            "app %s moved from %s to %s: its functions are called at the new URL only",
            app_name,
            previous_url,
            url,
        )
    logger.log(
        logging.INFO if modified else logging.DEBUG,
        "app %s synced from %s with %d function(s)%s: %s",
        app_name,
        url,
        len(functions),
        "" if modified else " (unchanged)",
        ", ".join(f["id"] for f in functions),
    )
    return Registered(app_id, sync_id, modified=modified)


def _check_function(function: Any) -> None:
    if not isinstance(function, dict):
        raise RegistrationError("each function must be an object")
    fn_id = function.get("id")
    if not isinstance(fn_id, str) or not fn_id:
        raise RegistrationError("each function needs a non-empty string id")
    runtime = ((function.get("steps") or {}).get("step") or {}).get("runtime")
    if not isinstance(runtime, dict) or not isinstance(runtime.get("url"), str):
        raise RegistrationError(f"function {fn_id} has no steps.step.runtime.url")
    triggers = function.get("triggers", [])
    if not isinstance(triggers, list) or not all(isinstance(t, dict) for t in triggers):
        raise RegistrationError(f"function {fn_id} triggers must be a list of objects")
