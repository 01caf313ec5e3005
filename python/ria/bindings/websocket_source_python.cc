#include <pybind11/pybind11.h>

#include <gnuradio/ria/websocket_source.h>

namespace py = pybind11;
using gr::ria::websocket_source;

void bind_websocket_source(py::module& m)
{
    // gnuradio.ria.websocket_source (python/ria/websocket_source.py) fills in the URL and token.
    py::class_<websocket_source, gr::sync_block, gr::block, gr::basic_block, std::shared_ptr<websocket_source>>(
        m, "websocket_source_block", "The hub -> flowgraph stream of TX sessions (see the GRC documentation)")
        .def(py::init(&websocket_source::make),
             py::arg("url"),
             py::arg("token"),
             py::arg("output_type"),
             py::arg("queue_seconds"),
             py::arg("sample_rate"),
             py::arg("underrun_timeout"),
             py::arg("heartbeat_interval"),
             py::arg("ca_file"),
             py::arg("insecure"),
             py::arg("token_in_query"),
             py::arg("idle_output") = "auto")
        .def("connected", &websocket_source::connected)
        .def("state", &websocket_source::state)
        .def("stats", [](const websocket_source& s) {
            return py::module::import("json").attr("loads")(s.stats_json());
        });
}
