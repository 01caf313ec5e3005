#include "tx_queue.h"

#include "monotonic_clock.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <chrono>
#include <cstring>
#include <utility>

namespace gr {
namespace ria {

tx_queue::tx_queue(unsigned values_per_sample, uint64_t capacity_samples)
    : d_values(values_per_sample), d_capacity(std::max<uint64_t>(capacity_samples, 1))
{
}

// ------------------------------------------------------------------ io thread

void tx_queue::on_start(uint64_t seq)
{
    std::lock_guard<std::mutex> lk(d_mutex);
    d_intake = seq;
    d_intake_received = 0;
}

void tx_queue::on_stop()
{
    std::lock_guard<std::mutex> lk(d_mutex);
    d_intake = 0;
}

void tx_queue::on_connection_lost()
{
    std::lock_guard<std::mutex> lk(d_mutex);
    d_intake = 0;
    if (d_active != 0) {
        d_lost = true;
        d_cond.notify_all();
    }
}

bool tx_queue::take_lost()
{
    std::lock_guard<std::mutex> lk(d_mutex);
    return std::exchange(d_lost, false);
}

void tx_queue::on_configure(uint64_t seq)
{
    std::lock_guard<std::mutex> lk(d_mutex);
    if (d_intake == 0)
        return;
    if (d_markers.size() >= MAX_MARKERS)
        d_markers.erase(d_markers.begin());
    d_markers[seq] = { d_intake, d_intake_received, monotonic_s() };
}

tx_queue::intake tx_queue::push(const void* data, size_t bytes)
{
    const size_t sample_bytes = d_values * sizeof(float);
    std::lock_guard<std::mutex> lk(d_mutex);
    if (bytes == 0 || bytes % sample_bytes != 0) {
        d_counters.bad_frames++;
        return intake::bad_length;
    }
    // (little-endian float32: the host's layout here)
    return push_locked(static_cast<const float*>(data), bytes / sample_bytes);
}

tx_queue::intake tx_queue::push_samples(const float* samples, size_t n)
{
    std::lock_guard<std::mutex> lk(d_mutex);
    return push_locked(samples, n);
}

uint64_t tx_queue::intake_session() const
{
    std::lock_guard<std::mutex> lk(d_mutex);
    return d_intake;
}

tx_queue::intake tx_queue::push_locked(const float* samples, size_t n)
{
    if (d_intake == 0) {
        d_counters.late_frames++;
        return intake::outside_session;
    }
    if (n == 0)
        return intake::taken;
    chunk c;
    c.session = d_intake;
    c.hub_index = d_intake_received;
    c.values.assign(samples, samples + n * d_values);
    c.arrived = monotonic_s();
    d_intake_received += n;
    if (d_intake == d_active)
        d_counters.received += n;
    d_counters.frames_in++;
    d_queued += n;
    d_chunks.push_back(std::move(c));
    d_cond.notify_all();
    if (d_queued >= d_capacity) {
        d_paused = true;
        return intake::full;
    }
    return intake::taken;
}

// ------------------------------------------------------------------ block thread

void tx_queue::drop_if_locked(bool (*pred)(const chunk&, uint64_t), uint64_t arg)
{
    for (auto it = d_chunks.begin(); it != d_chunks.end();)
        if (pred(*it, arg)) {
            d_queued -= it->values.size() / d_values - it->pos;
            it = d_chunks.erase(it);
        } else {
            ++it;
        }
}

bool tx_queue::arm(uint64_t seq, uint64_t capacity)
{
    std::lock_guard<std::mutex> lk(d_mutex);
    drop_if_locked([](const chunk& c, uint64_t s) { return c.session != s; }, seq);
    d_capacity = std::max<uint64_t>(capacity, 1);
    d_scheduled.clear();
    d_lost = false;
    d_next_hub = 0;
    if (d_intake != seq) {
        d_active = 0;
        return false;
    }
    d_active = seq;
    d_counters.received += d_intake_received; // what came before the arm
    d_cond.notify_all();
    return true;
}

void tx_queue::refuse(uint64_t seq)
{
    std::lock_guard<std::mutex> lk(d_mutex);
    // Frames the hub sent for a start that was refused were never for any session: late.
    d_counters.late_frames += std::count_if(d_chunks.begin(), d_chunks.end(),
                                            [seq](const chunk& c) { return c.session == seq; });
    drop_if_locked([](const chunk& c, uint64_t s) { return c.session == s; }, seq);
    if (d_intake == seq)
        d_intake = 0;
    d_cond.notify_all();
}

void tx_queue::end()
{
    std::lock_guard<std::mutex> lk(d_mutex);
    if (d_active == 0)
        return;
    drop_if_locked([](const chunk& c, uint64_t s) { return c.session == s; }, d_active);
    if (d_intake == d_active)
        d_intake = 0; // what the hub still sends for it is late
    d_active = 0;
    d_lost = false;
    d_scheduled.clear();
    d_cond.notify_all();
}

bool tx_queue::schedule(uint64_t seq, const std::vector<tx_tag>& tags)
{
    std::lock_guard<std::mutex> lk(d_mutex);
    auto m = d_markers.find(seq);
    if (m == d_markers.end() || m->second.session != d_active || d_active == 0)
        return false;
    const uint64_t at = m->second.hub_index;
    d_markers.erase(m);
    d_cond.notify_all();
    for (auto t : tags) {
        t.hub_index = at;
        d_scheduled.push_back(std::move(t));
    }
    std::stable_sort(d_scheduled.begin(), d_scheduled.end(),
                     [](const tx_tag& a, const tx_tag& b) { return a.hub_index < b.hub_index; });
    return true;
}

void tx_queue::forget(uint64_t seq)
{
    std::lock_guard<std::mutex> lk(d_mutex);
    d_markers.erase(seq);
    d_cond.notify_all();
}

uint64_t tx_queue::playable_locked()
{
    if (d_active == 0 || d_chunks.empty() || d_chunks.front().session != d_active)
        return 0;
    uint64_t limit = UINT64_MAX;
    const double now = monotonic_s();
    for (auto it = d_markers.begin(); it != d_markers.end();) {
        if (it->second.session != d_active) {
            ++it;
        } else if (now - it->second.since > DECISION_WAIT_S) {
            it = d_markers.erase(it); // no decision came (no handler?): play on
        } else {
            limit = std::min(limit, it->second.hub_index);
            ++it;
        }
    }
    return limit > d_next_hub ? limit - d_next_hub : 0;
}

size_t tx_queue::pop(float* out, size_t max, uint64_t& first, std::vector<tx_tag>& tags)
{
    std::lock_guard<std::mutex> lk(d_mutex);
    first = d_next_hub;
    max = static_cast<size_t>(std::min<uint64_t>(max, playable_locked()));
    size_t n = 0;
    while (n < max && !d_chunks.empty() && d_chunks.front().session == d_active && d_active != 0) {
        chunk& c = d_chunks.front();
        const size_t have = c.values.size() / d_values - c.pos;
        const size_t take = std::min(have, max - n);
        if (c.pos == 0) {
            const double waited = monotonic_s() - c.arrived;
            double& avg = d_counters.latency_s;
            avg = avg < 0 ? waited : avg + 0.05 * (waited - avg);
        }
        std::memcpy(out + n * d_values, c.values.data() + c.pos * d_values, take * d_values * sizeof(float));
        c.pos += take;
        n += take;
        if (c.pos * d_values == c.values.size()) {
            d_chunks.pop_front();
            d_counters.frames_out++;
        }
    }
    d_queued -= n;
    d_next_hub += n;
    d_counters.played += n;
    // Tags up to the end of this piece; one whose sample was already played (the handler was slower
    // than the stream) goes on the first sample of this piece.
    size_t k = 0;
    while (n > 0 && k < d_scheduled.size() && d_scheduled[k].hub_index < first + n) {
        tags.push_back(d_scheduled[k]);
        tags.back().hub_index = std::max(tags.back().hub_index, first);
        ++k;
    }
    d_scheduled.erase(d_scheduled.begin(), d_scheduled.begin() + k);
    return n;
}

bool tx_queue::wait(double timeout_s)
{
    std::unique_lock<std::mutex> lk(d_mutex);
    auto ready = [this] { return d_interrupted || d_lost || playable_locked() > 0; };
    d_cond.wait_for(lk, std::chrono::duration<double>(timeout_s), ready);
    d_interrupted = false;
    return playable_locked() > 0;
}

bool tx_queue::take_resume()
{
    std::lock_guard<std::mutex> lk(d_mutex);
    if (!d_paused || d_queued >= d_capacity)
        return false;
    d_paused = false;
    return true;
}

void tx_queue::interrupt()
{
    std::lock_guard<std::mutex> lk(d_mutex);
    d_interrupted = true;
    d_cond.notify_all();
}

bool tx_queue::active() const
{
    std::lock_guard<std::mutex> lk(d_mutex);
    return d_active != 0;
}

tx_queue_counters tx_queue::counters() const
{
    std::lock_guard<std::mutex> lk(d_mutex);
    tx_queue_counters c = d_counters;
    c.queued = d_queued;
    return c;
}

uint64_t tx_queue::capacity() const
{
    std::lock_guard<std::mutex> lk(d_mutex);
    return d_capacity;
}

} // namespace ria
} // namespace gr
