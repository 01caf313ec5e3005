#include "frame_assembler.h"

#include <algorithm>
#include <stdexcept>

namespace gr {
namespace ria {

namespace {
constexpr size_t POOL_BYTES = 8 << 20; // buffers kept for reuse, in all
}

payload_pool::payload_pool(size_t buffer_bytes)
    : d_bytes(buffer_bytes), d_keep(std::max<size_t>(4, POOL_BYTES / std::max<size_t>(buffer_bytes, 1)))
{
}

std::unique_ptr<uint8_t[]> payload_pool::take()
{
    {
        std::lock_guard<std::mutex> lk(d_mutex);
        if (!d_free.empty()) {
            auto b = std::move(d_free.back());
            d_free.pop_back();
            return b;
        }
    }
    return std::unique_ptr<uint8_t[]>(new uint8_t[d_bytes]); // not zeroed: every byte is written
}

void payload_pool::give(std::unique_ptr<uint8_t[]> buffer)
{
    std::lock_guard<std::mutex> lk(d_mutex);
    if (d_free.size() < d_keep)
        d_free.push_back(std::move(buffer));
}

frame& frame::operator=(frame&& other) noexcept
{
    if (this != &other) {
        if (pool && data)
            pool->give(std::move(data));
        data = std::move(other.data);
        bytes = other.bytes;
        samples = other.samples;
        first_at = other.first_at;
        last_at = other.last_at;
        pool = std::move(other.pool);
    }
    return *this;
}

frame::~frame()
{
    if (pool && data)
        pool->give(std::move(data));
}

frame_assembler::frame_assembler(
    int64_t buffer_size, wire::sample_format format, unsigned values_per_sample, int sample_rate, int bitrate)
    : d_format(format),
      d_values(values_per_sample),
      d_bytes_per_sample(values_per_sample * wire::bytes_per_value(format))
{
    if (format == wire::sample_format::opus) {
        if (values_per_sample != 1)
            throw std::invalid_argument("opus is for float (audio) input");
        d_opus = std::make_unique<opus::encoder>(sample_rate, bitrate); // throws naming the rate or bitrate
        d_buffer_size = static_cast<size_t>(d_opus->frame_samples());
        d_pcm.resize(d_buffer_size);
        d_pool = std::make_shared<payload_pool>(opus::MAX_PACKET);
        return;
    }
    if (buffer_size < 1 || buffer_size > MAX_BUFFER_SIZE)
        throw std::invalid_argument("buffer_size must be an integer from 1 to " + std::to_string(MAX_BUFFER_SIZE) +
                                    ", got " + std::to_string(buffer_size));
    d_buffer_size = static_cast<size_t>(buffer_size);
    d_pool = std::make_shared<payload_pool>(bytes_for(d_buffer_size));
}

void frame_assembler::push(const float* samples, size_t n, std::vector<frame>& out)
{
    size_t pos = 0;
    while (pos < n) {
        if (d_fill == 0 && !d_partial.data) {
            d_partial.data = d_pool->take();
            d_partial.pool = d_pool;
            d_partial.first_at = d_now;
        }
        const size_t take = std::min(n - pos, d_buffer_size - d_fill);
        if (d_opus)
            std::copy(samples + pos, samples + pos + take, d_pcm.begin() + d_fill);
        else
            wire::convert(
                samples + pos * d_values, take * d_values, d_format, d_partial.data.get() + bytes_for(d_fill));
        d_fill += take;
        pos += take;
        if (d_fill == d_buffer_size)
            complete(d_fill, out);
    }
}

void frame_assembler::complete(size_t samples, std::vector<frame>& out)
{
    if (d_opus) {
        std::fill(d_pcm.begin() + samples, d_pcm.end(), 0.0f);
        d_partial.bytes = d_opus->encode(d_pcm.data(), d_partial.data.get());
        d_partial.samples = d_buffer_size;
    } else {
        d_partial.samples = samples;
        d_partial.bytes = bytes_for(samples);
    }
    d_partial.last_at = d_now;
    out.push_back(std::move(d_partial));
    d_partial = frame();
    d_fill = 0;
}

bool frame_assembler::cut(frame& out)
{
    if (d_fill == 0)
        return false;
    std::vector<frame> one;
    complete(d_fill, one);
    out = std::move(one.front());
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
