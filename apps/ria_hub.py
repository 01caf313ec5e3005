#!/usr/bin/env python3
"""ria_hub: the gr-ria lab hub. Agents register with a key, stream IQ to it, and it starts, stops and retunes them.

Typical lab:
  ria_hub.py serve                             # the hub on http://127.0.0.1:8600 (use --host 0.0.0.0 for a class)
  ria_hub.py keys create --uses 30 --ttl 2h    # one key for the whole class, valid two hours
  (each student)  ria_agent.py register --hub http://HUB:8600 --api-key ria_reg_...  then  ria_agent.py run
  ria_hub.py agents                            # who is online
  ria_hub.py start AGENT --freq 100e6 --rate 2.048e6
  ria_hub.py configure AGENT --freq 100.3e6
  ria_hub.py tx AGENT --freq 433.92e6 --rate 250e3 --gain 0 --tone 10e3 --duration 2   # (agent run --allow-tx)
  ria_hub.py tx AGENT --freq 433.92e6 --gain 0 --file capture.sigmf-data             # streamed from here
  ria_hub.py tx-configure AGENT --freq 433.95e6 / tx-stop AGENT
  ria_hub.py page-url                          # the live view, signed in
  ria_hub.py tokens create --role view --agent AGENT   # a student's view-only link (control: may retune it)
  ria_hub.py revoke-token AGENT / delete-agent AGENT   # lock an agent out at once

--data-dir, --hub and --json go before or after the command. Commands find the hub serving from DATA_DIR by
themselves (serve writes its URL to DATA_DIR/hub.url); they print text for people, JSON with --json.

Keys and agents live in DATA_DIR/hub.sqlite (secrets only as digests); the admin token that the API,
the CLI and the page need is in DATA_DIR/admin_token.
"""

import argparse
import asyncio
import json
import logging
import math
import os
import signal
import sys
import time

from gnuradio.ria.hub import addresses, cli_args, session_cli, tokens_cli, tx_cli, voice_cli
from gnuradio.ria.hub.client import HubClient, HubError
from gnuradio.ria.hub.limits import printable
from gnuradio.ria.hub.listener import ConnectionLimits, parse_proxies
from gnuradio.ria.hub.server import HubConfig, admin_token, serve
from gnuradio.ria.hub.store import Store

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text):
    """'90', '90s', '30m', '2h', '7d' -> seconds."""
    text = text.strip().lower()
    scale = UNITS.get(text[-1:], None)
    number = text[:-1] if scale else text
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 30m, 2h or 7d") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"duration must be positive and finite, got {text!r}")
    return seconds


def checked(check):
    """An argparse type from a check that raises ValueError with a sentence naming what is wrong."""
    def parse(text):
        try:
            return check(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


def nats_url_list(text):
    from gnuradio.ria.hub.cluster.nats_link import check_url  # the cluster's client, only when asked for
    return check_url(text)


proxies = checked(parse_proxies)
nats_urls = checked(nats_url_list)


def cmd_serve(args):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    limits = ConnectionLimits(max_connections=args.max_connections, max_per_client=args.max_per_client,
                              header_timeout_s=args.header_timeout, trusted_proxies=args.trusted_proxy)
    config = HubConfig(args.data_dir, host=args.host, port=args.port, zmq_endpoint=args.zmq,
                       register_limit=args.register_limit, connection_limits=limits, idle_timeout_s=args.idle_timeout,
                       tx_answer_timeout_s=args.tx_timeout, nats_urls=args.nats or ())

    written = []

    def ready(hub, url):
        port = int(url.rsplit(":", 1)[1])
        local = addresses.url(addresses.local_host(args.host), port)  # before the banner: a reader may act on it
        cli_args.write_url(config.data_dir, local)
        written.append(local)
        hosts = addresses.reachable_hosts(args.host)
        urls = [addresses.url(h, port) for h in hosts]
        zmq = hub.republisher.endpoint if hub.republisher else ""
        if zmq and args.host in addresses.WILDCARDS:
            zmq = zmq.replace("://0.0.0.0:", f"://{hosts[0]}:", 1).replace("://*:", f"://{hosts[0]}:", 1)
        zmq = f"; IQ republished on {zmq} (topic = agent id)" if zmq else ""
        print(f"ria hub listening on {urls[0]}{zmq}", flush=True)
        if len(urls) > 1:
            print(f"  on all addresses: also {', '.join(urls[1:])}", flush=True)
        print(f"  page: {urls[0]}/  (admin token: {config.admin_token_path}, or `ria_hub.py page-url`)", flush=True)

    async def main():
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await serve(config, ready)
        except asyncio.CancelledError:
            pass

    try:
        asyncio.run(main())
    except ValueError as e:  # bad endpoint and the like, named by the message
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return 2
    finally:
        for url in written:
            cli_args.remove_url(config.data_dir, url)
    print("ria hub stopped", flush=True)
    return 0


def cmd_recorder(args):
    """The cluster's recorder worker: every session on the NATS data bus, as SigMF in --folder."""
    from gnuradio.ria.hub.cluster.recorder_worker import serve as serve_recorder
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    folder = os.path.abspath(os.path.expanduser(args.folder or os.path.join(args.data_dir, "recordings")))

    def ready(_worker):
        print(f"ria recorder on {', '.join(args.nats)} writing SigMF to {folder}", flush=True)

    async def main():
        task = asyncio.current_task()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
        try:
            await serve_recorder(args.nats, folder, ready)
        except asyncio.CancelledError:
            pass

    try:
        asyncio.run(main())
    except Exception as e:  # noqa: BLE001 - NATS unreachable at start, named by the message
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("ria recorder stopped", flush=True)
    return 0


def cmd_bridge(args):
    """The cluster's ZeroMQ bridge: every agent's IQ from the NATS data bus on one PUB socket."""
    from gnuradio.ria.hub.cluster.zmq_bridge import serve as serve_bridge
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    def ready(bridge):
        print(f"ria bridge on {', '.join(args.nats)}: IQ republished on {bridge.republisher.endpoint} "
              f"(topic = agent id)", flush=True)

    async def main():
        task = asyncio.current_task()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
        try:
            await serve_bridge(args.nats, args.zmq, ready)
        except asyncio.CancelledError:
            pass

    try:
        asyncio.run(main())
    except Exception as e:  # noqa: BLE001 - NATS unreachable or an endpoint it cannot bind, named by the message
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("ria bridge stopped", flush=True)
    return 0


def cluster_keys(urls):
    from gnuradio.ria.hub.cluster.keys_cli import ClusterKeys
    return ClusterKeys(urls)


def registry_for(args):
    """What `keys` and `tokens` work on: the cluster's registry with --nats, else DATA_DIR's database."""
    return cluster_keys(args.nats) if getattr(args, "nats", None) else store_for(args)


def store_for(args):
    config = HubConfig(args.data_dir)
    os.makedirs(config.data_dir, mode=0o700, exist_ok=True)
    return Store(config.db_path)


def cmd_keys(args):
    return cli_args.on_store(lambda: registry_for(args), lambda store: keys_action(args, store))


def keys_action(args, store):
    if args.keys_command == "create":
        uses = None if args.reusable else args.uses
        key_id, key = store.create_key(uses=uses, ttl_s=args.ttl, label=args.label)
        if args.json:
            print(json.dumps({"key_id": key_id, "key": key, "uses": uses, "ttl_s": args.ttl}, indent=2))
            return 0
        limits = "reusable" if uses is None else f"{uses} use{'s' if uses != 1 else ''}"
        expiry = f", expires in {args.ttl:.0f} s" if args.ttl else ""
        print(f"registration key {key_id} ({limits}{expiry}); it is shown only now:")
        print(key)
    elif args.keys_command == "list" and args.json:
        print(json.dumps([{k: v for k, v in row.items() if k != "digest"} for row in store.list_keys()],
                         indent=2))
    elif args.keys_command == "list":
        print(f"{'KEY ID':<18} {'STATE':<17} {'USES':<9} {'EXPIRES':<20} LABEL")
        for row in store.list_keys():
            uses = f"{row['uses']}/{row['max_uses'] if row['max_uses'] is not None else '∞'}"
            expires = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["expires_at"])) \
                if row["expires_at"] else "never"
            print(f"{row['key_id']:<18} {row['state']:<17} {uses:<9} {expires:<20} {printable(row['label'], 200)}")
    elif args.keys_command == "revoke":
        store.revoke_key(args.key_id)
        print(f"revoked {args.key_id}")


def client_for(args):
    """The API client for the hub of --hub, or of the hub serving from DATA_DIR (DATA_DIR/hub.url)."""
    try:
        args.hub, source = cli_args.hub_url(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    return HubClient(args.hub, admin_token(HubConfig(args.data_dir)),
                     where=source if source.endswith(cli_args.URL_FILE) else "")


def cmd_agent_admin(args):
    return session_cli.call(args, client_for, agent_admin)


def agent_admin(args, client):
    """Deletes an agent or revokes its token: through the running hub, which also closes the agent's live
    connection; straight in the database when no hub is running."""
    deleting = args.command == "delete-agent"
    try:
        if deleting:
            client.request("DELETE", f"/api/agents/{args.agent_id}")
        else:
            client.request("POST", f"/api/agents/{args.agent_id}/revoke", {})
        where = "at once, live connection closed"
    except HubError as e:
        if e.status != 0:
            raise
        store = store_for(args)
        try:
            (store.delete_agent if deleting else store.revoke_token)(args.agent_id)
        except KeyError as missing:
            print(f"error: {missing.args[0]}", file=sys.stderr)
            return 1
        finally:
            store.close()
        where = f"in {HubConfig(args.data_dir).db_path} (no hub answered at {args.hub})"
    print(f"{'deleted agent' if deleting else 'revoked the token of'} {args.agent_id} ({where})")
    return 0


def cmd_page_url(args):
    try:
        url, _ = cli_args.hub_url(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{url.rstrip('/')}/#token={admin_token(HubConfig(args.data_dir))}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ria_hub.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    cli_args.global_options(parser)
    commands = cli_args.Commands(parser)  # a command: commands.add_parser(NAME, run=FUNCTION, help=...)

    p = commands.add_parser("serve", run=cmd_serve, help="run the hub")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: the whole network)")
    p.add_argument("--port", type=int, default=8600, help="TCP port (0: any free port)")
    p.add_argument("--zmq", default="tcp://127.0.0.1:5600",
                   help="ZeroMQ PUB endpoint that republishes every agent's IQ (cf32, topic = agent id); '' turns it off")
    p.add_argument("--register-limit", type=int, default=20, help="registration attempts per client per minute")
    p.add_argument("--trusted-proxy", type=proxies, default=(), dest="trusted_proxy", metavar="ADDRESSES",
                   help="reverse proxies (IPs or networks, comma separated) whose X-Forwarded-For names the client")
    p.add_argument("--max-connections", type=int, default=512, dest="max_connections",
                   help="open connections at most; more are answered 503 (default 512)")
    p.add_argument("--max-per-client", type=int, default=64, dest="max_per_client",
                   help="open connections from one address at most (trusted proxies excepted; default 64)")
    p.add_argument("--header-timeout", type=duration, default=10.0, dest="header_timeout",
                   help="seconds a new connection has to send its request headers (default 10)")
    p.add_argument("--idle-timeout", type=duration, default=30.0, dest="idle_timeout",
                   help="seconds a kept-alive HTTP connection may wait for its next request (default 30)")
    p.add_argument("--tx-timeout", type=duration, default=10.0, dest="tx_timeout",
                   help="seconds an agent has to answer tx_start, tx_stop and tx_configure (default 10)")
    p.add_argument("--nats", type=nats_urls, metavar="URLS",
                   help="cluster mode: share keys, agents, presence, commands and IQ with other hub nodes through "
                        "NATS JetStream at these URLs (comma separated), e.g. nats://127.0.0.1:4222")

    p = commands.add_parser("recorder", run=cmd_recorder,
                            help="cluster mode: record every session on NATS as SigMF (a worker of its own)")
    p.add_argument("--nats", type=nats_urls, required=True, metavar="URLS", help="NATS URLs, comma separated")
    p.add_argument("--folder", help="where the SigMF files go (default DATA_DIR/recordings)")
    p = commands.add_parser("bridge", run=cmd_bridge,
                            help="cluster mode: every agent's IQ from NATS on one ZeroMQ PUB socket")
    p.add_argument("--nats", type=nats_urls, required=True, metavar="URLS", help="NATS URLs, comma separated")
    p.add_argument("--zmq", default="tcp://127.0.0.1:5600", help="the PUB endpoint (cf32, topic = agent id)")

    p = commands.add_parser("keys", run=cmd_keys, help="registration keys: create, list, revoke")
    keys = commands.nested(p, "keys_command")
    k = keys.add_parser("create", help="a new key, printed once")
    group = k.add_mutually_exclusive_group()
    group.add_argument("--uses", type=int, default=1, help="how many agents may register with it (default 1)")
    group.add_argument("--reusable", action="store_true", help="any number of registrations")
    k.add_argument("--ttl", type=duration, help="valid for this long: 90s, 30m, 2h, 7d (default: no expiry)")
    k.add_argument("--label", default="", help="a note for the list, e.g. 'lab 3, group B'")
    listing = keys.add_parser("list", help="all keys with their state")
    revoke = keys.add_parser("revoke", help="refuse a key from now on")
    revoke.add_argument("key_id")
    registry_commands = [k, listing, revoke]

    session_cli.add_parsers(commands, client_for)
    for name, what in (("delete-agent", "remove an agent: its token stops working and its connection closes"),
                       ("revoke-token", "lock an agent out (it stays listed; register it again to let it back)")):
        commands.add_parser(name, run=cmd_agent_admin, help=what).add_argument("agent_id")
    tx_cli.add_parsers(commands, client_for)
    voice_cli.add_parsers(commands, client_for)
    registry_commands += tokens_cli.add_parsers(commands, registry_for)
    for p in registry_commands:
        p.add_argument("--nats", type=nats_urls, metavar="URLS",
                       help="the registry of a hub cluster (the NATS URLs its nodes were started with)")
    commands.add_parser("page-url", run=cmd_page_url, help="print the live view's URL with the admin token in its "
                        "fragment")

    args = parser.parse_args(argv)
    if getattr(args, "uses", 1) < 1:
        parser.error("--uses must be at least 1")
    for flag in ("max_connections", "max_per_client"):
        if getattr(args, flag, 1) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
