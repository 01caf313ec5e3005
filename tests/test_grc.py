"""GRC: every block file is complete, and every example compiles with grcc (and the headless one runs)."""

import glob
import os

import pytest
import yaml

from processes import Process, grcc, python, run_app

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCK_FILES = sorted(glob.glob(os.path.join(ROOT, "grc", "*.block.yml")))
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "**", "*.grc"), recursive=True))


def test_there_is_something_to_check():
    assert BLOCK_FILES and EXAMPLES


@pytest.mark.parametrize("path", BLOCK_FILES, ids=os.path.basename)
def test_block_file_is_complete(path):
    with open(path) as f:
        block = yaml.safe_load(f)
    assert block["file_format"] == 1
    assert block["id"] == os.path.basename(path)[: -len(".block.yml")]
    assert block["category"] == "[RIA]"
    assert len(block.get("documentation", "").strip()) > 200, "documentation: must teach the block"


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_example_compiles(path, tmp_path):
    grcc(path, tmp_path)
    with open(path) as f:
        flowgraph_id = yaml.safe_load(f)["options"]["parameters"]["id"]
    assert (tmp_path / f"{flowgraph_id}.py").exists()


def test_headless_example_runs(tmp_path, serial):
    grcc(os.path.join(ROOT, "examples", "sdr_source_headless.grc"), tmp_path)
    result = run_app(str(tmp_path / "sdr_source_headless.py"), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "(event . streaming)" in result.stdout


def test_wired_agent_example_streams_to_a_hub(tmp_path, serial):
    """The generated flowgraph of the hand-wired example, run as a process against a real hub."""
    from hub_server import HubServer

    grcc(os.path.join(ROOT, "examples", "iq_agent_wired.grc"), tmp_path)
    hub = HubServer(token="lab-token").start()
    agent = Process(python(str(tmp_path / "iq_agent_wired.py"), "--url", hub.url(), "--token", "lab-token"))
    try:
        assert hub.wait_text("heartbeat", 30), "the example never connected"
        hub.send({"type": "start", "app_id": "lab", "radio_config": {
            "device": f"driver=riasim,serial={serial}", "sample_rate": 1e6, "center_frequency": 433.9e6}})
        assert hub.wait_text("status", 30) == {"type": "status", "status": "streaming", "app_id": "lab"}
        assert hub.wait_for(lambda s: len(s.binary()) >= 5, 30)
        assert hub.wait_text("stream_info")["center_frequency"] == 433.9e6
    finally:
        agent.stop()
        hub.stop()
