"""Who may do what on the hub's API and page.

The admin token (file admin_token) may do everything. Access tokens, made with `ria_hub.py tokens create`
and kept as digests in the store, carry one role:

- teacher: sees and controls every agent (sessions, TX, recordings); cannot manage keys, tokens or agents;
- control: sees one agent and starts, stops and retunes it (a student's control link);
- view: sees one agent, or every agent when made without one, and changes nothing (a view-only link).
"""

from . import credentials

ROLES = ("teacher", "control", "view")
PREFIXES = {"teacher": "ria_tch_", "control": "ria_ctl_", "view": "ria_viw_"}
LEVELS = ("view", "control", "teacher", "admin")  # what a route needs, weakest first
_RANK = {"view": 0, "control": 1, "teacher": 2, "admin": 3}
_WHAT = {"control": "start, stop or retune agents", "teacher": "transmit, record or list recordings",
         "admin": "manage registration keys, access tokens and agents"}


def check_grant(role, agent_id):
    """Raises ValueError unless (role, agent_id) is a token the hub can make."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if agent_id is not None and not isinstance(agent_id, str):
        raise ValueError("agent_id must be an agent id such as agent-1a2b3c4d5e6f")
    if role == "control" and agent_id is None:
        raise ValueError("a control token is for one agent: give its agent_id (a teacher token controls all)")
    if role == "teacher" and agent_id is not None:
        raise ValueError("a teacher token is for every agent; for one agent make a control token")


class Access:
    """What one request's token allows: role, and the one agent it is scoped to (None: every agent)."""

    def __init__(self, role, agent_id=None, token_id=None):
        self.role, self.agent_id, self.token_id = role, agent_id, token_id

    def sees(self, agent_id):
        return self.agent_id is None or self.agent_id == agent_id

    def refusal(self, level, agent_id=None):
        """None when allowed, else the reason it is not (for a 403 body)."""
        if _RANK[self.role] < _RANK[level]:
            kind = "view-only" if self.role == "view" else f"a {self.role} token"
            return f"this token is {kind}: it cannot {_WHAT[level]}"
        if agent_id is not None and not self.sees(agent_id):
            return f"this token is for agent {self.agent_id} only, not {agent_id}"
        return None

    def as_dict(self):
        return {"role": self.role, "agent_id": self.agent_id,
                "can_control": _RANK[self.role] >= _RANK["control"],
                "can_admin": self.role == "admin"}


def access_for(token, admin_token, store):
    """The Access of a bearer token, or None when it is no token of this hub."""
    if not token:
        return None
    if credentials.same_secret(token, admin_token):
        return Access("admin")
    row = store.access_for_token(token)
    return Access(row["role"], row["agent_id"], row["token_id"]) if row else None
