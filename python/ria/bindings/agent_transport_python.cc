/* The transport's pure pieces, bound so that tests can drive them with explicit inputs. */
#include <pybind11/numpy.h>
#include <algorithm>
#include <vector>
#include <pybind11/pybind11.h>

#include "../../../lib/backoff.h"
#include "../../../lib/hub_url.h"
#include "../../../lib/opus_codec.h"
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
        "wire_audio_convert",
        [](py::array_t<float, py::array::c_style | py::array::forcecast> values, const std::string& format) {
            const auto f = gr::ria::wire::parse_audio_format(format);
            std::string out(values.size() * gr::ria::wire::bytes_per_value(f), '\0');
            gr::ria::wire::convert(values.data(), values.size(), f, reinterpret_cast<uint8_t*>(out.data()));
            return py::bytes(out);
        },
        py::arg("values"), py::arg("sample_format"),
        "Float samples as the sink puts them on the wire for audio (f32 or s16).");
    m.def(
        "wire_audio_from_bytes",
        [](const py::bytes& payload, const std::string& format) {
            const std::string in = payload;
            std::vector<float> out;
            gr::ria::wire::audio_from_bytes(reinterpret_cast<const uint8_t*>(in.data()), in.size(),
                                            gr::ria::wire::parse_audio_format(format), out);
            return py::array_t<float>(out.size(), out.data());
        },
        py::arg("payload"), py::arg("sample_format"),
        "float32 samples from one f32 or s16 frame, as ria.websocket_source reads them.");
    m.def(
        "opus_encode_frames",
        [](py::array_t<float, py::array::c_style | py::array::forcecast> samples, int rate, int bitrate) {
            gr::ria::opus::encoder enc(rate, bitrate);
            const size_t n = static_cast<size_t>(enc.frame_samples());
            std::vector<float> frame(n);
            std::vector<uint8_t> buf(gr::ria::opus::MAX_PACKET);
            py::list packets;
            for (size_t i = 0; i < static_cast<size_t>(samples.size()); i += n) {
                std::fill(frame.begin(), frame.end(), 0.0f);
                std::copy(samples.data() + i, samples.data() + std::min<size_t>(i + n, samples.size()), frame.begin());
                const size_t bytes = enc.encode(frame.data(), buf.data());
                packets.append(py::bytes(reinterpret_cast<const char*>(buf.data()), bytes));
            }
            return packets;
        },
        py::arg("samples"), py::arg("sample_rate"), py::arg("bitrate"),
        "Opus packets (one per 20 ms, the last padded) from lib/opus_codec, as the sink encodes.");
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
