"""What the hub makes of an agent's stream: SigMF recordings and the ZeroMQ republication."""

import os

import numpy as np
import pytest
from gnuradio import gr, zeromq

from helpers import peak_offset_hz, stream_recorder
from lab import EMITTER, RATE, start_session


def test_sigmf_recording_validates_and_holds_every_sample(lab, serial):
    import sigmf

    agent_id, _ = lab.start_agent("rec-1")
    lab.wait_agent(agent_id, lambda a: a["online"])
    start_session(lab, agent_id, serial, record=True, rc={"sample_format": "cs16"})
    lab.wait_agent(agent_id, lambda a: (a["stream"] or {}).get("frames", 0) > 30)
    lab.api.configure(agent_id, {"center_frequency": 100.05e6})
    lab.wait_agent(agent_id, lambda a: a["stream"]["center_frequency"] == 100.05e6)
    frames = lab.api.agent(agent_id)["stream"]["frames"]
    lab.wait_agent(agent_id, lambda a: a["stream"]["frames"] > frames + 30)
    assert lab.api.stop(agent_id)["status"] == "idle"
    detail = lab.api.agent(agent_id)
    assert detail["recording"] is None and len(detail["recordings"]) == 1
    meta_path = detail["recordings"][0]

    recording = sigmf.sigmffile.fromfile(meta_path)
    recording.validate()
    assert recording.get_global_field("core:datatype") == "ci16_le"
    assert recording.get_global_field("core:sample_rate") == RATE
    samples = recording.read_samples()
    assert len(samples) == detail["stream"]["samples"]  # every sample the hub received, none more
    captures = recording.get_captures()
    assert [c["core:frequency"] for c in captures] == [100e6, 100.05e6]
    # each segment holds the emitter where the radio's tuning puts it
    second = captures[1]["core:sample_start"]
    assert abs(peak_offset_hz(samples[:second][-65536:], RATE) - (EMITTER - 100e6)) < 200
    assert abs(peak_offset_hz(samples[second:][-65536:], RATE) - (EMITTER - 100.05e6)) < 200


def test_recording_needs_a_session(lab):
    from gnuradio.ria.hub.client import HubError

    agent_id, _ = lab.start_agent("rec-2")
    lab.wait_agent(agent_id, lambda a: a["online"])
    with pytest.raises(HubError) as refused:
        lab.api.record(agent_id, True)
    assert refused.value.status == 409 and "not streaming" in str(refused.value)


def test_stock_zeromq_sub_source_receives_an_agents_iq(lab, serial, flowgraphs):
    agent_id, _ = lab.start_agent("zmq-1")
    lab.wait_agent(agent_id, lambda a: a["online"])
    tb = gr.top_block()
    source = zeromq.sub_source(gr.sizeof_gr_complex, 1, lab.zmq_endpoint, 100, False, -1, agent_id)
    recorder = stream_recorder(keep=1 << 18)
    tb.connect(source, recorder)
    tb.python_blocks = (recorder,)
    flowgraphs(tb)
    start_session(lab, agent_id, serial, rc={"sample_format": "cs8"})  # republished as cf32 all the same
    assert recorder.wait_count(1 << 17, 20)
    x = recorder.samples()
    assert abs(peak_offset_hz(x[-65536:], RATE) - (EMITTER - 100e6)) < 200
    assert np.all(np.abs(x.real) <= 1.0)
    assert os.path.exists(lab.data_dir)
