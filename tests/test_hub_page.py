"""The hub's live view in headless Chromium: the agent online, the spectrum and waterfall drawn, the controls work."""

import os

import pytest

from browser import CHROMIUM, Browser
from lab import start_session

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/setup.sh")

# Pixels of the spectrum canvas that differ from its background: 0 means nothing was drawn.
DRAWN_PIXELS = """(() => {
  const c = document.getElementById('spectrum'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 1] > 150 && d[i] < 150) n++; return n; })()"""


def test_page_shows_the_agent_online_and_draws_its_spectrum(lab, serial, tmp_path):
    agent_id, _ = lab.start_agent("page-1")
    lab.wait_agent(agent_id, lambda a: a["online"])
    start_session(lab, agent_id, serial)
    browser = Browser(f"{lab.url}/#token={lab.api._token}", str(tmp_path / "profile"))
    try:
        row = f"document.querySelector('tr[data-agent-id=\"{agent_id}\"]')"
        assert browser.wait_for(f"{row} && {row}.querySelector('.state').textContent") == "streaming"
        assert browser.wait_for("window.riaView.spectraDrawn >= 5")
        assert browser.evaluate(DRAWN_PIXELS) > 500  # a trace, not an empty canvas
        assert browser.evaluate("document.getElementById('f-peak').textContent") == "100.1000 MHz"
        assert browser.evaluate("location.hash") == ""  # the token left the address bar
        # the retune control goes through the hub to the agent
        browser.evaluate("document.getElementById('c-freq').value = '100.05'; "
                         "document.getElementById('b-retune').click()")
        assert browser.wait_for("document.getElementById('f-center').textContent") and \
            browser.wait_for("document.getElementById('f-center').textContent === '100.0500 MHz'")
        shot = browser.screenshot(str(tmp_path / "hub-page.png"))
        assert os.path.getsize(shot) > 10000
        if os.environ.get("RIA_SCREENSHOT"):
            browser.screenshot(os.environ["RIA_SCREENSHOT"])
    finally:
        browser.close()


def test_page_without_token_asks_for_it(lab, tmp_path):
    browser = Browser(f"{lab.url}/", str(tmp_path / "profile"))
    try:
        assert browser.wait_for("document.getElementById('signin') && !document.getElementById('signin').hidden")
        assert browser.evaluate("document.getElementById('main').hidden")
    finally:
        browser.close()


def test_page_keeps_updating_whatever_another_agent_sends(lab, serial, tmp_path):
    from scripted_agent import ScriptedAgent

    agent_id, _ = lab.start_agent("page-2")
    hostile_id, token = lab.register_api("hostile")
    hostile = ScriptedAgent(lab.url, token, hostile_id)
    browser = None
    try:
        hostile.heartbeat(hardware=["<img src=x onerror=alert(1)>"], stats={"frames_sent": float("nan")},
                          agent={"name": "x", "version": "1"})
        hostile.send('{"type":"status","status":"streaming","app_id":"h"}')
        hostile.send('{"type":"stream_info","app_id":"h","sample_rate":1e6,"center_frequency":1e8,"gain":NaN,'
                     '"sample_format":"cf32","sample_index":0}')
        lab.wait_agent(agent_id, lambda a: a["online"])
        start_session(lab, agent_id, serial)
        browser = Browser(f"{lab.url}/#token={lab.api._token}", str(tmp_path / "profile"))
        row = f"document.querySelector('tr[data-agent-id=\"{agent_id}\"]')"
        assert browser.wait_for(f"{row} && {row}.querySelector('.state').textContent") == "streaming"
        assert browser.wait_for("window.riaView.spectraDrawn >= 5")  # the page goes on drawing
        hostile_row = f"document.querySelector('tr[data-agent-id=\"{hostile_id}\"]')"
        assert "<img" in browser.wait_for(f"{hostile_row} && {hostile_row}.textContent")  # shown as text
        assert browser.evaluate("document.querySelectorAll('img').length") == 0
    finally:
        if browser:
            browser.close()
        hostile.close()


def test_page_shows_the_tx_caps_and_the_tx_session(lab, tmp_path):
    from gnuradio.ria.wire.tx import Interlocks
    from scripted_agent import ScriptedAgent, TxPlayer

    agent_id, token = lab.register_api("tx-page")
    agent = ScriptedAgent(lab.url, token, agent_id)
    browser = None
    try:
        player = TxPlayer(agent, Interlocks(True, max_gain_db=10, allowed_freq_ranges=[[433.05e6, 434.79e6]]),
                          play_rate=200e3)
        player.heartbeat()
        lab.wait_agent(agent_id, lambda a: a["online"])
        lab.api.tx_start(agent_id, {"tx_sample_rate": 200e3, "tx_center_frequency": 433.92e6, "tx_gain": 3,
                                    "device": "mock"}, {"kind": "tone", "offset_hz": 1e4, "duration_s": 30})
        browser = Browser(f"{lab.url}/#token={lab.api._token}", str(tmp_path / "profile"))
        row = f"document.querySelector('tr[data-agent-id=\"{agent_id}\"]')"
        assert browser.wait_for(f"{row} && {row}.querySelector('.tx').textContent === 'transmitting'")
        browser.evaluate(f"{row}.click()")
        assert browser.wait_for("document.getElementById('tx-state').textContent") == "transmitting"
        assert browser.evaluate("document.getElementById('tx-caps').textContent") == \
            "gain ≤ 10 dB, ≤ ∞ s, 433.050–434.790 MHz"
        assert browser.wait_for("Number(document.getElementById('tx-sent').textContent) > 0")
        assert browser.wait_for("Number(document.getElementById('tx-played').textContent) > 0")
        assert browser.evaluate("document.getElementById('tx-radio').textContent") == "433.9200 MHz, 3 dB"
        lab.api.tx_stop(agent_id)
        assert browser.wait_for(f"{row}.querySelector('.tx').textContent === 'offered'")
        assert browser.wait_for("document.getElementById('tx-state').textContent").startswith("idle (last: done")
    finally:
        if browser:
            browser.close()
        agent.close()
