#include <pybind11/pybind11.h>

#include <gnuradio/ria/sdr_source.h>

namespace py = pybind11;
using gr::ria::sdr_source;

void bind_sdr_source(py::module& m)
{
    py::class_<sdr_source, gr::sync_block, gr::block, gr::basic_block, std::shared_ptr<sdr_source>>(
        m, "sdr_source", "SoapySDR receiver that survives unplugging (see the GRC documentation)")
        .def(py::init(&sdr_source::make),
             py::arg("device_args") = "driver=riasim",
             py::arg("channel") = 0,
             py::arg("sample_rate") = 2.048e6,
             py::arg("center_freq") = 100e6,
             py::arg("gain") = 30.0,
             py::arg("agc") = false,
             py::arg("bandwidth") = 0.0,
             py::arg("antenna") = "",
             py::arg("on_disconnect") = "reconnect",
             py::arg("reopen_interval") = 1.0,
             py::arg("disconnect_timeout") = 2.0,
             py::arg("ppm") = 0.0,
             py::arg("output_type") = "fc32",
             py::arg("device_settings") = "")
        .def("set_center_freq", &sdr_source::set_center_freq, py::arg("freq"))
        .def("set_sample_rate", &sdr_source::set_sample_rate, py::arg("rate"))
        .def("set_gain", &sdr_source::set_gain, py::arg("gain"))
        .def("set_agc", &sdr_source::set_agc, py::arg("agc"))
        .def("set_bandwidth", &sdr_source::set_bandwidth, py::arg("bandwidth"))
        .def("set_antenna", &sdr_source::set_antenna, py::arg("antenna"))
        .def("set_ppm", &sdr_source::set_ppm, py::arg("ppm"))
        .def("set_device_settings", &sdr_source::set_device_settings, py::arg("settings"))
        .def("state", &sdr_source::state)
        .def("overflows", &sdr_source::overflows)
        .def("disconnects", &sdr_source::disconnects);
}
