"""When the hub counts an agent as gone: measured on the agent's own connection and heartbeats (fake clock)."""

from gnuradio.ria.hub.agent_link import DEFAULT_INTERVAL, MISSED_HEARTBEATS, AgentLink


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def test_a_new_connection_gets_three_default_intervals_for_its_first_heartbeat():
    clock = Clock(10_000.0)  # the hub has been up for hours
    link = AgentLink("agent-1", "a", ws=None, hub=None, clock=clock)
    assert not link.heartbeat_overdue()
    clock.now += MISSED_HEARTBEATS * DEFAULT_INTERVAL - 1
    assert not link.heartbeat_overdue()
    clock.now += 2
    assert link.heartbeat_overdue()


def test_overdue_after_three_of_the_agents_own_intervals():
    clock = Clock(0.0)
    link = AgentLink("agent-1", "a", ws=None, hub=None, clock=clock)
    link.on_text('{"type": "heartbeat", "hardware": ["mock"], "status": "idle"}')
    clock.now += 2.0
    link.on_text('{"type": "heartbeat", "hardware": ["mock"], "status": "idle"}')
    assert link.online and link.interval == 2.0
    clock.now += 3 * 2.0 - 0.1
    assert not link.heartbeat_overdue()
    clock.now += 0.2
    assert link.heartbeat_overdue()
