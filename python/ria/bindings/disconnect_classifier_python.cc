#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <gnuradio/ria/disconnect_classifier.h>

namespace py = pybind11;
using gr::ria::disconnect_classifier;
using gr::ria::read_verdict;

void bind_disconnect_classifier(py::module& m)
{
    py::enum_<read_verdict>(m, "read_verdict")
        .value("samples", read_verdict::samples)
        .value("transient", read_verdict::transient)
        .value("overflow", read_verdict::overflow)
        .value("disconnected", read_verdict::disconnected);

    py::class_<disconnect_classifier>(m, "disconnect_classifier", "Turns readStream outcomes into verdicts")
        .def(py::init<double>(), py::arg("no_samples_timeout_s"))
        .def("on_samples", &disconnect_classifier::on_samples, py::arg("now_s"))
        .def("on_code", &disconnect_classifier::on_code, py::arg("code"), py::arg("now_s"))
        .def("on_exception", &disconnect_classifier::on_exception, py::arg("what"), py::arg("now_s"))
        .def("reset", &disconnect_classifier::reset, py::arg("now_s"))
        .def("reason", &disconnect_classifier::reason)
        .def_static("text_means_gone", &disconnect_classifier::text_means_gone, py::arg("what"))
        .def_readonly_static("hard_error_streak", &disconnect_classifier::hard_error_streak);
}
