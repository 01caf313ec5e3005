#include "opus_codec.h"

#include <opus/opus.h>
#include <string>

namespace gr {
namespace ria {
namespace opus {

namespace {
constexpr double MAX_DECODE_SECONDS = 0.12; // the longest packet Opus knows

void throw_if(int code, const char* what)
{
    if (code < 0)
        throw error(std::string(what) + ": " + opus_strerror(code));
}
} // namespace

bool valid_rate(int r) { return r == 8000 || r == 12000 || r == 16000 || r == 24000 || r == 48000; }

int frame_samples(int sample_rate) { return sample_rate / 50; }

void check(int sample_rate, int bitrate)
{
    if (!valid_rate(sample_rate))
        throw std::invalid_argument("opus needs a sample rate of 8000, 12000, 16000, 24000, 48000 Hz, got " +
                                    std::to_string(sample_rate));
    if (bitrate < MIN_BITRATE || bitrate > MAX_BITRATE)
        throw std::invalid_argument("bitrate must be " + std::to_string(MIN_BITRATE) + " to " +
                                    std::to_string(MAX_BITRATE) + " bit/s, got " + std::to_string(bitrate));
}

encoder::encoder(int sample_rate, int bitrate) : d_frame(opus::frame_samples(sample_rate)), d_bitrate(bitrate)
{
    check(sample_rate, bitrate);
    int err = OPUS_OK;
    d_state = opus_encoder_create(sample_rate, 1, OPUS_APPLICATION_VOIP, &err);
    throw_if(err, "opus_encoder_create");
    const int set = opus_encoder_ctl(d_state, OPUS_SET_BITRATE(bitrate));
    if (set < 0) {
        opus_encoder_destroy(d_state);
        throw_if(set, "OPUS_SET_BITRATE");
    }
}

encoder::~encoder()
{
    if (d_state)
        opus_encoder_destroy(d_state);
}

size_t encoder::encode(const float* frame, uint8_t* out)
{
    const opus_int32 n = opus_encode_float(d_state, frame, d_frame, out, static_cast<opus_int32>(MAX_PACKET));
    throw_if(n, "opus_encode");
    return static_cast<size_t>(n);
}

decoder::decoder(int sample_rate)
    : d_frame(opus::frame_samples(sample_rate)),
      d_rate(sample_rate),
      d_pcm(static_cast<size_t>(sample_rate * MAX_DECODE_SECONDS))
{
    check(sample_rate, DEFAULT_BITRATE);
    int err = OPUS_OK;
    d_state = opus_decoder_create(sample_rate, 1, &err);
    throw_if(err, "opus_decoder_create");
}

decoder::~decoder()
{
    if (d_state)
        opus_decoder_destroy(d_state);
}

size_t decoder::decode(const uint8_t* packet, size_t bytes, std::vector<float>& out)
{
    if (bytes == 0 || bytes > MAX_PACKET)
        throw error("an Opus packet is 1 to " + std::to_string(MAX_PACKET) + " bytes, got " + std::to_string(bytes));
    const int n = opus_decode_float(
        d_state, packet, static_cast<opus_int32>(bytes), d_pcm.data(), static_cast<int>(d_pcm.size()), 0);
    throw_if(n, "opus_decode");
    out.insert(out.end(), d_pcm.begin(), d_pcm.begin() + n);
    return static_cast<size_t>(n);
}

size_t decoder::conceal(std::vector<float>& out)
{
    const int n = opus_decode_float(d_state, nullptr, 0, d_pcm.data(), d_frame, 0);
    throw_if(n, "opus_decode (concealment)");
    out.insert(out.end(), d_pcm.begin(), d_pcm.begin() + n);
    return static_cast<size_t>(n);
}

} // namespace opus
} // namespace ria
} // namespace gr
