/* The agent <-> hub wire contract on the C++ side (docs/protocol.md), mirroring python/ria/wire/:
 * sample formats and their conversion, the agent's text messages, and the checks on the hub's. */
#ifndef INCLUDED_RIA_WIRE_H
#define INCLUDED_RIA_WIRE_H

#include <nlohmann/json.hpp>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <gnuradio/ria/api.h>

namespace gr {
namespace ria {
namespace wire {

using json = nlohmann::json;

//! IQ formats (cf32, cs16, cs8) and the audio formats of §8 (f32, s16, opus).
enum class sample_format { cf32, cs16, cs8, f32, s16, opus };

//! "cf32", "cs16" or "cs8"; throws std::invalid_argument naming the value otherwise.
RIA_API sample_format parse_format(const std::string& name);
//! An audio format: "f32", "s16" or "opus"; the IQ names of .grc files saved before audio had its own
//! (cf32, cs16, cs8) stand for f32, s16 and s16. Throws std::invalid_argument naming the value otherwise.
RIA_API sample_format parse_audio_format(const std::string& name);
RIA_API const char* format_name(sample_format f);
RIA_API bool is_audio(sample_format f);
//! Bytes of one value (one I or one Q, or one real sample): 4, 2 or 1; 0 for opus (packets).
RIA_API size_t bytes_per_value(sample_format f);

//! Little-endian bytes of n float values in format f, written to out (n * bytes_per_value).
//! cs16/cs8/s16: scaled to full scale 32767/127, rounded half to even, clipped symmetrically.
RIA_API void convert(const float* in, size_t n, sample_format f, uint8_t* out);
//! float samples from the bytes of one f32 or s16 frame (wire.audio.from_bytes), appended to out;
//! std::invalid_argument when the length is not whole samples.
RIA_API void audio_from_bytes(const uint8_t* in, size_t bytes, sample_format f, std::vector<float>& out);

//! A hub message that cannot be acted on; what() says what was wrong.
struct protocol_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

//! The hub's close code for a connection it replaced with a newer one on the same agent token.
constexpr uint16_t REPLACED_CLOSE_CODE = 4009;
constexpr int MAX_DEPTH = 32;         //!< nesting of objects and arrays in a hub message
constexpr size_t MAX_ID_CHARS = 256; //!< a longer string id is refused (ids are remembered)

//! Parses one text frame from the hub into an object with a known `type`; throws protocol_error.
RIA_API json decode_hub_message(const std::string& text, size_t max_chars);
//! A key for id de-duplication that keeps JSON types apart: 42 and "42" are different ids.
std::string id_key(const json& id);
//! Message types a hub sends (for errors and tests).
const std::vector<std::string>& hub_types();
//! tx_start, tx_stop or tx_configure: the messages of a TX session (docs/protocol.md §6).
bool is_tx_message(const json& msg);

json heartbeat(const std::vector<std::string>& hardware,
               bool streaming,
               const json& app_id,
               const json& agent,
               const json& stats);
json stream_info(const json& app_id,
                 double sample_rate,
                 double center_frequency,
                 double gain,
                 sample_format f,
                 uint64_t sample_index);
//! stream_info of a microphone stream (§8): media audio, mono; opus adds frame_samples and bitrate.
RIA_API json audio_stream_info(const json& app_id,
                               double sample_rate,
                               sample_format f,
                               uint64_t sample_index,
                               int frame_samples,
                               int bitrate);
json gap(const json& app_id, uint64_t sample_index, uint64_t dropped, const std::string& reason);
json ack(const json& id);
json pong(const json& id);
//! An `error` message; a null app_id is sent as JSON null.
json error(const json& app_id, const std::string& message);
//! JSON text of a message; never throws (invalid UTF-8 is replaced).
std::string encode(const json& msg);

} // namespace wire
} // namespace ria
} // namespace gr

#endif
