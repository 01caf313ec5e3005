/* Exact-size binary frames: samples in, converted payloads of exactly buffer_size samples out. */
#ifndef INCLUDED_RIA_FRAME_ASSEMBLER_H
#define INCLUDED_RIA_FRAME_ASSEMBLER_H

#include "wire.h"
#include <cstdint>
#include <vector>

namespace gr {
namespace ria {

struct frame {
    std::vector<uint8_t> payload;
    uint64_t samples = 0;
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
    size_t pending() const { return d_fill; }

private:
    size_t bytes_for(size_t samples) const { return samples * d_bytes_per_sample; }
    void start_frame();

    size_t d_buffer_size;
    wire::sample_format d_format;
    unsigned d_values;
    size_t d_bytes_per_sample;
    frame d_partial;
    size_t d_fill = 0;
};

} // namespace ria
} // namespace gr

#endif
