"""apps/ria_agent.py as a user runs it: the demo, detect, help; and the existing RIA agent against our hub."""

import os
import re
import shutil

import pytest

from hub_server import TOKEN
from lab import Lab
from processes import AGENT_APP, REPO, WAIT, Process, python, run_app

RIA_AGENT = os.path.join(REPO, ".venv-ria-agent", "bin", "ria-agent")


def test_demo_exits_cleanly_and_shows_the_emitter_move(serial):
    result = run_app(AGENT_APP, "demo", "--duration", "6", "--port", "0", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "registered with a fresh single-use key" in out and "live view: http://127.0.0.1:" in out
    before = re.findall(r"center 100\.0000 MHz .* strongest emitter 100\.1000 MHz \(\+100\.0 kHz\)", out)
    after = re.findall(r"center 100\.3000 MHz .* strongest emitter 100\.1000 MHz \(-200\.0 kHz\)", out)
    assert before and after, out
    assert out.rstrip().endswith("ria demo: stopped")


def test_detect_lists_riasim_and_the_installed_drivers():
    result = run_app(AGENT_APP, "detect", "--simulator")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^mock\s+riasim\s+", result.stdout, re.M)
    assert "SoapySDR drivers installed:" in result.stdout and "riasim" in result.stdout


def soapy_alone(tmp_path, alias=""):
    """An environment in which SoapySDR loads riasim and no other driver (SOAPY_SDR_ROOT points elsewhere), so this
    machine has no real radio; with `alias`, riasim also enumerates and opens as that real driver (RIASIM_ALIAS)."""
    root = tmp_path / "soapy-root"
    root.mkdir(exist_ok=True)
    return {"SOAPY_SDR_ROOT": str(root), "RIASIM_ALIAS": alias}


def detected(stdout):
    return re.findall(r"^(\S+)\s+(\S+)\s+\S+\s+RIA simulated radio", stdout, re.M)


def test_detect_lists_real_radios_first_and_the_simulator_only_when_asked(tmp_path):
    env = soapy_alone(tmp_path, alias="rtlsdr")
    plain = run_app(AGENT_APP, "detect", env=env)
    assert plain.returncode == 0, plain.stderr
    assert detected(plain.stdout) == [("rtlsdr", "rtlsdr")], plain.stdout
    assert "add --simulator to offer it" in plain.stdout
    offered = run_app(AGENT_APP, "detect", "--simulator", env=env)
    assert detected(offered.stdout) == [("rtlsdr", "rtlsdr"), ("mock", "riasim")], offered.stdout


def run_agent(hub, tmp_path, env, *flags):
    return Process(python(AGENT_APP, "--config", str(tmp_path / "no-credentials.json"), "run", "--url", hub.url(),
                          "--token", TOKEN, "--heartbeat-interval", "1", *flags), env=env)


def test_run_offers_real_radios_first_and_a_start_without_device_opens_the_first(hub, tmp_path, serial):
    agent = run_agent(hub, tmp_path, soapy_alone(tmp_path, alias="rtlsdr"), "--simulator")
    try:
        assert hub.wait_text("heartbeat", WAIT)["hardware"] == ["rtlsdr", "mock"]
        hub.send({"type": "start", "app_id": "a", "radio_config": {"sample_rate": 1e6}})
        assert hub.wait_text("status", WAIT) == {"type": "status", "status": "streaming", "app_id": "a"}
        agent.wait_line(r"opened device 'driver=rtlsdr,serial=rtlsdr0'")
    finally:
        agent.stop()


def test_run_without_a_radio_offers_nothing_and_never_the_simulator_unasked(hub, tmp_path, serial):
    agent = run_agent(hub, tmp_path, soapy_alone(tmp_path))
    try:
        assert hub.wait_text("heartbeat", WAIT)["hardware"] == []
        agent.wait_line(r"no radio attached")
        hub.send({"type": "start", "app_id": "a", "radio_config": {"sample_rate": 1e6}})
        assert hub.wait_text("error", WAIT)["message"].startswith("no radio attached: the start names no device")
        for device in ("mock", f"driver=riasim,serial={serial}"):
            hub.send({"type": "start", "app_id": "b", "radio_config": {"device": device}})
        assert hub.wait_text("error", WAIT, count=3)
        assert [e["message"].split(" is the simulated radio, which this agent does not offer")[0]
                for e in hub.texts("error")[1:]] == ["device 'mock'", f"device 'driver=riasim,serial={serial}'"]
        beats = len(hub.texts("heartbeat"))
        assert hub.wait_for(lambda s: len(s.texts("heartbeat")) > beats, WAIT)  # still up, and idle
        assert hub.texts("status") == [] and hub.texts("heartbeat")[-1]["status"] == "idle"
    finally:
        agent.stop()


def test_run_names_the_simulator_only_with_simulator():
    result = run_app(AGENT_APP, "--config", "/nonexistent/agent.json", "run", "--url", "ws://127.0.0.1:9/x",
                     "--token", "t", "--hardware", "mock")
    assert result.returncode == 78 and "add --simulator to offer it" in result.stderr, result.stderr


@pytest.mark.parametrize("mode,who", [(0o644, "everyone"), (0o640, "its group")])
def test_a_config_file_others_can_read_is_refused_with_the_fix(tmp_path, mode, who):
    config = tmp_path / "agent.json"
    config.write_text('{"hub_url": "http://127.0.0.1:9", "agent_id": "agent-1", "token": "tok-SECRET-4711"}')
    config.chmod(mode)
    result = run_app(AGENT_APP, "--config", str(config), "run", "--simulator")
    assert result.returncode == 78, result.stderr  # EX_CONFIG: the packaged unit does not restart on it
    assert f"holds the agent's token and is readable by {who} (mode 0{mode:o})" in result.stderr
    assert f"chmod 600 {config}" in result.stderr and "tok-SECRET-4711" not in result.stderr + result.stdout


def test_help_teaches_the_first_steps():
    result = run_app(AGENT_APP, "--help")
    assert "register --hub" in result.stdout and "run --health-port" in result.stdout
    result = run_app(AGENT_APP, "register", "--hub", "ftp://x", "--api-key", "k")
    assert result.returncode == 1 and "http:// or https://" in result.stderr


@pytest.mark.skipif(not os.path.exists(RIA_AGENT), reason="scripts/test.sh installs ria-toolkit-oss 0.1.7")
def test_existing_ria_agent_registers_and_streams_into_our_hub(tmp_path):
    lab = Lab(str(tmp_path))
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home)}
    try:
        _, key = lab.create_key()
        register = Process([RIA_AGENT, "register", "--hub", lab.url, "--api-key", key, "--name", "legacy-1"], env=env)
        assert register.proc.wait(60) == 0, register.output
        agent_id = register.wait_line(r"Registered agent: (agent-\w+)").group(1)
        agent = Process([RIA_AGENT, "stream"], env=env)
        lab.processes.append(agent)
        view = lab.wait_agent(agent_id, lambda a: a["online"], timeout=60)
        assert view["agent"] is None  # no gr-ria extensions: the hub must not expect acks
        answer = lab.api.start(agent_id, {"device": "mock", "center_frequency": 915e6, "sample_rate": 1e6,
                                          "buffer_size": 4096})
        assert answer["status"] == "streaming" and answer["acked"] is None
        view = lab.wait_agent(agent_id, lambda a: (a["stream"] or {}).get("frames", 0) > 20)
        assert view["stream"]["samples"] == view["stream"]["frames"] * 4096  # cf32 frames of buffer_size
        assert lab.api.stop(agent_id)["status"] == "idle"
    finally:
        lab.close()
        shutil.rmtree(home, ignore_errors=True)
