#include <pybind11/pybind11.h>

#include <gnuradio/ria/sdr_sink.h>
#include <limits>

namespace py = pybind11;
using gr::ria::sdr_sink;

void bind_sdr_sink(py::module& m)
{
    py::class_<sdr_sink, gr::sync_block, gr::block, gr::basic_block, std::shared_ptr<sdr_sink>>(
        m, "sdr_sink", "SoapySDR transmitter with interlocks and bursts (see the GRC documentation)")
        .def(py::init(&sdr_sink::make),
             py::arg("device") = "driver=riasim",
             py::arg("sample_rate") = 1e6,
             py::arg("center_freq") = 433.92e6,
             py::arg("gain") = 0.0,
             py::arg("antenna") = "",
             py::arg("bandwidth") = 0.0,
             py::arg("allow_tx") = false,
             py::arg("max_gain_db") = std::numeric_limits<double>::quiet_NaN(),
             py::arg("max_duration_s") = 0.0,
             py::arg("allowed_freq_ranges") = "",
             py::arg("burst_tags") = "optional",
             py::arg("on_disconnect") = "reconnect",
             py::arg("reopen_interval") = 1.0,
             py::arg("disconnect_timeout") = 2.0)
        .def("set_center_freq", &sdr_sink::set_center_freq, py::arg("freq"))
        .def("set_sample_rate", &sdr_sink::set_sample_rate, py::arg("rate"))
        .def("set_gain", &sdr_sink::set_gain, py::arg("gain"))
        .def("set_bandwidth", &sdr_sink::set_bandwidth, py::arg("bandwidth"))
        .def("set_antenna", &sdr_sink::set_antenna, py::arg("antenna"))
        .def("state", &sdr_sink::state)
        .def("samples_written", &sdr_sink::samples_written)
        .def("samples_dropped", &sdr_sink::samples_dropped)
        .def("underflows", &sdr_sink::underflows)
        .def("disconnects", &sdr_sink::disconnects);
}
