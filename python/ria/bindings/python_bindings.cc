/* The gnuradio.ria C++ extension: one bind_* function per C++ subject. */
#include <pybind11/pybind11.h>

namespace py = pybind11;

void bind_aec(py::module& m);
void bind_agent_transport(py::module& m);
void bind_disconnect_classifier(py::module& m);
void bind_sdr_sink(py::module& m);
void bind_sdr_source(py::module& m);
void bind_websocket_iq_sink(py::module& m);
void bind_websocket_source(py::module& m);

PYBIND11_MODULE(ria_python, m)
{
    // Base classes (gr::sync_block ...) are registered by gnuradio.gr.
    py::module::import("gnuradio.gr");
    bind_aec(m);
    bind_agent_transport(m);
    bind_disconnect_classifier(m);
    bind_sdr_sink(m);
    bind_sdr_source(m);
    bind_websocket_iq_sink(m);
    bind_websocket_source(m);
}
