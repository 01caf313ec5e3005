#include <pybind11/pybind11.h>

#include <gnuradio/ria/aec.h>

namespace py = pybind11;
using gr::ria::aec;

void bind_aec(py::module& m)
{
    py::class_<aec, gr::sync_block, gr::block, gr::basic_block, std::shared_ptr<aec>>(
        m, "aec", "Acoustic echo canceller with delay and drift tracking (see the GRC documentation)")
        .def(py::init(&aec::make),
             py::arg("sample_rate") = 16000,
             py::arg("frame_size") = 320,
             py::arg("tail_length") = 0.4,
             py::arg("max_delay") = 1.0,
             py::arg("residual_suppression") = true,
             py::arg("noise_suppression") = false)
        .def("set_tail_length", &aec::set_tail_length, py::arg("seconds"))
        .def("set_residual_suppression", &aec::set_residual_suppression, py::arg("on"))
        .def("set_noise_suppression", &aec::set_noise_suppression, py::arg("on"))
        .def("reset", &aec::reset)
        .def("delay_locked", &aec::delay_locked)
        .def("delay", &aec::delay)
        .def("drift_ppm", &aec::drift_ppm)
        .def("erle_db", &aec::erle_db)
        .def("delay_jumps", &aec::delay_jumps)
        .def("loudspeaker_nonlinear", &aec::loudspeaker_nonlinear);
}
