#include "wire.h"

#include "hub_json.h"
#include <volk/volk.h>
#include <algorithm>
#include <cstring>

namespace gr {
namespace ria {
namespace wire {

namespace {

const char* type_name(const json& v)
{
    switch (v.type()) {
    case json::value_t::null:
        return "null";
    case json::value_t::boolean:
        return "boolean";
    case json::value_t::array:
        return "array";
    case json::value_t::object:
        return "object";
    case json::value_t::string:
        return "string";
    case json::value_t::binary:
        return "unreadable value";
    default:
        return "number";
    }
}

bool is_integer(const json& v) { return v.is_number_integer(); } // booleans are not integers in nlohmann

} // namespace

sample_format parse_format(const std::string& name)
{
    if (name == "cf32")
        return sample_format::cf32;
    if (name == "cs16")
        return sample_format::cs16;
    if (name == "cs8")
        return sample_format::cs8;
    throw std::invalid_argument("sample_format must be one of cf32, cs16, cs8, got '" + name + "'");
}

sample_format parse_audio_format(const std::string& name)
{
    if (name == "f32" || name == "cf32")
        return sample_format::f32;
    if (name == "s16" || name == "cs16" || name == "cs8")
        return sample_format::s16;
    if (name == "opus")
        return sample_format::opus;
    throw std::invalid_argument("sample_format must be one of f32, s16, opus for audio, got '" + name + "'");
}

bool is_audio(sample_format f)
{
    return f == sample_format::f32 || f == sample_format::s16 || f == sample_format::opus;
}

const char* format_name(sample_format f)
{
    switch (f) {
    case sample_format::f32:
        return "f32";
    case sample_format::s16:
        return "s16";
    case sample_format::opus:
        return "opus";
    case sample_format::cs16:
        return "cs16";
    case sample_format::cs8:
        return "cs8";
    default:
        return "cf32";
    }
}

size_t bytes_per_value(sample_format f)
{
    switch (f) {
    case sample_format::opus:
        return 0;
    case sample_format::cs16:
    case sample_format::s16:
        return 2;
    case sample_format::cs8:
        return 1;
    default:
        return 4;
    }
}

void convert(const float* in, size_t n, sample_format f, uint8_t* out)
{
    // x86 and ARM hosts are little-endian, as the wire is; cf32 is a plain copy.
    switch (f) {
    case sample_format::opus:
        throw std::invalid_argument("convert takes no opus (it goes through the encoder)");
    case sample_format::cf32:
    case sample_format::f32:
        std::memcpy(out, in, n * sizeof(float));
        return;
    case sample_format::cs16:
    case sample_format::s16: {
        // VOLK scales, rounds (to nearest even) and saturates to [-32768, 32767]; the
        // protocol's full scale is symmetric, so -32768 becomes -32767.
        auto* o = reinterpret_cast<int16_t*>(out);
        volk_32f_s32f_convert_16i(o, in, 32767.0f, static_cast<unsigned>(n));
        for (size_t i = 0; i < n; i++)
            o[i] = std::max<int16_t>(o[i], -32767);
        return;
    }
    case sample_format::cs8: {
        auto* o = reinterpret_cast<int8_t*>(out);
        volk_32f_s32f_convert_8i(o, in, 127.0f, static_cast<unsigned>(n));
        for (size_t i = 0; i < n; i++)
            o[i] = std::max<int8_t>(o[i], -127);
        return;
    }
    }
}

void audio_from_bytes(const uint8_t* in, size_t bytes, sample_format f, std::vector<float>& out)
{
    const size_t size = f == sample_format::f32 ? 4 : f == sample_format::s16 ? 2 : 0;
    if (size == 0)
        throw std::invalid_argument(std::string("audio_from_bytes takes f32 or s16, got ") + format_name(f));
    if (bytes % size)
        throw std::invalid_argument(std::string("a ") + format_name(f) + " frame of " + std::to_string(bytes) +
                                    " bytes is not a whole number of samples");
    const size_t n = bytes / size, at = out.size();
    out.resize(at + n);
    if (f == sample_format::f32) {
        std::memcpy(out.data() + at, in, bytes); // little-endian hosts, as the wire
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int16_t v;
        std::memcpy(&v, in + 2 * i, 2);
        out[at + i] = static_cast<float>(v) / 32767.0f;
    }
}

const std::vector<std::string>& hub_types()
{
    static const std::vector<std::string> types = { "start",    "stop",    "configure",    "ping",
                                                    "tx_start", "tx_stop", "tx_configure", "tx_data_available" };
    return types;
}

bool is_tx_message(const json& msg)
{
    const auto& type = msg.at("type").get_ref<const std::string&>();
    return type == "tx_start" || type == "tx_stop" || type == "tx_configure";
}

json decode_hub_message(const std::string& text, size_t max_chars)
{
    if (text.size() > max_chars)
        throw protocol_error("message of " + std::to_string(text.size()) +
                             " bytes is over the limit of " + std::to_string(max_chars));
    json msg;
    try {
        // Nesting is bounded before anything recursive (PMT conversion, a block) sees the message.
        msg = hub_json::parse(text, MAX_DEPTH);
    } catch (const std::length_error& e) {
        throw protocol_error(e.what());
    } catch (const json::exception& e) {
        std::string why = e.what();
        // nlohmann prefixes "[json.exception.parse_error.101] "; the rest says where and what.
        auto cut = why.find("] ");
        throw protocol_error("message is not valid JSON: " +
                             (cut == std::string::npos ? why : why.substr(cut + 2)));
    }
    if (!msg.is_object())
        throw protocol_error(std::string("message must be a JSON object, got ") + type_name(msg));
    auto kind = msg.find("type");
    if (kind == msg.end() || !kind->is_string())
        throw protocol_error("message has no string 'type' field");
    const std::string type = kind->get<std::string>();
    const auto& known = hub_types();
    if (std::find(known.begin(), known.end(), type) == known.end()) {
        std::string list;
        for (const auto& k : known)
            list += (list.empty() ? "" : ", ") + k;
        throw protocol_error("unknown message type '" + type + "' (known: " + list + ")");
    }
    auto id = msg.find("id");
    if (id != msg.end() && !id->is_string() && !is_integer(*id))
        throw protocol_error("message id must be a string or integer (of at most 64 bits), got " +
                             hub_json::describe(*id));
    if (id != msg.end() && id->is_string() && id->get_ref<const std::string&>().size() > MAX_ID_CHARS)
        throw protocol_error("message id is longer than " + std::to_string(MAX_ID_CHARS) + " characters");
    if (type == "start" || type == "stop" || type == "configure" || type == "tx_start") {
        auto app = msg.find("app_id");
        if (app == msg.end() || !(app->is_string() || is_integer(*app)))
            throw protocol_error(type + " needs an 'app_id' (a string or an integer of at most 64 bits)" +
                                 (app == msg.end() ? std::string() : ", got " + hub_json::describe(*app)));
    }
    if (type == "start" || type == "configure" || type == "tx_start" || type == "tx_configure") {
        auto rc = msg.find("radio_config");
        if (rc != msg.end() && !rc->is_object())
            throw protocol_error(type + ": radio_config must be an object, got " + type_name(*rc));
    }
    return msg;
}

std::string id_key(const json& id)
{
    return (id.is_string() ? "s:" + id.get<std::string>() : "i:" + id.dump());
}

json heartbeat(const std::vector<std::string>& hardware,
               bool streaming,
               const json& app_id,
               const json& agent,
               const json& stats)
{
    json msg = { { "type", "heartbeat" },
                 { "hardware", hardware },
                 { "status", streaming ? "streaming" : "idle" },
                 { "capabilities", { "rx" } },
                 { "tx_enabled", false } };
    if (streaming && !app_id.is_null())
        msg["app_id"] = app_id;
    if (!agent.is_null())
        msg["agent"] = agent;
    if (!stats.is_null())
        msg["stats"] = stats;
    return msg;
}

json stream_info(const json& app_id,
                 double sample_rate,
                 double center_frequency,
                 double gain,
                 sample_format f,
                 uint64_t sample_index)
{
    return { { "type", "stream_info" },       { "app_id", app_id },
             { "sample_rate", sample_rate },  { "center_frequency", center_frequency },
             { "gain", gain },                { "sample_format", format_name(f) },
             { "sample_index", sample_index } };
}

json audio_stream_info(
    const json& app_id, double sample_rate, sample_format f, uint64_t sample_index, int frame_samples, int bitrate)
{
    json msg = { { "type", "stream_info" },   { "app_id", app_id },           { "media", "audio" },
                 { "channels", 1 },           { "sample_rate", sample_rate }, { "sample_format", format_name(f) },
                 { "sample_index", sample_index } };
    if (f == sample_format::opus) {
        msg["frame_samples"] = frame_samples;
        msg["bitrate"] = bitrate;
    }
    return msg;
}

json gap(const json& app_id, uint64_t sample_index, uint64_t dropped, const std::string& reason)
{
    return { { "type", "gap" },
             { "app_id", app_id },
             { "sample_index", sample_index },
             { "dropped_samples", dropped },
             { "reason", reason } };
}

json ack(const json& id) { return { { "type", "ack" }, { "id", id } }; }

json pong(const json& id)
{
    json msg = { { "type", "pong" } };
    if (!id.is_null())
        msg["id"] = id;
    return msg;
}

json error(const json& app_id, const std::string& message)
{
    return { { "type", "error" }, { "app_id", app_id }, { "message", message } };
}

std::string encode(const json& msg) { return msg.dump(-1, ' ', false, json::error_handler_t::replace); }

} // namespace wire
} // namespace ria
} // namespace gr
