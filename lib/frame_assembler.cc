#include "frame_assembler.h"

#include <algorithm>
#include <stdexcept>

namespace gr {
namespace ria {

frame_assembler::frame_assembler(int64_t buffer_size, wire::sample_format format, unsigned values_per_sample)
    : d_format(format),
      d_values(values_per_sample),
      d_bytes_per_sample(values_per_sample * wire::bytes_per_value(format))
{
    if (buffer_size < 1 || buffer_size > MAX_BUFFER_SIZE)
        throw std::invalid_argument("buffer_size must be an integer from 1 to " + std::to_string(MAX_BUFFER_SIZE) +
                                    ", got " + std::to_string(buffer_size));
    d_buffer_size = static_cast<size_t>(buffer_size);
}

void frame_assembler::start_frame()
{
    d_partial.payload.resize(bytes_for(d_buffer_size));
    d_partial.samples = 0;
}

void frame_assembler::push(const float* samples, size_t n, std::vector<frame>& out)
{
    size_t pos = 0;
    while (pos < n) {
        if (d_fill == 0)
            start_frame();
        const size_t take = std::min(n - pos, d_buffer_size - d_fill);
        wire::convert(samples + pos * d_values, take * d_values, d_format,
                      d_partial.payload.data() + bytes_for(d_fill));
        d_fill += take;
        pos += take;
        if (d_fill == d_buffer_size) {
            d_partial.samples = d_fill;
            out.push_back(std::move(d_partial));
            d_partial = frame();
            d_fill = 0;
        }
    }
}

bool frame_assembler::cut(frame& out)
{
    if (d_fill == 0)
        return false;
    d_partial.payload.resize(bytes_for(d_fill));
    d_partial.samples = d_fill;
    out = std::move(d_partial);
    d_partial = frame();
    d_fill = 0;
    return true;
}

uint64_t frame_assembler::discard()
{
    uint64_t n = d_fill;
    d_fill = 0;
    return n;
}

} // namespace ria
} // namespace gr
