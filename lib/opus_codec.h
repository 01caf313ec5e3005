/* Opus for the agent's audio (docs/protocol.md §8): mono, one 20 ms frame per packet, over libopus.
 * The hub's side of the same codec is python/ria/wire/opus.py. */
#ifndef INCLUDED_RIA_OPUS_CODEC_H
#define INCLUDED_RIA_OPUS_CODEC_H

#include <gnuradio/ria/api.h>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

struct OpusEncoder;
struct OpusDecoder;

namespace gr {
namespace ria {
namespace opus {

constexpr size_t MAX_PACKET = 1500; //!< one 20 ms mono packet is at most 1275 bytes
constexpr int DEFAULT_BITRATE = 32000;
constexpr int MIN_BITRATE = 6000, MAX_BITRATE = 256000;

//! libopus refused; what() has its message.
struct error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

//! True for the rates Opus takes: 8, 12, 16, 24, 48 kHz.
RIA_API bool valid_rate(int sample_rate);
//! Samples in one 20 ms frame at this rate.
RIA_API int frame_samples(int sample_rate);
//! Throws std::invalid_argument naming the rate or bitrate that Opus cannot take.
RIA_API void check(int sample_rate, int bitrate);

class RIA_API encoder
{
public:
    encoder(int sample_rate, int bitrate);
    ~encoder();
    encoder(const encoder&) = delete;
    encoder& operator=(const encoder&) = delete;

    //! One packet from exactly frame_samples() samples into out (MAX_PACKET bytes); returns its size.
    size_t encode(const float* frame, uint8_t* out);
    int frame_samples() const { return d_frame; }
    int bitrate() const { return d_bitrate; }

private:
    OpusEncoder* d_state = nullptr;
    int d_frame, d_bitrate;
};

class RIA_API decoder
{
public:
    explicit decoder(int sample_rate);
    ~decoder();
    decoder(const decoder&) = delete;
    decoder& operator=(const decoder&) = delete;

    //! The samples of one packet appended to out; throws opus::error for a packet libopus cannot decode.
    size_t decode(const uint8_t* packet, size_t bytes, std::vector<float>& out);
    //! One frame of concealment (PLC) for a packet that did not come, appended to out.
    size_t conceal(std::vector<float>& out);
    int frame_samples() const { return d_frame; }

private:
    OpusDecoder* d_state = nullptr;
    int d_frame, d_rate;
    std::vector<float> d_pcm;
};

} // namespace opus
} // namespace ria
} // namespace gr

#endif
