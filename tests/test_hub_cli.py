"""apps/ria_hub.py as a teacher types it: global options anywhere, the running hub found from its data folder,
text for people and JSON with --json, and a URL students can open when the hub listens on every address."""

import json
import os
import re
import socket
import urllib.request

from gnuradio.ria.hub import addresses
from lab import RATE, Lab
from processes import HUB_APP, run_app


def cli(data_dir, *args):
    """ria_hub.py with --data-dir only: no --hub, so it must find the hub by itself."""
    return run_app(HUB_APP, *args[:1], "--data-dir", data_dir, *args[1:])


def test_global_options_go_before_or_after_the_command(lab):
    agent_id, _ = lab.register_api("anywhere-1")
    for argv in (["--json", "--data-dir", lab.data_dir, "agents"],
                 ["agents", "--data-dir", lab.data_dir, "--json"],
                 ["--data-dir", lab.data_dir, "agents", "--json", "--hub", lab.url]):
        result = run_app(HUB_APP, *argv)
        assert result.returncode == 0, (argv, result.stderr)
        assert [a["agent_id"] for a in json.loads(result.stdout)] == [agent_id], argv
    created = run_app(HUB_APP, "keys", "create", "--uses", "2", "--data-dir", lab.data_dir, "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["key"].startswith("ria_reg_") and key["uses"] == 2
    listed = run_app(HUB_APP, "keys", "list", "--json", "--data-dir", lab.data_dir)
    assert key["key_id"] in [k["key_id"] for k in json.loads(listed.stdout)]
    assert "digest" not in listed.stdout and key["key"] not in listed.stdout


def test_commands_find_the_running_hub_from_its_data_folder(tmp_path):
    lab = Lab(str(tmp_path))
    url_file = os.path.join(lab.data_dir, "hub.url")
    try:
        with open(url_file) as f:
            assert f.read().strip() == lab.url  # any free port: the default 8600 would be wrong
        listing = cli(lab.data_dir, "agents")
        assert listing.returncode == 0 and listing.stdout.startswith("AGENT "), listing.stderr
        page = cli(lab.data_dir, "page-url")
        assert page.stdout.startswith(lab.url + "/#token="), page.stdout
        assert lab.stop_hub() == 0
        assert not os.path.exists(url_file), "serve must remove DATA_DIR/hub.url when it stops"
    finally:
        lab.close()


def test_a_stale_or_garbled_hub_url_is_named(tmp_path):
    data_dir = tmp_path / "hub"
    data_dir.mkdir()
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (data_dir / "hub.url").write_text(f"http://127.0.0.1:{port}\n")
    result = cli(str(data_dir), "agents")
    assert result.returncode == 1
    assert f"cannot reach the hub at http://127.0.0.1:{port} (from {data_dir / 'hub.url'})" in result.stderr
    (data_dir / "hub.url").write_text("javascript:alert(1)\n" + "x" * 10000)
    result = cli(str(data_dir), "start", "agent-1")
    assert result.returncode == 2 and "does not hold a hub URL" in result.stderr and "Traceback" not in result.stderr


def test_start_configure_stop_print_words_by_default_and_json_when_asked(lab, serial):
    agent_id, _ = lab.start_agent("words-1")
    lab.wait_agent(agent_id, lambda a: a["online"])
    started = cli(lab.data_dir, "start", agent_id, "--device", f"driver=riasim,serial={serial}", "--freq", "100e6",
                  "--rate", str(RATE), "--sample-format", "cs8")
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == (f"{agent_id} is streaming (device driver=riasim,serial={serial}, "
                                      "center 100 MHz, rate 1.024 MS/s, sample format cs8)")
    retuned = cli(lab.data_dir, "configure", agent_id, "--freq", "100.02e6")
    assert retuned.stdout.strip() == f"{agent_id} reconfigured (center 100.02 MHz): the agent confirmed"
    as_json = cli(lab.data_dir, "configure", agent_id, "--gain", "20", "--json")
    assert json.loads(as_json.stdout)["acked"] is True
    stopped = cli(lab.data_dir, "stop", agent_id)
    assert stopped.stdout.strip() == f"{agent_id} stopped; it is idle"
    refused = cli(lab.data_dir, "configure", agent_id)
    assert refused.returncode == 2 and "at least one setting" in refused.stderr


def test_serve_on_every_address_prints_urls_a_student_can_open(tmp_path):
    lab = Lab(str(tmp_path), serve_flags=["--host", "0.0.0.0"])
    try:
        out = lab.hub.wait_line(r"page: ").string
        banner = lab.hub.output
        assert "0.0.0.0" not in banner, banner
        host = re.match(r"http://([\d.]+):\d+$", lab.url).group(1)
        assert host in addresses.interface_addresses()
        if addresses.default_route_address():
            assert host == addresses.default_route_address()  # the address other machines reach first
        with urllib.request.urlopen(lab.url + "/health", timeout=10) as resp:
            assert resp.status == 200  # the printed URL answers
        assert out.strip().startswith(f"page: {lab.url}/")
        with open(os.path.join(lab.data_dir, "hub.url")) as f:  # commands on this machine use loopback
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", f.read().strip())
        assert cli(lab.data_dir, "agents").returncode == 0
    finally:
        lab.close()
