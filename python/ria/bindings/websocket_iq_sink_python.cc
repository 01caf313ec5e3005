#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <gnuradio/ria/websocket_iq_sink.h>

namespace py = pybind11;
using gr::ria::websocket_iq_sink;

namespace {

py::object from_json(const std::string& text)
{
    if (text.empty())
        return py::none();
    return py::module::import("json").attr("loads")(text);
}

} // namespace

void bind_websocket_iq_sink(py::module& m)
{
    // gnuradio.ria.websocket_iq_sink (python/ria/websocket_iq_sink.py) fills in the URL,
    // token and hardware names, then makes this block.
    py::class_<websocket_iq_sink, gr::sync_block, gr::block, gr::basic_block, std::shared_ptr<websocket_iq_sink>>(
        m, "websocket_iq_sink_block", "The agent's WebSocket to the hub (see the GRC documentation)")
        .def(py::init(&websocket_iq_sink::make),
             py::arg("url"),
             py::arg("token"),
             py::arg("input_type"),
             py::arg("buffer_size"),
             py::arg("sample_format"),
             py::arg("overflow"),
             py::arg("queue_seconds"),
             py::arg("sample_rate"),
             py::arg("heartbeat_interval"),
             py::arg("autostart"),
             py::arg("app_id"),
             py::arg("hardware_names"),
             py::arg("ca_file"),
             py::arg("insecure"),
             py::arg("token_in_query"),
             py::arg("agent_name"),
             py::arg("bitrate") = 32000)
        .def("connected", &websocket_iq_sink::connected)
        .def("streaming", &websocket_iq_sink::streaming)
        .def("app_id", [](const websocket_iq_sink& s) { return from_json(s.app_id()); })
        .def("last_error", &websocket_iq_sink::last_error)
        .def("reconnects", &websocket_iq_sink::reconnects)
        .def("queue_depth", &websocket_iq_sink::queue_depth)
        .def("queue_samples", &websocket_iq_sink::queue_samples)
        .def("samples_produced", &websocket_iq_sink::samples_produced)
        .def("samples_sent", &websocket_iq_sink::samples_sent)
        .def("samples_dropped", &websocket_iq_sink::samples_dropped)
        .def("frames_sent", &websocket_iq_sink::frames_sent)
        .def("frames_dropped", &websocket_iq_sink::frames_dropped)
        .def("stats", [](const websocket_iq_sink& s) { return from_json(s.stats_json()); });
}
