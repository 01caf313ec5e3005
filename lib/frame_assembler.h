/* Exact-size binary frames: samples in, converted payloads of exactly buffer_size samples out. */
#ifndef INCLUDED_RIA_FRAME_ASSEMBLER_H
#define INCLUDED_RIA_FRAME_ASSEMBLER_H

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
    //! for a buffer_size outside 1 .. MAX_BUFFER_SIZE.
    frame_assembler(int64_t buffer_size, wire::sample_format format, unsigned values_per_sample);

    static constexpr int64_t MAX_BUFFER_SIZE = 1 << 22;

    //! Converts n samples straight into frame payloads (no staging copy); appends every
    //! completed frame to `out`.
    void push(const float* samples, size_t n, std::vector<frame>& out);
    //! Ends the partial frame: true (and the frame in `out`) when there was one.
    bool cut(frame& out);
    //! Drops the partial frame; returns how many samples it held.
    uint64_t discard();

    size_t buffer_size() const { return d_buffer_size; }
    wire::sample_format format() const { return d_format; }

private:
    size_t bytes_for(size_t samples) const { return samples * d_bytes_per_sample; }

    size_t d_buffer_size;
    wire::sample_format d_format;
    unsigned d_values;
    size_t d_bytes_per_sample;
    std::shared_ptr<payload_pool> d_pool;
    frame d_partial;
    size_t d_fill = 0;
};

} // namespace ria
} // namespace gr

#endif
