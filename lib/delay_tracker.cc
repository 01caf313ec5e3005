#include "delay_tracker.h"
#include <algorithm>
#include <cmath>
#include <map>

namespace gr {
namespace ria {

namespace {
constexpr double ESTIMATION_RATE = 4000.0;
constexpr double WINDOW_S = 1.0;
constexpr double HOP_S = 0.25;
constexpr double FINE_WINDOW_S = 0.5;
constexpr double FINE_PHAT_EXPONENT = 0.8; // partial whitening: sharp peak, but quiet bins stay quiet
constexpr double SMOOTHING = 0.1;          // weight of a new cross-spectrum in the running one
constexpr double MIN_REF_POWER = 1e-7;     // -70 dBFS: quieter reference counts as silence
constexpr double MIN_PEAK_RATIO = 6.0;     // GCC-PHAT peak over the correlation's rms
constexpr double EARLIEST_PEAK_SHARE = 0.5; // an earlier peak this strong is taken for the direct sound
// Measurements this close to the line belong to its segment: loose while the drift is unknown (the
// line is flat and the delay walks away from it), tight once it is known, so that an echo path that
// changes shape cannot pass for drift.
constexpr double AGREE_S = 0.002;
constexpr double AGREE_WITH_DRIFT_S = 0.0005;
constexpr size_t CANDIDATES_TO_LOCK = 3;   // agreeing measurements needed for the first lock
constexpr size_t CANDIDATES_TO_JUMP = 8;   // agreeing outliers (2 s) needed to move a lock
constexpr double KEEP_S = 60.0;            // measurements older than this leave the fit
constexpr double MIN_SPREAD_S2 = 40.0;     // sum of squared time spread before a slope is trusted
constexpr double MAX_DRIFT = 2000e-6;      // a fitted drift beyond this is not believed
// A slope within this many standard errors of zero is taken as no drift: following a drift that is
// only fitting noise (a few tenths of a ppm) costs the canceller several dB.
constexpr double SLOPE_SIGNIFICANCE = 3.0;

// The direct sound arrives first; in a live room a later reflection can correlate more strongly, and
// aligning on it would put the direct sound before the canceller's filter starts. Correlations here
// peak at q = reach - delay, so an earlier arrival has a higher q: the highest local peak in
// (best, top] at least EARLIEST_PEAK_SHARE as strong as c[best] wins.
int earliest_strong_peak(const float* c, int best, int top)
{
    for (int q = top; q > best; q--)
        if (c[q] >= EARLIEST_PEAK_SHARE * c[best] && c[q] >= c[q - 1] && c[q] >= c[q + 1])
            return q;
    return best;
}

// Where between its neighbours the peak at c[q] lies (-0.5..0.5); false when the three are no peak.
bool parabolic_offset(const float* c, int q, double& offset)
{
    const double l = c[q - 1], m = c[q], r = c[q + 1];
    const double den = l - 2 * m + r;
    if (!(den < 0))
        return false;
    offset = 0.5 * (l - r) / den;
    return true;
}

int next_pow2(int n)
{
    int p = 1;
    while (p < n)
        p <<= 1;
    return p;
}
} // namespace

delay_tracker::delay_tracker(double sample_rate, double max_delay_s)
    : d_rate(sample_rate),
      d_decim(std::max(1, static_cast<int>(sample_rate / ESTIMATION_RATE))),
      d_window(static_cast<int>(std::lround(WINDOW_S * sample_rate / d_decim))),
      d_lags(static_cast<int>(std::ceil(max_delay_s * sample_rate / d_decim)) + 1),
      d_hop(static_cast<int>(std::lround(HOP_S * sample_rate / d_decim))),
      d_fft_size(next_pow2(d_window + d_lags + 1)),
      d_history(d_window + d_lags),
      d_mic_ring(d_history, 0.0f),
      d_ref_ring(d_history, 0.0f),
      d_fine_window(static_cast<int>(std::lround(FINE_WINDOW_S * sample_rate))),
      d_fine_reach(2 * d_decim + 4),
      d_fine_fft_size(next_pow2(d_fine_window + 2 * d_fine_reach + 1)),
      d_full_history(static_cast<size_t>(d_fine_window + std::ceil(max_delay_s * sample_rate) + 2 * d_fine_reach + 2)),
      d_full_mic(d_full_history, 0.0f),
      d_full_ref(d_full_history, 0.0f),
      d_fine_fwd(std::make_unique<gr::fft::fft_real_fwd>(d_fine_fft_size)),
      d_fine_rev(std::make_unique<gr::fft::fft_real_rev>(d_fine_fft_size)),
      d_fine_ref_spec(d_fine_fft_size / 2 + 1),
      d_fwd(d_fft_size),
      d_rev(d_fft_size),
      d_ref_spec(d_fft_size / 2 + 1),
      d_cross(d_fft_size / 2 + 1)
{
}

void delay_tracker::reset()
{
    std::fill(d_mic_ring.begin(), d_mic_ring.end(), 0.0f);
    std::fill(d_ref_ring.begin(), d_ref_ring.end(), 0.0f);
    std::fill(d_full_mic.begin(), d_full_mic.end(), 0.0f);
    std::fill(d_full_ref.begin(), d_full_ref.end(), 0.0f);
    d_full_count = 0;
    d_count = 0;
    d_acc_mic = d_acc_ref = 0;
    d_acc_n = 0;
    d_cross_started = false;
    d_kept.clear();
    d_candidates.clear();
    d_segment = 0;
    d_locked = false;
    d_jumps = 0;
    d_slope = 0;
    d_slope_known = false;
}

void delay_tracker::push(const float* mic, const float* ref, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const size_t slot = d_full_count++ % d_full_history;
        d_full_mic[slot] = mic[i];
        d_full_ref[slot] = ref[i];
        d_acc_mic += mic[i];
        d_acc_ref += ref[i];
        if (++d_acc_n == d_decim) {
            push_decimated(static_cast<float>(d_acc_mic / d_decim),
                           static_cast<float>(d_acc_ref / d_decim));
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
    if (d_count >= static_cast<uint64_t>(d_history) && d_count % d_hop == 0)
        measure();
}

void delay_tracker::measure()
{
    // The reference: the last d_history samples, oldest first. The microphone: its last d_window.
    const size_t oldest = d_count % d_history;
    float* in = d_fwd.get_inbuf();
    double ref_power = 0;
    for (int j = 0; j < d_history; j++) {
        in[j] = d_ref_ring[(oldest + j) % d_history];
        ref_power += double(in[j]) * in[j];
    }
    if (ref_power / d_history < MIN_REF_POWER)
        return; // far end silent: nothing to learn, and nothing to forget
    std::fill(in + d_history, in + d_fft_size, 0.0f);
    d_fwd.execute();
    std::copy(d_fwd.get_outbuf(), d_fwd.get_outbuf() + d_ref_spec.size(), d_ref_spec.begin());

    for (int k = 0; k < d_window; k++)
        in[k] = d_mic_ring[(oldest + d_lags + k) % d_history];
    std::fill(in + d_window, in + d_fft_size, 0.0f);
    d_fwd.execute();
    const gr_complex* mic_spec = d_fwd.get_outbuf();

    const float a = d_cross_started ? static_cast<float>(SMOOTHING) : 1.0f;
    for (size_t k = 0; k < d_cross.size(); k++)
        d_cross[k] = (1.0f - a) * d_cross[k] + a * d_ref_spec[k] * std::conj(mic_spec[k]);
    d_cross_started = true;

    gr_complex* phat = d_rev.get_inbuf();
    phat[0] = 0;
    for (size_t k = 1; k < d_cross.size(); k++) {
        const float mag = std::abs(d_cross[k]);
        phat[k] = mag > 0 ? d_cross[k] / mag : gr_complex(0);
    }
    d_rev.execute();
    const float* c = d_rev.get_outbuf();

    // c[q] peaks at q = d_lags - delay (in decimated samples).
    int best = 0;
    double sum2 = 0;
    for (int q = 0; q <= d_lags; q++) {
        sum2 += double(c[q]) * c[q];
        if (c[q] > c[best])
            best = q;
    }
    const double rms = std::sqrt(sum2 / (d_lags + 1));
    if (rms <= 0 || c[best] < MIN_PEAK_RATIO * rms)
        return;
    best = earliest_strong_peak(c, best, d_lags - 1);
    double frac = 0;
    if (best > 0 && best < d_lags)
        parabolic_offset(c, best, frac);
    const double coarse = (d_lags - (best + frac)) * d_decim;
    const double t = (static_cast<double>(d_count) - d_window / 2.0) * d_decim / d_rate;
    if (d_locked) {
        // A stronger peak elsewhere (a voiced sound's pitch period can make one) is no reason to
        // move while the locked path still correlates clearly: a real jump makes it vanish.
        const double expected = predict(t);
        const int q = d_lags - static_cast<int>(std::lround(expected / d_decim));
        if (q >= 1 && q < d_lags && std::abs(coarse - expected) > AGREE_S * d_rate &&
            std::max({ c[q - 1], c[q], c[q + 1] }) >= MIN_PEAK_RATIO * rms) {
            d_candidates.clear();
            return;
        }
    }
    consider(t, refine(coarse));
}

// GCC-PHAT at the full rate over the last d_fine_window samples, for lags within d_fine_reach of
// the coarse one. Returns the coarse lag when the refinement finds no clear peak.
double delay_tracker::refine(double coarse) const
{
    const int64_t lag0 = static_cast<int64_t>(std::lround(coarse));
    const int64_t end = static_cast<int64_t>(d_full_count); // one past the newest sample
    const int64_t ref_start = end - d_fine_window - lag0 - d_fine_reach;
    if (ref_start < end - static_cast<int64_t>(d_full_history) || ref_start < 0)
        return coarse;
    float* in = d_fine_fwd->get_inbuf();
    const int ref_len = d_fine_window + 2 * d_fine_reach;
    for (int j = 0; j < ref_len; j++)
        in[j] = d_full_ref[(ref_start + j) % d_full_history];
    std::fill(in + ref_len, in + d_fine_fft_size, 0.0f);
    d_fine_fwd->execute();
    std::copy(d_fine_fwd->get_outbuf(), d_fine_fwd->get_outbuf() + d_fine_ref_spec.size(), d_fine_ref_spec.begin());
    for (int k = 0; k < d_fine_window; k++)
        in[k] = d_full_mic[(end - d_fine_window + k) % d_full_history];
    std::fill(in + d_fine_window, in + d_fine_fft_size, 0.0f);
    d_fine_fwd->execute();
    const gr_complex* mic_spec = d_fine_fwd->get_outbuf();
    gr_complex* w = d_fine_rev->get_inbuf();
    w[0] = 0;
    for (size_t k = 1; k < d_fine_ref_spec.size(); k++) {
        const gr_complex g = d_fine_ref_spec[k] * std::conj(mic_spec[k]);
        const float mag = std::abs(g);
        w[k] = mag > 0 ? g / std::pow(mag, static_cast<float>(FINE_PHAT_EXPONENT)) : gr_complex(0);
    }
    d_fine_rev->execute();
    const float* c = d_fine_rev->get_outbuf();
    // c[q] peaks at q = lag0 + d_fine_reach - delay.
    int best = 1;
    for (int q = 1; q < 2 * d_fine_reach; q++)
        if (c[q] > c[best])
            best = q;
    best = earliest_strong_peak(c, best, 2 * d_fine_reach - 1);
    double frac = 0;
    if (best == 1 || best == 2 * d_fine_reach - 1 || !parabolic_offset(c, best, frac))
        return coarse;
    return static_cast<double>(lag0 + d_fine_reach) - (best + frac);
}

double delay_tracker::predict(double t) const { return d_mean_d + d_slope * (t - d_mean_t); }

double delay_tracker::delay_at(double at) const { return predict(at / d_rate); }

void delay_tracker::consider(double t, double d)
{
    const double agree = (d_slope_known ? AGREE_WITH_DRIFT_S : AGREE_S) * d_rate;
    if (d_locked && std::abs(d - predict(t)) <= agree) {
        d_candidates.clear();
        d_kept.push_back({ t, d, d_segment });
    } else {
        const size_t needed = d_locked ? CANDIDATES_TO_JUMP : CANDIDATES_TO_LOCK;
        d_candidates.push_back({ t, d, 0 });
        if (d_candidates.size() > needed)
            d_candidates.erase(d_candidates.begin());
        if (d_candidates.size() < needed)
            return;
        const double t0 = d_candidates.front().t;
        double lo = 1e300, hi = -1e300;
        for (const auto& m : d_candidates) {
            const double flat = m.d - d_slope * (m.t - t0);
            lo = std::min(lo, flat);
            hi = std::max(hi, flat);
        }
        if (hi - lo > agree)
            return;
        if (d_locked)
            d_jumps++;
        d_segment++;
        d_locked = true;
        for (auto& m : d_candidates)
            d_kept.push_back({ m.t, m.d, d_segment });
        d_candidates.clear();
    }
    while (!d_kept.empty() && d_kept.front().t < t - KEEP_S)
        d_kept.pop_front();
    refit();
}

void delay_tracker::refit()
{
    struct sums {
        double n = 0, t = 0, d = 0, tt = 0, td = 0;
    };
    std::map<uint64_t, sums> by_segment;
    for (const auto& m : d_kept) {
        auto& s = by_segment[m.segment];
        s.n += 1;
        s.t += m.t;
        s.d += m.d;
        s.tt += m.t * m.t;
        s.td += m.t * m.d;
    }
    double sxx = 0, sxy = 0;
    for (const auto& [segment, s] : by_segment) {
        sxx += s.tt - s.t * s.t / s.n;
        sxy += s.td - s.t * s.d / s.n;
    }
    if (sxx >= MIN_SPREAD_S2 && std::abs(sxy / sxx) <= MAX_DRIFT * d_rate) {
        const double slope = sxy / sxx;
        double residual2 = 0;
        for (const auto& m : d_kept) {
            const auto& s = by_segment[m.segment];
            const double e = (m.d - s.d / s.n) - slope * (m.t - s.t / s.n);
            residual2 += e * e;
        }
        const double dof = std::max(1.0, static_cast<double>(d_kept.size()) - by_segment.size() - 1);
        const double standard_error = std::sqrt(residual2 / dof / sxx);
        d_slope = std::abs(slope) > SLOPE_SIGNIFICANCE * standard_error ? slope : 0.0;
        d_slope_known = true;
    }
    const auto& current = by_segment[d_segment];
    d_mean_t = current.t / current.n;
    d_mean_d = current.d / current.n;
}

} // namespace ria
} // namespace gr
