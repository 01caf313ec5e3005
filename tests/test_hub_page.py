"""The hub's live view in headless Chromium: the class overview, the detail view's axes and click-to-tune, roles,
the TX facts, and screenshots checked pixel by pixel."""

import re

import pytest

from browser import CHROMIUM, Browser
from lab import RATE, call_as, start_session
from page_checks import AXES, BACKGROUND, CARDS, TICK, click, keep_for_docs, pixel, region_colours, set_input

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/setup.sh")


def open_page(lab, tmp_path, token=None, width=1920, height=1080):
    browser = Browser(f"{lab.url}/#token={token or lab.api._token}", str(tmp_path / "profile"), width, height)
    browser.set_viewport(width, height)
    return browser


def card(agent_id):
    return f"document.querySelector('.card[data-agent-id=\"{agent_id}\"]')"


def test_overview_shows_30_streaming_agents_on_one_screen(class_lab, tmp_path):
    from PIL import Image

    from class_agents import ClassOfAgents

    lab = class_lab
    group = ClassOfAgents(lab, 30)
    browser = None
    try:
        browser = open_page(lab, tmp_path)
        assert browser.wait_for("window.riaView && window.riaView.ready && innerWidth === 1920 && innerHeight === 1080")
        # every card streaming, with its mini spectrum drawn from the hub's /api/spectra
        assert browser.wait_for(f"(() => {{ const c = {CARDS}; return c.length === 30 && "
                                "c.every((x) => x.state === 'streaming' && x.drawn); })()", timeout=40)
        cards = browser.evaluate(CARDS)
        assert {c["id"] for c in cards} == {a.agent_id for a in group.agents}
        for c in cards:  # all of them within the 1920x1080 viewport: nothing below the fold
            assert c["left"] >= 0 and c["top"] >= 0 and c["right"] <= 1920 and c["bottom"] <= 1080, c
            assert re.fullmatch(r"\d+\.\d{4} MHz · 1\.024 MS/s · drops \d+", c["line"]), c["line"]
        first = next(c for c in cards if c["id"] == group.agents[0].agent_id)
        assert first["line"].startswith("100.0000 MHz")
        shot = browser.screenshot(str(tmp_path / "class_overview.png"))
        image = Image.open(shot)
        assert image.size == (1920, 1080)
        for c in cards:  # each mini spectrum shows a coloured trace, not an empty canvas
            colours = region_colours(image, (c["canvas"][0], c["canvas"][1], c["canvas"][0] + c["canvas"][2],
                                             c["canvas"][1] + c["canvas"][3]))
            assert len(colours - {BACKGROUND}) >= 3, c["id"]
        keep_for_docs(shot, "class_overview.png")
    finally:
        if browser:
            browser.close()
        group.close()


def test_detail_view_draws_axes_and_click_or_drag_retunes_the_agent(lab, serial, tmp_path):
    from PIL import Image

    agent_id, _ = lab.start_agent("page-1")
    lab.wait_agent(agent_id, lambda a: a["online"])
    start_session(lab, agent_id, serial)
    browser = open_page(lab, tmp_path, width=1600, height=1000)
    try:
        assert browser.wait_for(f"{card(agent_id)} && {card(agent_id)}.querySelector('.state').textContent") \
            == "streaming"
        assert browser.evaluate("location.hash") == ""  # the token left the address bar
        browser.evaluate(f"{card(agent_id)}.click()")
        assert browser.wait_for("window.riaView.spectrum.drawn >= 5")
        assert browser.evaluate("document.getElementById('f-peak').textContent") == "100.1000 MHz"
        # the form shows what the agent runs, from its stream_info
        assert browser.wait_for("document.getElementById('c-freq').value") == "100"
        assert browser.evaluate("document.getElementById('c-rate').value") == "1.024"
        assert browser.evaluate("document.getElementById('c-gain').value") == "30"

        axes = browser.evaluate(AXES)
        assert axes["f1"] - axes["f0"] == pytest.approx(RATE)
        labels = [t["label"] for t in axes["freqTicks"]]
        assert labels == [f"{99.5 + 0.1 * i:.1f}" for i in range(11)], labels  # 100 kHz ticks, MHz labels
        for t in axes["freqTicks"]:  # a tick mark drawn under the plot at each label
            assert browser.evaluate(pixel("spectrum", t["x"], axes["plot"]["top"] + axes["plot"]["height"] + 2)) \
                == list(TICK), t
        assert len(axes["dbTicks"]) >= 4
        steps = {round(a["db"] - b["db"], 6) for a, b in zip(axes["dbTicks"], axes["dbTicks"][1:])}
        assert len(steps) == 1 and steps.pop() > 0
        # reference level and range are the user's: the axis follows
        set_input(browser, "d-ref", "0")
        set_input(browser, "d-range", "100")
        axes = browser.evaluate(AXES)
        assert (axes["ref"], axes["range"]) == (0, 100)
        assert [t["label"] for t in axes["dbTicks"]] == ["0", "-20", "-40", "-60", "-80", "-100"]  # a line per 45 px
        # a dB label is drawn left of the plot at its line
        label_x = axes["plot"]["left"] - 14
        assert any(browser.evaluate(pixel("spectrum", label_x + dx, axes["dbTicks"][3]["y"] + dy)) != list(BACKGROUND)
                   for dx in range(-8, 8) for dy in (-2, -1, 0, 1, 2))
        # peak hold draws its own trace; zoom narrows the window
        drawn = browser.evaluate("window.riaView.spectrum.drawn")
        set_input(browser, "d-peak", True)
        assert browser.wait_for(f"window.riaView.spectrum.drawn >= {drawn + 2} && "
                                "window.riaView.spectrum.peak !== null")
        set_input(browser, "d-zoom", "4")
        axes = browser.evaluate(AXES)
        assert axes["f1"] - axes["f0"] == pytest.approx(RATE / 4)
        set_input(browser, "d-zoom", "1")

        # click-to-tune: a click at 100.2 MHz retunes the agent there (its stream_info says so)
        axes = browser.evaluate(AXES)
        assert axes["canvasWidth"] == round(axes["rect"][2])  # drawn at the size shown: CSS px = canvas px
        p, (left, top, _, _) = axes["plot"], axes["rect"]
        client_x = round(left + p["left"] + (100.2e6 - axes["f0"]) / (axes["f1"] - axes["f0"]) * p["width"])
        x = client_x - left  # mouse events land on whole CSS pixels
        expected = round((axes["f0"] + (x - p["left"]) / p["width"] * (axes["f1"] - axes["f0"])) / 1000) * 1000
        assert abs(expected - 100.2e6) <= 1000
        click(browser, client_x, top + p["top"] + 50)
        view = lab.wait_agent(agent_id, lambda a: a["stream"] and a["stream"]["center_frequency"] == expected)
        assert view["stream"]["app_id"]  # the same session, retuned
        assert browser.wait_for(f"document.getElementById('f-center').textContent === '{expected / 1e6:.4f} MHz'")
        assert browser.wait_for(f"document.getElementById('c-freq').value === '{expected / 1e6:g}'")
        lab.wait_spectrum(agent_id, lambda v: v["stream"]["center_frequency"] == expected)

        # drag: the band follows the mouse, 200 px to the right lowers the centre by 200 px worth of span
        axes = browser.wait_for(f"(() => {{ const a = {AXES}; return a && Math.abs((a.f0 + a.f1) / 2 - {expected}) < 1 "
                                "&& a; })()")
        dragged = round((expected - 200 / axes["plot"]["width"] * (axes["f1"] - axes["f0"])) / 1000) * 1000
        start_x = round(left + 600)
        click(browser, start_x, top + axes["plot"]["top"] + 50, drag_to=start_x + 200)
        lab.wait_agent(agent_id, lambda a: a["stream"] and a["stream"]["center_frequency"] == dragged)
        assert browser.wait_for(f"window.riaView.spectrum.last.center_frequency === {dragged}")
        drawn = browser.evaluate("window.riaView.spectrum.drawn")
        assert browser.wait_for(f"window.riaView.spectrum.drawn >= {drawn + 30}")  # a waterfall worth seeing

        shot = browser.screenshot(str(tmp_path / "detail_view.png"))
        image = Image.open(shot)
        rect = browser.evaluate("(() => { const r = document.getElementById('waterfall').getBoundingClientRect();"
                                " return [r.left, r.top, r.right, r.bottom]; })()")
        # the waterfall uses the colour map: many of its colours in the screenshot
        palette = set(map(tuple, zip(*[iter(browser.evaluate("Array.from(window.riaColormap)"))] * 3)))
        assert len(region_colours(image, rect) & palette) >= 10
        axes = browser.evaluate(AXES)
        for t in axes["freqTicks"]:  # the ticks are in the screenshot too
            assert image.getpixel((int(axes["rect"][0] + t["x"]),  # x is a pixel's middle, x.5
                                   int(axes["rect"][1] + p["top"] + p["height"] + 2)))[:3] == TICK
        keep_for_docs(shot, "detail_view.png")
    finally:
        browser.close()


def test_view_only_link_shows_one_agent_and_cannot_control_it(lab, tmp_path):
    from class_agents import ClassOfAgents

    group = ClassOfAgents(lab, 2)
    mine, other = group.agents
    browser = None
    try:
        result = lab.hub_cli("tokens", "create", "--role", "view", "--agent", mine.agent_id, "--label", "student 1")
        assert result.returncode == 0, result.stderr
        link = re.search(r"page link: (\S+)", result.stdout).group(1)
        token = link.split("#token=")[1]
        assert link.startswith(lab.url + "/#token=ria_viw_")
        browser = Browser(link, str(tmp_path / "profile"), 1600, 1000)
        browser.set_viewport(1600, 1000)
        assert browser.wait_for("window.riaView && window.riaView.ready")
        assert browser.evaluate("document.getElementById('role').textContent") == f"view-only (agent {mine.agent_id})"
        # only its agent, opened at once; the controls are not there
        assert browser.wait_for("window.riaView.selected") == mine.agent_id
        assert browser.evaluate("document.querySelectorAll('.card').length") == 1
        assert browser.evaluate("document.getElementById('controls').hidden")
        assert not browser.evaluate("document.getElementById('view-only').hidden")
        assert browser.wait_for("window.riaView.spectrum.drawn >= 2")
        axes = browser.evaluate(AXES)
        click(browser, axes["rect"][0] + axes["plot"]["left"] + 100, axes["rect"][1] + 60)
        assert browser.evaluate("window.riaView.lastTune") is None  # a click does not tune
        # and the API refuses, saying why; nothing reached the agent
        for path, body in ((f"/api/agents/{mine.agent_id}/configure", {"radio_config": {"center_frequency": 101e6}}),
                           (f"/api/agents/{mine.agent_id}/start", {}), (f"/api/agents/{mine.agent_id}/stop", {})):
            status, answer = call_as(lab, token, "POST", path, body)
            assert status == 403 and "view-only" in answer, (path, answer)
        status, answer = call_as(lab, token, "GET", f"/api/agents/{other.agent_id}/spectrum")
        assert (status, answer) == (403, f"this token is for agent {mine.agent_id} only, not {other.agent_id}")
        assert not [m for m in mine.agent.received if isinstance(m, dict) and m.get("type") != "ping"]
    finally:
        if browser:
            browser.close()
        group.close()


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
        browser = open_page(lab, tmp_path, width=1280, height=1000)
        assert browser.wait_for(f"{card(agent_id)} && {card(agent_id)}.querySelector('.state').textContent") \
            == "streaming"
        assert browser.wait_for(f"{card(agent_id)}.dataset.drawn")  # the overview goes on drawing
        assert "<img" in browser.wait_for(f"{card(hostile_id)} && {card(hostile_id)}.textContent")  # shown as text
        browser.evaluate(f"{card(agent_id)}.click()")
        assert browser.wait_for("window.riaView.spectrum.drawn >= 5")  # and so does the detail view
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
        browser = open_page(lab, tmp_path, width=1280, height=1000)
        tx = f"{card(agent_id)}.querySelector('.tx').dataset.tx"
        assert browser.wait_for(f"{card(agent_id)} && {tx} === 'transmitting'")
        browser.evaluate(f"{card(agent_id)}.click()")
        assert browser.wait_for("document.getElementById('tx-state').textContent") == "transmitting"
        assert browser.evaluate("document.getElementById('tx-caps').textContent") == \
            "gain ≤ 10 dB, ≤ ∞ s, 433.050–434.790 MHz"
        assert browser.wait_for("Number(document.getElementById('tx-sent').textContent) > 0")
        assert browser.wait_for("Number(document.getElementById('tx-played').textContent) > 0")
        assert browser.evaluate("document.getElementById('tx-radio').textContent") == "433.9200 MHz, 3 dB"
        lab.api.tx_stop(agent_id)
        assert browser.wait_for(f"{tx} === 'offered'")
        assert browser.wait_for("document.getElementById('tx-state').textContent").startswith("idle (last: done")
    finally:
        if browser:
            browser.close()
        agent.close()

