"""`ria_hub.py tokens`: page and API links with a role (roles.py) for a teacher or a student.

Works on the hub's database directly, like `keys`, so the hub need not be running; a token works at once.
"""

import json
import time

from . import cli_args, roles
from .limits import printable


def add_parsers(commands, registry_for):
    """Adds `tokens create|list|revoke`; returns those three parsers."""
    p = commands.add_parser("tokens", help="page/API links with a role: teacher (all), control (one agent), "
                                           "view (read-only)")
    tokens = commands.nested(p, "tokens_command")
    t = tokens.add_parser("create", help="a new token, printed once with the page link that signs in with it")
    t.add_argument("--role", required=True, choices=roles.ROLES,
                   help="teacher: control every agent; control: one agent; view: look, never change")
    t.add_argument("--agent", dest="agent_id", help="the one agent it is for (needed for control; optional for view)")
    t.add_argument("--label", default="", help="a note for the list, e.g. 'Alice, bench 3'")
    listing = tokens.add_parser("list", help="all tokens with their role, agent and state")
    revoke = tokens.add_parser("revoke", help="refuse a token from now on")
    revoke.add_argument("token_id")
    p.set_defaults(run=lambda args: cli_args.on_store(lambda: registry_for(args), lambda store: run(args, store)))
    return [t, listing, revoke]


def run(args, store):
    if args.tokens_command == "create":
        token_id, token = store.create_access_token(args.role, args.agent_id, args.label)
        link = f"{cli_args.hub_url(args)[0].rstrip('/')}/#token={token}"
        if args.json:
            print(json.dumps({"token_id": token_id, "role": args.role, "agent_id": args.agent_id,
                              "token": token, "page_link": link}))
            return 0
        scope = f"agent {args.agent_id}" if args.agent_id else "every agent"
        print(f"{args.role} token {token_id} for {scope}; it is shown only now:")
        print(token)
        print(f"page link: {link}")
    elif args.tokens_command == "list" and args.json:
        print(json.dumps([dict(row) for row in store.list_access_tokens()]))
    elif args.tokens_command == "list":
        print(f"{'TOKEN ID':<18} {'ROLE':<8} {'AGENT':<20} {'STATE':<8} {'CREATED':<20} LABEL")
        for row in store.list_access_tokens():
            created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["created_at"]))
            state = "revoked" if row["revoked_at"] else "valid"
            print(f"{row['token_id']:<18} {row['role']:<8} {row['agent_id'] or 'all':<20} {state:<8} "
                  f"{created:<20} {printable(row['label'], 200)}")
    elif args.tokens_command == "revoke":
        store.revoke_access_token(args.token_id)
        print(f"revoked {args.token_id}")
