"""The Hugging Face hub, only when it can answer: offline switches and a fast reachability probe.

Libraries retry an unreachable hub for tens of seconds with a warning per retry. Before any hub access,
moeguard checks the offline switches (``HF_HUB_OFFLINE``, ``HF_DATASETS_OFFLINE``) and sends one HTTP ``HEAD``
request to the hub endpoint (``HF_ENDPOINT``, through the usual proxy variables) with a short timeout
(``MOEGUARD_HUB_TIMEOUT`` seconds, default 3, DNS included). Any HTTP answer counts as reachable; a refused,
silent or unresolvable endpoint does not.
"""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request

from moeguard.errors import MoeguardError

DEFAULT_ENDPOINT = "https://huggingface.co"
TIMEOUT_ENV = "MOEGUARD_HUB_TIMEOUT"
DEFAULT_TIMEOUT = 3.0
OFFLINE_ENVS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}


def offline_switch() -> str | None:
    """The name of the offline environment variable that is set (``HF_HUB_OFFLINE=1``), else None."""
    for name in OFFLINE_ENVS:
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return name
    return None


def _timeout() -> float:
    text = os.environ.get(TIMEOUT_ENV, "")
    try:
        return max(0.1, float(text)) if text else DEFAULT_TIMEOUT
    except ValueError:
        raise MoeguardError(f"{TIMEOUT_ENV}={text!r} is not a number of seconds") from None


def endpoint() -> str:
    """The hub endpoint (``HF_ENDPOINT`` or https://huggingface.co)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_problem(timeout: float | None = None) -> str | None:
    """None when the hub endpoint answers an HTTP request within ``timeout`` seconds, else the reason.

    The request runs in a daemon thread so that a hanging DNS lookup cannot outlast the timeout.
    """
    url = endpoint()
    limit = _timeout() if timeout is None else timeout
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=limit):
                outcome.append(None)
        except urllib.error.HTTPError:  # the hub answered (401, 404, ...): it is reachable
            outcome.append(None)
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            outcome.append(f"{url}: {getattr(reason, 'strerror', None) or reason}")

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(limit + 0.5)
    if not outcome:
        return f"{url}: no answer within {limit:g} s"
    return outcome[0]
