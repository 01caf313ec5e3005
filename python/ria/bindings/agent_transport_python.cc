/* The transport's pure pieces, bound so that tests can drive them with explicit inputs. */
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "../../../lib/backoff.h"
#include "../../../lib/hub_url.h"
#include "../../../lib/wire.h"

namespace py = pybind11;

void bind_agent_transport(py::module& m)
{
    m.def("backoff_delay", &gr::ria::backoff_delay, py::arg("attempt"), py::arg("uniform01"),
          "Seconds before reconnect attempt `attempt`: uniform01 * min(30, 2**attempt).");
    m.def("redact_url", &gr::ria::redact_url, py::arg("url"), "The URL with any token=... value shown as ***.");
    m.def(
        "wire_convert",
        [](py::array_t<float, py::array::c_style | py::array::forcecast> values, const std::string& format) {
            const auto f = gr::ria::wire::parse_format(format);
            std::string out(values.size() * gr::ria::wire::bytes_per_value(f), '\0');
            gr::ria::wire::convert(values.data(), values.size(), f, reinterpret_cast<uint8_t*>(out.data()));
            return py::bytes(out);
        },
        py::arg("values"), py::arg("sample_format"),
        "Float values as the sink puts them on the wire (cf32, cs16 or cs8).");
    m.def(
        "wire_check_hub_message",
        [](const std::string& text) {
            try {
                return gr::ria::wire::decode_hub_message(text, 64 * 1024).dump();
            } catch (const gr::ria::wire::protocol_error& e) {
                throw py::value_error(e.what());
            }
        },
        py::arg("text"),
        "The transport's check of a hub message: its JSON text back, or ValueError saying what is wrong.");
}
