#include "riasim_transmitter.h"

#include <SoapySDR/Constants.h>
#include <SoapySDR/Errors.h>
#include <SoapySDR/Logger.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

namespace riasim {

namespace {
// An untimed burst goes on the air this long after its first write, as a real radio's pipeline.
constexpr int64_t start_latency_ns = 5'000'000;
// How far ahead of the air a paced transmitter takes samples (its buffer): 50 ms, within the ring.
size_t buffer_samples(double rate) { return std::clamp<size_t>(size_t(rate * 0.05), 4096, 131072); }
constexpr size_t unpaced_mtu = 65536;
constexpr size_t max_events = 64;
} // namespace

transmitter::transmitter(const std::string& serial, const std::string& air_path, bool pace)
    : d_log(tx_log_for(serial)), d_air_path(air_path), d_air(air_path), d_pace(pace)
{
}

size_t transmitter::mtu() const { return d_pace ? buffer_samples(rate) / 4 : unpaced_mtu; }

void transmitter::activate()
{
    d_active = true;
    d_in_burst = false;
    d_late = false;
    d_new_segment = true;
}

void transmitter::deactivate()
{
    d_active = false;
    d_in_burst = false;
    d_late = false;
    d_events.clear();
    d_air.release();
}

int64_t transmitter::next_ns() const
{
    return d_seg_start_ns + int64_t(std::llround(1e9 * double(d_seg_samples) / d_seg_rate));
}

void transmitter::check_starved(int64_t now)
{
    if (d_pace && d_in_burst && !d_late && !d_starved_reported && next_ns() < now) {
        d_starved_reported = true;
        if (d_events.size() < max_events)
            d_events.push_back({ SOAPY_SDR_UNDERFLOW, next_ns() });
    }
}

int transmitter::write(std::unique_lock<std::mutex>& lock,
                       const void* buff,
                       size_t n,
                       int flags,
                       long long time_ns,
                       long timeout_us,
                       long long hw_offset_ns)
{
    if (!d_active) {
        d_log->add({ flags, time_ns, n, SOAPY_SDR_STREAM_ERROR, freq, rate, gain, false });
        return SOAPY_SDR_STREAM_ERROR;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(timeout_us);

    // Where these samples go on the air; nothing is committed until they are taken.
    int64_t start = 0;
    bool new_burst = false, late = false, gap = false;
    size_t m = 0;
    while (true) {
        const int64_t now = air_now_ns();
        new_burst = !d_in_burst;
        late = d_late;
        gap = false;
        if (new_burst) {
            late = (flags & SOAPY_SDR_HAS_TIME) && time_ns - hw_offset_ns < now;
            start = (flags & SOAPY_SDR_HAS_TIME) ? time_ns - hw_offset_ns : now + start_latency_ns;
        } else {
            start = next_ns();
            if (!late && start < now) { // the radio ran dry: these samples start after a gap
                gap = true;
                start = now + start_latency_ns;
            }
        }
        if (!d_pace || late || n == 0) {
            m = std::min(n, d_pace ? n : unpaced_mtu);
            break;
        }
        const double room = double(buffer_samples(rate)) - 1e-9 * double(start - now) * rate;
        const size_t want = std::min(n, mtu());
        if (room >= double(want)) {
            m = std::min(n, size_t(room));
            break;
        }
        const auto now_steady = std::chrono::steady_clock::now();
        if (now_steady >= deadline) {
            d_log->add({ flags, time_ns, n, SOAPY_SDR_TIMEOUT, freq, rate, gain, false });
            return SOAPY_SDR_TIMEOUT;
        }
        const auto need = std::chrono::nanoseconds(int64_t(1e9 * (double(want) - room) / rate) + 1);
        lock.unlock();
        std::this_thread::sleep_until(std::min(deadline, now_steady + need));
        lock.lock();
        if (!d_active)
            return SOAPY_SDR_STREAM_ERROR;
    }

    if (new_burst) {
        d_in_burst = true;
        d_late = late;
        d_starved_reported = false;
        d_new_segment = true;
        if (late && d_events.size() < max_events)
            d_events.push_back({ SOAPY_SDR_TIME_ERROR, start });
    }
    if (gap) {
        if (d_pace && !d_starved_reported && d_events.size() < max_events)
            d_events.push_back({ SOAPY_SDR_UNDERFLOW, next_ns() });
        d_starved_reported = false;
        d_new_segment = true;
    }
    if (!late && m > 0) {
        if (d_new_segment) {
            d_seg_start_ns = start;
            d_seg_samples = 0;
            d_seg_rate = rate;
            d_new_segment = false;
            if (!d_air.begin_segment(start, { rate, freq, gain + tx_dbm_at_full_scale_0db }) &&
                !d_air_problem_logged) {
                d_air_problem_logged = true;
                SoapySDR::logf(SOAPY_SDR_WARNING, "riasim: nobody hears this transmitter: %s",
                               d_air.problem().c_str());
            }
        }
        const std::complex<float>* x = static_cast<const std::complex<float>*>(buff);
        if (cs16) {
            d_scratch.resize(m);
            const int16_t* in = static_cast<const int16_t*>(buff);
            for (size_t k = 0; k < m; k++)
                d_scratch[k] = { in[2 * k] / 32767.0f, in[2 * k + 1] / 32767.0f };
            x = d_scratch.data();
        }
        d_air.append(x, m);
        d_seg_samples += m;
    }
    if ((flags & SOAPY_SDR_END_BURST) && m == n) {
        d_in_burst = false;
        d_late = false;
    }
    d_log->add({ flags, time_ns, n, int(m), freq, rate, gain, !late });
    return int(m);
}

int transmitter::read_status(std::unique_lock<std::mutex>& lock,
                             int& flags,
                             long long& time_ns,
                             long timeout_us,
                             long long hw_offset_ns)
{
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(timeout_us);
    while (true) {
        check_starved(air_now_ns());
        if (!d_events.empty()) {
            const status_event e = d_events.front();
            d_events.pop_front();
            flags = SOAPY_SDR_HAS_TIME;
            time_ns = e.air_ns + hw_offset_ns;
            return e.code;
        }
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline)
            return SOAPY_SDR_TIMEOUT;
        lock.unlock();
        std::this_thread::sleep_until(std::min(deadline, now + std::chrono::milliseconds(10)));
        lock.lock();
    }
}

} // namespace riasim
