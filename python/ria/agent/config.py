"""The agent's credentials file: ~/.ria/agent.json (or $RIA_AGENT_CONFIG), mode 0600."""

import json
import os
import tempfile

FIELDS = ("hub_url", "agent_id", "token", "name")


class ConfigError(ValueError):
    pass


def path():
    return os.environ.get("RIA_AGENT_CONFIG") or os.path.join(os.path.expanduser("~"), ".ria", "agent.json")


def load(file=None):
    """The saved config as a dict ({} when there is none). Raises ConfigError naming the file."""
    file = file or path()
    try:
        with open(file) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read agent config {file}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"agent config {file} must hold a JSON object")
    return data


def save(updates, file=None):
    """Merges updates into the file, keeping keys this version does not know; mode 0600."""
    file = file or path()
    data = load(file)
    data.update(updates)
    folder = os.path.dirname(os.path.abspath(file))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".agent.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, file)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return data


def split_urls(text):
    """The URLs of a setting that lists one or several (hub nodes), separated by spaces or commas."""
    return [u for u in text.replace(",", " ").split() if u]


def ws_url(hub_url, agent_id):
    """The agent WebSocket URL for a hub base URL (http(s) or ws(s)); for several (the nodes of a hub cluster,
    separated by spaces or commas) the agent's URLs, separated by spaces, which the agent rotates through."""
    urls = split_urls(hub_url)
    if len(urls) > 1:
        return " ".join(ws_url(u, agent_id) for u in urls)
    base = hub_url.strip().rstrip("/")
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if base.startswith(http):
            base = ws + base[len(http):]
    if not base.startswith(("ws://", "wss://")):
        raise ConfigError(f"hub URL {hub_url!r} must start with http(s):// or ws(s)://")
    if "/screens/agent/ws" not in base:
        base += "/screens/agent/ws"
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}agent_id={agent_id}" if agent_id and "agent_id=" not in base else base


def hub_connection(url="", token=""):
    """(url, token) for a block: as given, or from the file `ria_agent.py register` wrote when url is empty."""
    if url:
        return url, token
    saved = load()
    if not saved.get("hub_url"):
        raise ValueError(f"url is empty and {path()} has no hub_url: give a URL or register first")
    return ws_url(saved["hub_url"], saved.get("agent_id", "")), token or saved.get("token", "")
