/* Exact-size binary frames: samples in, converted payloads of exactly buffer_size samples out. */
#ifndef INCLUDED_RIA_FRAME_ASSEMBLER_H
#define INCLUDED_RIA_FRAME_ASSEMBLER_H

#include "opus_codec.h"
#include "wire.h"
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace gr {
namespace ria {

//! Payload buffers of one size, reused: a frame returns its buffer here when it is sent or
//! dropped, so a stream does not allocate (nor fault in fresh pages) once it runs.
class payload_pool
{
public:
    explicit payload_pool(size_t buffer_bytes);
    std::unique_ptr<uint8_t[]> take();
    void give(std::unique_ptr<uint8_t[]> buffer);
    size_t buffer_bytes() const { return d_bytes; }

private:
    const size_t d_bytes;
    const size_t d_keep;
    std::mutex d_mutex;
    std::vector<std::unique_ptr<uint8_t[]>> d_free;
};

//! One binary frame; its buffer goes back to its pool when the frame is destroyed.
struct frame {
    std::unique_ptr<uint8_t[]> data;
    size_t bytes = 0;
    uint64_t samples = 0;
    //! Monotonic seconds of the work() calls that brought its first and its last sample (0: unknown).
    double first_at = 0, last_at = 0;
    std::shared_ptr<payload_pool> pool;

    frame() = default;
    frame(frame&&) = default;
    frame& operator=(frame&& other) noexcept;
    ~frame();
};

class frame_assembler
{
public:
    //! \param values_per_sample 2 for complex input, 1 for float; throws std::invalid_argument
    //! for a buffer_size outside 1 .. MAX_BUFFER_SIZE. Opus (float input only) ignores buffer_size:
    //! a frame is one packet of 20 ms at sample_rate, encoded at bitrate (both checked).
    frame_assembler(int64_t buffer_size,
                    wire::sample_format format,
                    unsigned values_per_sample,
                    int sample_rate = 0,
                    int bitrate = opus::DEFAULT_BITRATE);

    static constexpr int64_t MAX_BUFFER_SIZE = 1 << 22;

    //! Converts n samples straight into frame payloads (no staging copy); appends every
    //! completed frame to `out`.
    void push(const float* samples, size_t n, std::vector<frame>& out);
    //! The time (monotonic seconds) of the samples pushed next, for the frames' first_at / last_at.
    void stamp(double now) { d_now = now; }
    //! Ends the partial frame: true (and the frame in `out`) when there was one. An Opus frame is
    //! padded with silence to its 20 ms (the hub decodes, and sample_index counts, whole frames).
    bool cut(frame& out);
    //! Drops the partial frame; returns how many samples it held.
    uint64_t discard();

    size_t buffer_size() const { return d_buffer_size; }
    wire::sample_format format() const { return d_format; }

private:
    size_t bytes_for(size_t samples) const { return samples * d_bytes_per_sample; }
    void complete(size_t samples, std::vector<frame>& out);

    size_t d_buffer_size;
    wire::sample_format d_format;
    unsigned d_values;
    size_t d_bytes_per_sample;
    std::shared_ptr<payload_pool> d_pool;
    frame d_partial;
    size_t d_fill = 0;
    double d_now = 0;
    std::unique_ptr<opus::encoder> d_opus;
    std::vector<float> d_pcm; // the Opus frame being filled
};

} // namespace ria
} // namespace gr

#endif
