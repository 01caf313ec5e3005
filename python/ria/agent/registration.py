"""Registering an agent with a hub: one POST, and a sentence for every way it can fail."""

import json
import ssl
import urllib.error
import urllib.request

from . import config

VERSION = "0.1.0"
TIMEOUT_S = 15

REASONS = {
    "invalid_key": "The hub does not know this registration key. Check that you copied all of it (it starts with "
                   "ria_reg_), or ask the hub's operator for a new one.",
    "expired": "This registration key has expired. Ask the hub's operator for a fresh one "
               "(ria_hub.py keys create).",
    "revoked": "The hub's operator revoked this registration key. Ask them for a new one.",
    "already_consumed": "This key was for one registration only, and it has been used. Ask for a new key, or for a "
                        "reusable one (ria_hub.py keys create --reusable).",
}


class RegistrationError(Exception):
    """Registration failed; str() tells the user what happened and what to do."""


def explain(status, body):
    """The user's sentence for a refused registration (HTTP status and raw body)."""
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    detail = payload.get("detail") if isinstance(payload, dict) else None
    if status == 429:
        text = detail if isinstance(detail, str) and detail else "too many attempts"
        return f"The hub is limiting registrations ({text}). Wait a minute and try again."
    if isinstance(detail, dict) and detail.get("reason") in REASONS:
        return REASONS[detail["reason"]]
    if isinstance(detail, dict) and detail.get("reason"):
        return f"The hub refused the registration (reason: {detail['reason']})."
    if status == 404:
        return "The hub has no registration endpoint at this address. Check the --hub URL (just scheme, host and port)."
    text = detail if isinstance(detail, str) else body.decode("utf-8", "replace")[:200]
    return f"The hub answered HTTP {status}: {text or 'no details'}."


class _Unreachable(RegistrationError):
    pass


def register(hub_url, api_key, name, ca_file=None, insecure=False, config_file=None):
    """Registers and saves hub_url, agent_id, token and name to the config file; returns (agent_id, path).

    hub_url may list the nodes of a hub cluster (separated by spaces or commas): the first that answers takes
    the registration, and all of them are saved, for the agent to rotate through."""
    urls = config.split_urls(hub_url)
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise RegistrationError(f"--hub must be an http:// or https:// URL, got {url!r}")
    if not urls:
        raise RegistrationError("--hub needs a URL such as http://192.168.1.10:8600")
    for n, url in enumerate(urls):
        try:
            answer = _post(url.rstrip("/"), api_key, name, ca_file, insecure)
            break
        except _Unreachable:
            if n == len(urls) - 1:
                raise
    saved = {"hub_url": " ".join(u.rstrip("/") for u in urls), "agent_id": answer["agent_id"],
             "token": answer["token"], "name": name}
    if ca_file:
        saved["ca_file"] = ca_file
    if insecure:
        saved["insecure"] = True
    config.save(saved, config_file)
    return answer["agent_id"], config_file or config.path()


def _post(hub_url, api_key, name, ca_file, insecure):
    request = urllib.request.Request(
        f"{hub_url}/screens/agents/register", data=json.dumps({"name": name}).encode(), method="POST",
        headers={"Content-Type": "application/json", "X-API-Key": api_key, "User-Agent": f"gr-ria-agent/{VERSION}"})
    context = None
    if hub_url.startswith("https://"):
        context = ssl.create_default_context(cafile=ca_file or None)
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=context) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as e:
        raise RegistrationError(explain(e.code, e.read())) from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, ssl.SSLCertVerificationError):
            raise RegistrationError(f"The hub's TLS certificate is not trusted ({e.reason.verify_message}). Pass "
                                    "--ca-file with the hub's CA certificate.") from None
        raise _Unreachable(f"Cannot reach the hub at {hub_url} ({e.reason}). Check the address and that the "
                                "hub is running.") from None
    except (ValueError, OSError) as e:
        raise RegistrationError(f"The hub at {hub_url} gave an unusable answer ({e}).") from None
    if not isinstance(answer, dict) or not answer.get("agent_id") or not answer.get("token"):
        raise RegistrationError(f"The hub at {hub_url} answered without an agent_id and token.")
    return answer
