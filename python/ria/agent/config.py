"""The agent's credentials file: ~/.ria/agent.json (or $RIA_AGENT_CONFIG), mode 0600."""

import json
import os
import stat
import tempfile

FIELDS = ("hub_url", "agent_id", "token", "name")
# The token a block with an empty token parameter uses (before the saved one).
TOKEN_ENV = "RIA_TOKEN"


class ConfigError(ValueError):
    pass


def path():
    return os.environ.get("RIA_AGENT_CONFIG") or os.path.join(os.path.expanduser("~"), ".ria", "agent.json")


def load(file=None):
    """The saved config as a dict ({} when there is none). Raises ConfigError naming the file, also when the file
    holds a token that other users can read (as ssh refuses a private key that others can read)."""
    file = file or path()
    data, mode = _read(file)
    if data.get("token") and mode & 0o077:
        who = "everyone" if mode & 0o004 else "its group"
        raise ConfigError(f"agent config {file} holds the agent's token and is readable by {who} (mode "
                          f"{stat.S_IMODE(mode):04o}); anyone who reads it can pose as this agent. Run "
                          f"`chmod 600 {file}` (as its owner), or register again")
    return data


def _read(file):
    """(the saved dict, the file's mode); ({}, 0) when there is no file."""
    try:
        with open(file) as f:
            mode = os.fstat(f.fileno()).st_mode
            data = json.load(f)
    except FileNotFoundError:
        return {}, 0
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read agent config {file}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"agent config {file} must hold a JSON object")
    return data, mode


def save(updates, file=None):
    """Merges updates into the file, keeping keys this version does not know; mode 0600."""
    file = file or path()
    data = _read(file)[0]  # a file others could read is rewritten 0600 below
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
    """(url, token) for a block, so that no .grc ever holds a token.

    url empty: the hub saved by `ria_agent.py register`. token empty: $RIA_TOKEN, else the saved token
    when the block talks to the saved hub (never sent to another one)."""
    token = token or os.environ.get(TOKEN_ENV, "")
    saved = load() if not (url and token) else {}
    if not url:
        if not saved.get("hub_url"):
            raise ValueError(f"url is empty and {path()} has no hub_url: give a URL or register first")
        url = ws_url(saved["hub_url"], saved.get("agent_id", ""))
        return url, token or saved.get("token", "")
    if not token and saved.get("hub_url") and _endpoint(url) == _endpoint(ws_url(saved["hub_url"], "")):
        token = saved.get("token", "")
    return url, token


def _endpoint(url):
    return url.split("?", 1)[0].rstrip("/")
