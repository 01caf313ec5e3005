#include "delay_tracker.h"
#include <algorithm>
#include <cmath>

namespace gr {
namespace ria {

namespace {
constexpr double ESTIMATION_RATE = 2000.0;
constexpr double WINDOW_S = 0.5;
constexpr double HOP_S = 0.125;
// Until the first lock a measurement every SEEK_HOPS-th of a hop: the lock comes as soon as the echo shows,
// with TO_LOCK agreeing ones. Measured only once the microphone window holds no start-up zeros (two
// short bursts correlate at the lag of their positions, a false lock near zero).
constexpr int SEEK_HOPS = 4;
constexpr float BLEND = 0.5f;               // weight of a new cross-spectrum in the running one
constexpr double MIN_REF_POWER = 1e-7;      // -70 dBFS: quieter reference counts as silence
constexpr double MIN_PEAK_RATIO = 7.0;      // GCC-PHAT peak over the correlation's rms
constexpr double EARLIEST_PEAK_SHARE = 0.4; // an earlier peak this strong is taken for the direct sound
constexpr double EARLIEST_PEAK_REACH_S = 0.03;
constexpr double AGREE_S = 0.001;           // two measurements of one arrival
constexpr double KEPT_S = 0.0015;           // a measurement this close to the expected delay keeps it
constexpr double KEEP_PEAK_RATIO = 4.0;     // the tracked arrival's peak over the rms, to be still there
constexpr int TO_LOCK = 3;                  // agreeing measurements for the first lock
constexpr int TO_JUMP = 4;                  // and for a jump

double rms(const float* c, int n)
{
    double s = 0;
    for (int q = 0; q < n; q++)
        s += double(c[q]) * c[q];
    return std::sqrt(s / n);
}
} // namespace

delay_tracker::delay_tracker(double sample_rate, double max_delay_s)
    : d_rate(sample_rate),
      d_decim(std::max(1, static_cast<int>(std::lround(sample_rate / ESTIMATION_RATE)))),
      d_window(static_cast<int>(std::lround(WINDOW_S * sample_rate / d_decim))),
      d_lags(static_cast<int>(std::ceil(max_delay_s * sample_rate / d_decim)) + 2),
      d_hop(static_cast<int>(std::lround(HOP_S * sample_rate / d_decim))),
      d_history(d_window + d_lags),
      d_fft(pow2_at_least(d_history + 1)),
      d_mic_ring(d_history),
      d_ref_ring(d_history),
      d_in(d_fft.size()),
      d_corr(d_fft.size()),
      d_ref_spec(d_fft.bins()),
      d_mic_spec(d_fft.bins()),
      d_cross(d_fft.bins())
{
    reset();
}

void delay_tracker::reset()
{
    std::fill(d_mic_ring.begin(), d_mic_ring.end(), 0.0f);
    std::fill(d_ref_ring.begin(), d_ref_ring.end(), 0.0f);
    std::fill(d_cross.begin(), d_cross.end(), std::complex<float>(0));
    d_count = 0;
    d_acc_mic = d_acc_ref = 0;
    d_acc_n = 0;
    d_cross_started = false;
    d_locked = d_confirmed = d_cancelling = false;
    d_change = change::none;
    d_agreeing = 0;
    d_delay = d_expected = d_candidate = d_before_jump = 0;
    d_before_jump_counted = false;
    d_jumps = 0;
}

void delay_tracker::push(const float* mic, const float* ref, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        d_acc_mic += mic[i];
        d_acc_ref += ref[i];
        if (++d_acc_n == d_decim) {
            push_decimated(static_cast<float>(d_acc_mic / d_decim), static_cast<float>(d_acc_ref / d_decim));
            d_acc_mic = d_acc_ref = 0;
            d_acc_n = 0;
        }
    }
}

void delay_tracker::push_decimated(float mic, float ref)
{
    const size_t slot = d_count % d_history;
    d_mic_ring[slot] = mic;
    d_ref_ring[slot] = ref;
    d_count++;
    if (d_locked ? d_count % d_hop == 0
                 : d_count >= static_cast<uint64_t>(d_window) && d_count % std::max(1, d_hop / SEEK_HOPS) == 0)
        measure();
}

// Whether c has a strong peak within AGREE_S of \p delay (samples at the full rate).
bool delay_tracker::peak_near(const float* c, double delay, float needed) const
{
    const int reach = std::max(1, static_cast<int>(std::ceil(AGREE_S * d_rate / d_decim)));
    const int q0 = d_lags - static_cast<int>(std::lround(delay / d_decim));
    for (int q = std::max(0, q0 - reach); q <= std::min(d_lags, q0 + reach); q++)
        if (std::abs(c[q]) >= needed)
            return true;
    return false;
}

void delay_tracker::measure()
{
    // reference: the last d_history samples, oldest first; microphone: its last d_window
    const size_t oldest = d_count % d_history;
    double ref_power = 0;
    for (int j = 0; j < d_history; j++) {
        const float v = d_ref_ring[(oldest + j) % d_history];
        d_in[j] = v;
        ref_power += double(v) * v;
    }
    if (ref_power / d_history < MIN_REF_POWER)
        return; // far end silent: nothing to learn, and nothing to forget
    std::fill(d_in.begin() + d_history, d_in.end(), 0.0f);
    d_fft.forward(d_in.data(), d_ref_spec.data());
    for (int j = 0; j < d_window; j++)
        d_in[j] = d_mic_ring[(oldest + d_lags + j) % d_history];
    std::fill(d_in.begin() + d_window, d_in.end(), 0.0f);
    d_fft.forward(d_in.data(), d_mic_spec.data());

    const float a = d_cross_started ? BLEND : 1.0f;
    for (size_t k = 0; k < d_cross.size(); k++)
        d_cross[k] = (1.0f - a) * d_cross[k] + a * d_ref_spec[k] * std::conj(d_mic_spec[k]);
    d_cross_started = true;
    d_mic_spec[0] = 0;
    for (size_t k = 1; k < d_cross.size(); k++) {
        const float norm = power(d_cross[k]);
        d_mic_spec[k] = norm > 0 ? d_cross[k] * (1.0f / std::sqrt(norm)) : std::complex<float>(0);
    }
    d_fft.inverse(d_mic_spec.data(), d_corr.data());
    const float* c = d_corr.data(); // peaks at q = d_lags - delay / d_decim

    int best = 0;
    for (int q = 1; q <= d_lags; q++)
        if (std::abs(c[q]) > std::abs(c[best]))
            best = q;
    const double noise = rms(c, d_lags + 1);
    if (!(noise > 0) || !(std::abs(c[best]) >= MIN_PEAK_RATIO * noise)) {
        if (!std::isfinite(noise)) // cannot happen with clean input; never let it stick
            std::fill(d_cross.begin(), d_cross.end(), std::complex<float>(0)), d_cross_started = false;
        return;
    }
    const float strong = static_cast<float>(std::max(EARLIEST_PEAK_SHARE * std::abs(c[best]), MIN_PEAK_RATIO * noise));
    // the tracked arrival, still clearly in the correlation, is kept even when another peak is stronger
    if (d_locked && d_confirmed && peak_near(c, d_expected, static_cast<float>(KEEP_PEAK_RATIO * noise))) {
        d_agreeing = 0;
        return;
    }
    // the earliest strong local peak up to EARLIEST_PEAK_REACH_S before the strongest one
    const int top = std::min(d_lags - 1, best + static_cast<int>(EARLIEST_PEAK_REACH_S * d_rate / d_decim));
    for (int q = top; q > best; q--) {
        const float m = std::abs(c[q]);
        if (m >= strong && m >= std::abs(c[q - 1]) && m >= std::abs(c[q + 1])) {
            best = q;
            break;
        }
    }
    double frac = 0;
    if (best > 0 && best < d_lags) {
        const double sign = c[best] < 0 ? -1.0 : 1.0;
        const double l = sign * c[best - 1], m = sign * c[best], r = sign * c[best + 1];
        const double den = l - 2 * m + r;
        if (den < 0)
            frac = std::clamp(0.5 * (l - r) / den, -0.5, 0.5);
    }
    const double measured = (d_lags - (best + frac)) * d_decim;
    if (d_locked && std::abs(measured - d_expected) <= KEPT_S * d_rate) {
        d_agreeing = 0;
        return;
    }
    if (d_agreeing > 0 && std::abs(measured - d_candidate) <= AGREE_S * d_rate)
        d_agreeing++;
    else
        d_agreeing = 1;
    d_candidate = measured;
    if (d_agreeing >= (d_locked ? TO_JUMP : TO_LOCK)) {
        if (!d_locked)
            d_change = change::lock;
        else if (d_cancelling)
            d_change = change::relocation;
        else
            d_change = change::jump, d_jumps++;
        d_before_jump = d_delay;
        d_before_jump_counted = d_change == change::jump;
        d_locked = true;
        d_delay = d_expected = measured;
        d_agreeing = 0;
    }
}

} // namespace ria
} // namespace gr
