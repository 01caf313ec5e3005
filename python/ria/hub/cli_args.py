"""What every ria_hub.py command shares: the global options (--hub, --data-dir, --json, before or after the
command's name), the registry that adds a command in one line, and where the running hub is.

A new command:  commands.add_parser("name", run=cmd_name, help="...")  (then its own arguments, if any).
"""

import argparse
import os
import re
import sys

DEFAULT_DATA_DIR = os.path.join("~", ".ria", "hub")
DEFAULT_URL = "http://127.0.0.1:8600"
URL_FILE = "hub.url"  # in DATA_DIR: written by `serve` once it listens, removed when it stops
_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]{1,200}")


def global_options(parser, defaults=True):
    """--data-dir, --hub, --json on `parser`. A command's copy (defaults=False) sets them only when given there, so
    they may come before or after the command's name."""
    value = (lambda v: v) if defaults else (lambda v: argparse.SUPPRESS)
    parser.add_argument("--data-dir", default=value(DEFAULT_DATA_DIR), dest="data_dir",
                        help=f"hub database and tokens (default {DEFAULT_DATA_DIR})")
    parser.add_argument("--hub", default=value(None),
                        help=f"URL of the running hub, for API commands (default: the one serving from DATA_DIR, "
                             f"which it writes to DATA_DIR/{URL_FILE}, else {DEFAULT_URL})")
    parser.add_argument("--json", action="store_true", default=value(False),
                        help="print JSON for scripts instead of text for people")


class Commands:
    """ria_hub.py's commands: add_parser(name, run=..., help=...) gives the command the global options too.
    A command with commands of its own (keys create/list/revoke) gets them from nested()."""

    def __init__(self, parser, dest="command"):
        self._common = argparse.ArgumentParser(add_help=False)
        global_options(self._common, defaults=False)
        self._sub = parser.add_subparsers(dest=dest, required=True, metavar=dest.upper().replace("_", "-"))

    def add_parser(self, name, run=None, **kwargs):
        p = self._sub.add_parser(name, parents=[self._common], **kwargs)
        if run is not None:
            p.set_defaults(run=run)
        return p

    @staticmethod
    def nested(parser, dest):
        return Commands(parser, dest)


def url_file(data_dir):
    return os.path.join(os.path.abspath(os.path.expanduser(data_dir)), URL_FILE)


def hub_url(args):
    """(URL, where it came from): --hub, else what the hub serving from DATA_DIR wrote, else the default."""
    if args.hub:
        return args.hub, "--hub"
    path = url_file(args.data_dir)
    try:
        with open(path) as f:
            text = f.read(256).strip()
    except FileNotFoundError:
        return DEFAULT_URL, "the default"
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}; pass --hub URL") from None
    if not _URL.fullmatch(text):
        raise ValueError(f"{path} does not hold a hub URL (http://HOST:PORT); pass --hub URL")
    return text, path


def write_url(data_dir, url):
    """Tells later commands where this hub listens (DATA_DIR/hub.url); returns the file's path."""
    path = url_file(data_dir)
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(url + "\n")
    os.replace(tmp, path)
    return path


def remove_url(data_dir, url):
    """Removes DATA_DIR/hub.url if it still names this hub (a second hub on the same folder may have replaced it)."""
    path = url_file(data_dir)
    try:
        with open(path) as f:
            if f.read(256).strip() != url:
                return
        os.remove(path)
    except FileNotFoundError:
        pass


def on_store(open_store, action):
    """Runs action(store) for a command that works on the hub's registry (open_store(): the SQLite file, or a
    cluster's NATS): a store that cannot be reached or a refused value (KeyError, ValueError) is one line on stderr
    and exit code 1; the store is closed either way."""
    try:
        store = open_store()
    except ValueError as e:  # NATS unreachable, named by the message
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        return action(store) or 0
    except (KeyError, ValueError) as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 1
    finally:
        store.close()
