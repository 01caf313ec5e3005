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
// Only this much of the spectrum takes part in the refinement (which whitens it by
// |cross-spectrum|^0.75 only: a sharp peak, but quiet bins stay quiet). Drift moves the delay while a window is
// taken (0.1 ms in half a second at 200 ppm), which smears a wider-band peak into several; at 8 kHz
// the peak is wider than that.
constexpr double FINE_BANDWIDTH_HZ = 8000.0;
constexpr double FINE_MIN_PEAK_RATIO = 6.0; // refinement peak over its correlation's rms
constexpr double FINE_PEAK_SHARE = 0.5; // a refinement peak this strong may be the tracked arrival
constexpr double SMOOTHING = 0.1;          // weight of a new cross-spectrum in the running one
constexpr double MIN_REF_POWER = 1e-7;     // -70 dBFS: quieter reference counts as silence
constexpr double MIN_PEAK_RATIO = 6.0;     // GCC-PHAT peak over the correlation's rms
constexpr double EARLIEST_PEAK_SHARE = 0.3; // an earlier peak this strong is taken for the direct sound
constexpr double EARLIEST_PEAK_REACH_S = 0.05; // how far before the strongest peak the direct sound may be
// Measurements this close to the line belong to its segment: loose while the drift is unknown (the
// line is flat and the delay walks away from it), tight once it is known, so that an echo path that
// changes shape cannot pass for drift.
constexpr double AGREE_S = 0.002;
constexpr double AGREE_WITH_DRIFT_S = 0.0005;
constexpr double STEP_S = 0.00005;         // jitter allowed between two measurements of one arrival
constexpr double MAX_UNKNOWN_DRIFT = 300e-6; // drift allowed between measurements while it is not known
constexpr size_t CANDIDATES_TO_LOCK = 3;   // agreeing measurements needed for the first lock
constexpr size_t CANDIDATES_TO_JUMP = 8;   // agreeing outliers (2 s) needed to move a lock
constexpr double KEEP_S = 60.0;            // measurements older than this leave the fit
constexpr double MIN_SPREAD_S2 = 40.0;     // sum of squared time spread before a slope is trusted
constexpr double MAX_DRIFT = 2000e-6;      // a fitted drift beyond this is not believed
// A slope less certain than this is not followed: speexdsp loses about 6 dB to each ppm of error.
constexpr double MAX_SLOPE_ERROR = 0.3e-6;
// A slope within this many standard errors of zero is taken as no drift: following a drift that is
// only fitting noise (a few tenths of a ppm) costs the canceller several dB.
constexpr double SLOPE_SIGNIFICANCE = 3.0;

// A local peak of |c| at q at least \p needed high. Magnitudes, because a reflection, or a microphone
// wired the other way round, correlates negatively.
bool is_strong_peak(const float* c, int q, float needed)
{
    const float m = std::abs(c[q]);
    return m >= needed && m >= std::abs(c[q - 1]) && m >= std::abs(c[q + 1]);
}

double rms(const float* c, int n)
{
    double sum2 = 0;
    for (int q = 0; q < n; q++)
        sum2 += double(c[q]) * c[q];
    return std::sqrt(sum2 / n);
}

// The direct sound arrives first; in a live room a later reflection can correlate more strongly, and
// aligning on it would put the direct sound before the canceller's filter starts. Arriving early costs
// the canceller a few milliseconds of its tail; arriving late costs it the whole echo. So the earliest
// strong peak in (best, top] (top: EARLIEST_PEAK_REACH_S before best at most) at least
// EARLIEST_PEAK_SHARE as strong as c[best], and at least \p floor, wins (the correlations here peak
// at q = reach - delay: an earlier arrival has a higher q).
int earliest_strong_peak(const float* c, int best, int top, double floor)
{
    const float needed = static_cast<float>(std::max(EARLIEST_PEAK_SHARE * std::abs(c[best]), floor));
    for (int q = top; q > best; q--)
        if (is_strong_peak(c, q, needed))
            return q;
    return best;
}

int strongest(const float* c, int from, int to)
{
    int best = from;
    for (int q = from + 1; q <= to; q++)
        if (std::abs(c[q]) > std::abs(c[best]))
            best = q;
    return best;
}

// Where between its neighbours the peak at c[q] lies (-0.5..0.5); false when the three are no peak.
bool parabolic_offset(const float* c, int q, double& offset)
{
    const double sign = c[q] < 0 ? -1.0 : 1.0;
    const double l = sign * c[q - 1], m = sign * c[q], r = sign * c[q + 1];
    const double den = l - 2 * m + r;
    if (!(den < 0))
        return false;
    offset = 0.5 * (l - r) / den;
    return true;
}

// n samples of a ring buffer starting at absolute index start (the ring holds index i at i % size).
void copy_from_ring(const std::vector<float>& ring, uint64_t start, size_t n, float* out)
{
    const size_t first = static_cast<size_t>(start % ring.size());
    const size_t head = std::min(n, ring.size() - first);
    std::copy_n(ring.data() + first, head, out);
    std::copy_n(ring.data(), n - head, out + head);
}

void copy_into_ring(std::vector<float>& ring, uint64_t start, const float* in, size_t n)
{
    const size_t first = static_cast<size_t>(start % ring.size());
    const size_t head = std::min(n, ring.size() - first);
    std::copy_n(in, head, ring.data() + first);
    std::copy_n(in + head, n - head, ring.data());
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
      d_fine_bins(std::min(d_fine_ref_spec.size(),
                           static_cast<size_t>(FINE_BANDWIDTH_HZ / sample_rate * d_fine_fft_size) + 1)),
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
    forget_slope();
}

void delay_tracker::forget_slope()
{
    d_slope = d_fit_slope = 0;
    d_fit_slope_error = HUGE_VAL;
    d_slope_known = false;
}

void delay_tracker::push(const float* mic, const float* ref, size_t n)
{
    for (size_t done = 0; done < n;) { // chunks no longer than the ring
        const size_t take = std::min(n - done, d_full_history);
        copy_into_ring(d_full_mic, d_full_count, mic + done, take);
        copy_into_ring(d_full_ref, d_full_count, ref + done, take);
        d_full_count += take;
        done += take;
    }
    for (size_t i = 0; i < n; i++) {
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
    float* in = d_fwd.get_inbuf();
    copy_from_ring(d_ref_ring, d_count, d_history, in); // d_count % d_history is the oldest
    double ref_power = 0;
    for (int j = 0; j < d_history; j++)
        ref_power += double(in[j]) * in[j];
    if (ref_power / d_history < MIN_REF_POWER)
        return; // far end silent: nothing to learn, and nothing to forget
    std::fill(in + d_history, in + d_fft_size, 0.0f);
    d_fwd.execute();
    std::copy(d_fwd.get_outbuf(), d_fwd.get_outbuf() + d_ref_spec.size(), d_ref_spec.begin());

    copy_from_ring(d_mic_ring, d_count + d_lags, d_window, in);
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
        const float norm = std::norm(d_cross[k]); // |x|^2: no hypot() per bin
        phat[k] = norm > 0 ? d_cross[k] * (1.0f / std::sqrt(norm)) : gr_complex(0);
    }
    d_rev.execute();
    const float* c = d_rev.get_outbuf();

    // c[q] peaks at q = d_lags - delay (in decimated samples).
    int best = strongest(c, 0, d_lags);
    const double noise = rms(c, d_lags + 1);
    if (noise <= 0 || std::abs(c[best]) < MIN_PEAK_RATIO * noise)
        return;
    const int reach = static_cast<int>(EARLIEST_PEAK_REACH_S * d_rate / d_decim);
    best = earliest_strong_peak(c, best, std::min(best + reach, d_lags - 1), MIN_PEAK_RATIO * noise);
    double frac = 0;
    if (best > 0 && best < d_lags)
        parabolic_offset(c, best, frac);
    const double coarse = (d_lags - (best + frac)) * d_decim;
    const double t = (static_cast<double>(d_count) - d_window / 2.0) * d_decim / d_rate;
    // Where the arrival tracked so far is now: the latest measurement, moved along the drift if known
    // (the fitted line lags behind a drift it does not know yet).
    const double tracked = d_kept.empty() ? predict(t) : d_kept.back().d + d_slope * (t - d_kept.back().t);
    if (d_locked) {
        // The tracked arrival is refined first, and kept while it is there: a stronger peak elsewhere
        // (a later reflection, a voiced sound's pitch period) is no reason to move. An earlier arrival
        // is: the lock was on a reflection, taken while the correlation was too noisy to show the
        // direct sound. So is the tracked arrival vanishing from both correlations: a real jump.
        const bool earlier_arrival =
            coarse < tracked - d_fine_reach && tracked - coarse <= EARLIEST_PEAK_REACH_S * d_rate;
        if (!earlier_arrival) {
            const double fine = refine(tracked, tracked);
            if (std::isfinite(fine) && !d_kept.empty() &&
                continues(d_kept.back(), t, fine, d_fit_slope, d_fit_slope_error)) {
                consider(t, fine);
                return;
            }
            const int q = d_lags - static_cast<int>(std::lround(tracked / d_decim));
            if (q >= 1 && q < d_lags && std::abs(c[strongest(c, q - 1, q + 1)]) >= MIN_PEAK_RATIO * noise)
                return;
        }
    }
    const double fine = refine(coarse, std::nan(""));
    if (std::isfinite(fine))
        consider(t, fine);
}

// GCC-PHAT at the full rate over the last d_fine_window samples, for lags within d_fine_reach of
// \p around. Returns NaN when it finds no clear peak. \p expected is the tracked delay, or NaN when
// there is none to follow.
double delay_tracker::refine(double around, double expected) const
{
    const int64_t lag0 = static_cast<int64_t>(std::lround(around));
    const int64_t end = static_cast<int64_t>(d_full_count); // one past the newest sample
    const int64_t ref_start = end - d_fine_window - lag0 - d_fine_reach;
    if (ref_start < end - static_cast<int64_t>(d_full_history) || ref_start < 0)
        return std::nan("");
    float* in = d_fine_fwd->get_inbuf();
    const int ref_len = d_fine_window + 2 * d_fine_reach;
    copy_from_ring(d_full_ref, ref_start, ref_len, in);
    std::fill(in + ref_len, in + d_fine_fft_size, 0.0f);
    d_fine_fwd->execute();
    std::copy(d_fine_fwd->get_outbuf(), d_fine_fwd->get_outbuf() + d_fine_ref_spec.size(), d_fine_ref_spec.begin());
    copy_from_ring(d_full_mic, end - d_fine_window, d_fine_window, in);
    std::fill(in + d_fine_window, in + d_fine_fft_size, 0.0f);
    d_fine_fwd->execute();
    const gr_complex* mic_spec = d_fine_fwd->get_outbuf();
    gr_complex* w = d_fine_rev->get_inbuf();
    w[0] = 0;
    std::fill(w + d_fine_bins, w + d_fine_ref_spec.size(), gr_complex(0));
    for (size_t k = 1; k < d_fine_bins; k++) {
        const gr_complex g = d_fine_ref_spec[k] * std::conj(mic_spec[k]);
        const float norm = std::norm(g);
        // |g|^-0.75 from square roots, which vectorise where a pow() per bin would not
        const float quarter = norm > 0 ? 1.0f / std::sqrt(std::sqrt(norm)) : 0.0f; // |g|^-0.5
        w[k] = g * (quarter * std::sqrt(quarter));
    }
    d_fine_rev->execute();
    const float* c = d_fine_rev->get_outbuf();
    // c[q] peaks at q = lag0 + d_fine_reach - delay. Once locked, of the clear peaks the one nearest
    // the expected delay: two arrivals of almost equal strength would otherwise take turns, and
    // each turn would look like a step in the delay to the drift fit.
    const int last = 2 * d_fine_reach - 1;
    int best = strongest(c, 1, last);
    if (!(std::abs(c[best]) >= FINE_MIN_PEAK_RATIO * rms(c, d_fine_fft_size)))
        return std::nan("");
    if (std::isfinite(expected)) {
        const double expected_q = static_cast<double>(lag0 + d_fine_reach) - expected;
        const float needed = static_cast<float>(FINE_PEAK_SHARE) * std::abs(c[best]);
        for (int q = 2; q < last; q++)
            if (is_strong_peak(c, q, needed) && std::abs(q - expected_q) < std::abs(best - expected_q))
                best = q;
    }
    double frac = 0;
    if (best == 1 || best == last || !parabolic_offset(c, best, frac))
        return std::nan("");
    return static_cast<double>(lag0 + d_fine_reach) - (best + frac);
}

double delay_tracker::predict(double t) const { return d_mean_d + d_slope * (t - d_mean_t); }

double delay_tracker::delay_at(double at) const { return predict(at / d_rate); }

// Whether a measurement (t, d) continues from an earlier one along \p slope: within the jitter of a
// measurement, plus the drift not known yet. Two arrivals of one echo a fraction of a millisecond apart
// must not share a segment, or the step between them would be fitted as drift.
bool delay_tracker::continues(const measurement& from, double t, double d, double slope, double slope_error) const
{
    const double dt = std::abs(t - from.t);
    const double allowed = STEP_S + std::min(MAX_UNKNOWN_DRIFT, SLOPE_SIGNIFICANCE * slope_error / d_rate) * dt;
    return std::abs(d - from.d - slope * (t - from.t)) <= allowed * d_rate;
}

void delay_tracker::consider(double t, double d)
{
    const double agree = (d_slope_known ? AGREE_WITH_DRIFT_S : AGREE_S) * d_rate;
    if (d_locked && std::abs(d - predict(t)) <= agree &&
        (d_kept.empty() || continues(d_kept.back(), t, d, d_fit_slope, d_fit_slope_error))) {
        d_candidates.clear();
        d_kept.push_back({ t, d, d_segment });
    } else {
        const size_t needed = d_locked ? CANDIDATES_TO_JUMP : CANDIDATES_TO_LOCK;
        d_candidates.push_back({ t, d, 0 });
        if (d_candidates.size() > needed)
            d_candidates.erase(d_candidates.begin());
        if (d_candidates.size() < needed)
            return;
        auto consistent = [&](double slope, double slope_error) {
            return std::all_of(d_candidates.begin(), d_candidates.end(), [&](const measurement& m) {
                return continues(d_candidates.front(), m.t, m.d, slope, slope_error);
            });
        };
        if (!consistent(d_fit_slope, d_fit_slope_error)) {
            if (!d_slope_known || !consistent(0.0, HUGE_VAL))
                return;
            // They agree with each other but not with the fitted drift: the fit was wrong (it took
            // in a step between two arrivals), so it starts over (refit() below forgets its slope).
            d_kept.clear();
        }
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
    forget_slope();
    if (sxx >= MIN_SPREAD_S2) {
        const double slope = sxy / sxx;
        double residual2 = 0;
        for (const auto& m : d_kept) {
            const auto& s = by_segment[m.segment];
            const double e = (m.d - s.d / s.n) - slope * (m.t - s.t / s.n);
            residual2 += e * e;
        }
        const double dof = std::max(1.0, static_cast<double>(d_kept.size()) - by_segment.size() - 1);
        const double standard_error = std::sqrt(residual2 / dof / sxx);
        d_fit_slope = slope;
        d_fit_slope_error = standard_error;
        if (std::abs(slope) <= MAX_DRIFT * d_rate && standard_error <= MAX_SLOPE_ERROR * d_rate) {
            d_slope = std::abs(slope) > SLOPE_SIGNIFICANCE * standard_error ? slope : 0.0;
            d_slope_known = true;
        }
    }
    const auto& current = by_segment[d_segment];
    d_mean_t = current.t / current.n;
    d_mean_d = current.d / current.n;
}

} // namespace ria
} // namespace gr
