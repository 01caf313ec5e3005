"""Roles on a real hub process: teacher, control and view tokens made with `ria_hub.py tokens` and /api/tokens,
what each may do (403 naming why when not), revocation, and the checks on what a token is made with."""

import os
import re

import pytest

from class_agents import ClassOfAgents
from lab import call_as


@pytest.fixture
def pair(lab):
    group = ClassOfAgents(lab, 2)
    yield group.agents
    group.close()


def cli_token(lab, *args):
    result = lab.hub_cli("tokens", "create", *args)
    assert result.returncode == 0, result.stderr
    token_id = re.search(r"token (tok-\w+) for", result.stdout).group(1)
    return token_id, result.stdout.strip().splitlines()[1]


def get(lab, token, path):
    return call_as(lab, token, "GET", path)


def post(lab, token, path, body):
    return call_as(lab, token, "POST", path, body)


def configures(agent):
    return [m for m in agent.agent.received if isinstance(m, dict) and m.get("type") == "configure"]


def retune(lab, token, agent, hz):
    return post(lab, token, f"/api/agents/{agent.agent_id}/configure", {"radio_config": {"center_frequency": hz}})


def test_control_token_controls_its_agent_only(lab, pair):
    mine, other = pair
    _, token = cli_token(lab, "--role", "control", "--agent", mine.agent_id)
    assert token.startswith("ria_ctl_")
    status, answer = retune(lab, token, mine, 100.5e6)
    assert status == 200 and answer["error"] is None
    lab.wait_agent(mine.agent_id, lambda a: a["stream"]["center_frequency"] == 100.5e6)
    status, answer = retune(lab, token, other, 100.5e6)
    assert (status, answer) == (403, f"this token is for agent {mine.agent_id} only, not {other.agent_id}")
    assert not configures(other)
    status, answer = get(lab, token, "/api/agents")
    assert [a["agent_id"] for a in answer["agents"]] == [mine.agent_id]  # it sees only its agent
    assert get(lab, token, "/api/me")[1] == {"role": "control", "agent_id": mine.agent_id, "can_control": True,
                                             "can_admin": False}
    status, answer = get(lab, token, "/api/spectra?bins=64")
    assert status == 200 and set(answer["spectra"]) <= {mine.agent_id}
    for method, path in (("GET", "/api/keys"), ("GET", "/api/tokens"), ("GET", "/api/recordings"),
                         ("POST", f"/api/agents/{mine.agent_id}/tx/stop"),
                         ("DELETE", f"/api/agents/{mine.agent_id}")):
        status, answer = call_as(lab, token, method, path, {} if method == "POST" else None)
        assert status == 403 and answer.startswith("this token is a control token: it cannot"), path


def test_view_token_for_every_agent_sees_all_and_changes_nothing(lab, pair):
    _, token = cli_token(lab, "--role", "view", "--label", "projector")
    assert token.startswith("ria_viw_")
    status, answer = get(lab, token, "/api/agents")
    assert status == 200 and {a["agent_id"] for a in answer["agents"]} == {a.agent_id for a in pair}
    for agent in pair:
        status, answer = retune(lab, token, agent, 101e6)
        assert (status, answer) == (403, "this token is view-only: it cannot start, stop or retune agents")
        assert not configures(agent)
    status, answer = post(lab, token, "/api/tokens", {"role": "teacher"})
    assert status == 403  # it cannot make itself a better one


def test_teacher_token_controls_every_agent_but_manages_nothing(lab, pair):
    status, made = post(lab, lab.api._token, "/api/tokens", {"role": "teacher", "label": "Ms Smith"})
    assert status == 200 and made["token"].startswith("ria_tch_")
    token = made["token"]
    for i, agent in enumerate(pair):
        status, answer = retune(lab, token, agent, 102e6 + i * 1e6)
        assert status == 200, answer
        lab.wait_agent(agent.agent_id, lambda a, f=102e6 + i * 1e6: a["stream"]["center_frequency"] == f)
    status, answer = get(lab, token, "/api/recordings")
    assert status == 200
    status, answer = get(lab, token, "/api/spectra?bins=100")
    assert (status, answer) == (400, "bins must be one of 64, 128, 256, 512")
    ok, spectra = lab._poll(lambda: get(lab, token, "/api/spectra?bins=512")[1]["spectra"], lambda s: len(s) == 2, 20)
    assert ok and all(len(s["bins"]) == 512 for s in spectra.values())
    status, answer = get(lab, token, "/api/keys")
    assert (status, answer) == (403, "this token is a teacher token: it cannot manage registration keys, "
                                              "access tokens and agents")
    # revoked: refused at once, and listed as revoked without any secret
    status, _ = call_as(lab, lab.api._token, "DELETE", f"/api/tokens/{made['token_id']}")
    assert status == 200
    assert retune(lab, token, pair[0], 103e6)[0] == 401
    listed = get(lab, lab.api._token, "/api/tokens")[1]["tokens"]
    row = next(t for t in listed if t["token_id"] == made["token_id"])
    assert row["revoked_at"] and row["label"] == "Ms Smith" and "digest" not in row and "token" not in row
    assert call_as(lab, lab.api._token, "DELETE", f"/api/tokens/{made['token_id']}")[0] == 404


@pytest.mark.parametrize("body, message", [
    ({"role": "owner"}, "role must be one of teacher, control, view, got 'owner'"),
    ({"role": ["view"]}, "role must be one of teacher, control, view, got ['view']"),
    ({"role": "control"}, "a control token is for one agent: give its agent_id (a teacher token controls all)"),
    ({"role": "teacher", "agent_id": "agent-1"},
     "a teacher token is for every agent; for one agent make a control token"),
    ({"role": "view", "agent_id": "agent-nosuch"}, "no agent agent-nosuch"),
    ({"role": "view", "agent_id": 7}, "agent_id must be an agent id such as agent-1a2b3c4d5e6f"),
    ({"role": "view", "label": "a\nb"}, "label must be printable text of at most 200 characters"),
])
def test_a_token_is_made_only_from_a_good_call_as(lab, body, message):
    status, answer = post(lab, lab.api._token, "/api/tokens", body)
    assert (status, answer) == (400, message)
    assert get(lab, lab.api._token, "/api/tokens")[1]["tokens"] == []  # nothing was stored


def test_tokens_cli_lists_and_revokes(lab, pair):
    token_id, token = cli_token(lab, "--role", "view", "--agent", pair[0].agent_id, "--label", "bench 3")
    listed = lab.hub_cli("tokens", "list")
    assert re.search(rf"{token_id}\s+view\s+{pair[0].agent_id}\s+valid\s+.*bench 3", listed.stdout), listed.stdout
    assert token not in listed.stdout
    assert lab.hub_cli("tokens", "revoke", token_id).stdout.strip() == f"revoked {token_id}"
    assert get(lab, token, "/api/agents")[0] == 401
    again = lab.hub_cli("tokens", "revoke", token_id)
    assert again.returncode == 1 and f"access token {token_id} is already revoked" in again.stderr
    bad = lab.hub_cli("tokens", "create", "--role", "control")
    assert bad.returncode == 1 and "a control token is for one agent" in bad.stderr
    assert token not in lab.hub.output  # a token never reaches the hub's log


def test_store_keeps_digests_only_and_forgets_an_agents_tokens_with_it(tmp_path):
    from gnuradio.ria.hub import credentials
    from gnuradio.ria.hub.store import Store

    path = str(tmp_path / "hub.sqlite")
    store = Store(path)
    try:
        key = store.create_key(uses=2)[1]
        agent_id, _ = store.register(key, "bench-1")
        token_id, token = store.create_access_token("control", agent_id, "bench 1")
        assert store.access_for_token(token) == {"token_id": token_id, "role": "control", "agent_id": agent_id}
        assert store.access_for_token("ria_ctl_\udcff") is None and store.access_for_token("") is None
        written = b""
        for name in (path, path + "-wal"):  # WAL: what was written may not be in the main file yet
            if os.path.exists(name):
                with open(name, "rb") as f:
                    written += f.read()
        assert credentials.digest(token).encode() in written and token.encode() not in written
        store.delete_agent(agent_id)
        assert store.access_for_token(token) is None and store.list_access_tokens() == []
    finally:
        store.close()
