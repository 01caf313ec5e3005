#include "echo_filter.h"
#include "vector_clones.h"
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace gr {
namespace ria {

namespace {
// Normalised step of the background filter, per bin scaled down by the share of its error that is the
// error's floor (the microphone's noise, and the echo a tail too short cannot model): learning from noise
// only adds misadjustment. That share is never taken below STEP_FLOOR_SHARE. This replaced a global step
// of 0.8 falling to 0.5 once the background cancelled 20 dB: in the image rooms behind 300 ms the filter
// keeps converging where the echo rises above the noise, and stops adding noise where it does not.
constexpr float STEP = 1.0f;
constexpr float STEP_FLOOR_SHARE = 0.2f;
// The floor also regularises each bin's normalisation, with this weight: a bin the reference barely
// excites in one block (between words, the top of the band in a vowel) would otherwise take its error,
// mostly noise, as a large update. Steady ERLE behind 300 ms +2.2 dB (RT60 0.25 s) and +1.2 dB (0.5 s).
constexpr float FLOOR_REGULARISATION = 30.0f;
constexpr double ERROR_MEMORY_S = 0.2;    // smoothing of each bin's error power
constexpr double FLOOR_RISE_DB_S = 3.0;   // how fast its floor may rise
// Step shares of the partitions: some for all alike, some along a room-like decay from the start of the
// tail, the rest where the filter has found the echo's energy (proportionate NLMS).
constexpr double UNIFORM_SHARE = 0.3;
constexpr double PROPORTIONATE_SHARE = 0.45;
// The background's update direction for each partition loses this share of its projection on the next
// older block's spectrum (see the header), and the normalisation what that removed, down to this share
constexpr float DECORRELATION = 0.6f;
constexpr float DECORRELATION_FLOOR = 0.3f;
constexpr double DECORRELATION_TOP_HZ = 4000; // only below: voiced speech, where the slow modes are (cost)
constexpr int CONSTRAINTS = 1;          // partitions constrained per block, in turn
constexpr double ENERGY_MEMORY_S = 0.15; // smoothing of the error energies compared for copies
constexpr double COPY_RATIO = 0.7;      // the background takes over when its error is this much smaller
constexpr double DIVERGED_RATIO = 4.0;  // the background is reset when its error is this much larger
constexpr double KEEP_S = 2.0;          // how long the foreground replaced by a copy may come back
constexpr double KEPT_RUN_ERLE = 0.1;   // the kept filter is run while the foreground's error is above this
                                        // share of the mic's (under 10 dB of cancellation)
constexpr double KEEP_GOOD = 1.0 / 31.6;  // a foreground is worth keeping if its error was under this
constexpr double KEEP_GOOD_S = 0.5;       // share of the mic's (15 dB) this recently
constexpr double KEPT_BLOCK_RATIO = 0.25; // one block where the kept filter leaves this share of the
                                          // foreground's error brings it back at once
constexpr double PRIOR_DECAY_S = 0.05;  // time constant of the step share given to the early partitions
constexpr double RELEARN_DB = 15.0;    // a copy while the foreground cancelled less: relearning
constexpr double RELEARN_HOLD_S = 0.5;
constexpr double AVERAGE_DB = 25.0;   // a copy into a foreground that cancels this much averages the two
// and in the blocks between copies, while the background cancels no worse, the foreground moves towards
// it with this time constant: a running mean of the background, with a fraction of its gradient noise
constexpr double FOLLOW_S = 1.0;
// A block where the filter's estimate is louder than the microphone and its error louder than the microphone
// (it adds echo instead of removing it) shows a changed echo path at once. Not 6 dB under the microphone:
// a near-end talker partly cancelling the echo in a block met that, and the relearning it started let the
// suppressor take the talker for residual (1.2 dB of near-end attenuation on the bench's double talk).
constexpr double LOST_BLOCK_DB = 0.0;
constexpr double LOST_HOLD_S = 0.1;
constexpr double LOUDER_THAN_ECHO = 1.0;
constexpr float FAR_ACTIVE = 1e-8f;     // mean square of a reference block below which nothing adapts
constexpr float REGULARISATION = 1e-7f; // per-sample power added to every bin's normalisation
constexpr int SHIFT_BINS_DIVISOR = 4;   // shift() uses the lowest quarter of the band (no phase wrap)
constexpr double MAX_LATE_DECAY = 0.95;  // per partition, for late_echo()'s echo past the tail

float energy(const float* x, int n)
{
    float s = 0;
    for (int i = 0; i < n; i++)
        s += x[i] * x[i];
    return s;
}
} // namespace

echo_filter::echo_filter(int block, int partitions, double sample_rate)
    : d_n(block),
      d_p(partitions),
      d_k(block + 1),
      d_kd(std::min(block + 1, static_cast<int>(std::ceil(DECORRELATION_TOP_HZ * 2 * block / sample_rate)))),
      d_smooth(1.0 - std::exp(-block / (ENERGY_MEMORY_S * sample_rate))),
      d_follow(static_cast<float>(1.0 - std::exp(-2.0 * block / (FOLLOW_S * sample_rate)))),
      d_err_smooth(static_cast<float>(1.0 - std::exp(-block / (ERROR_MEMORY_S * sample_rate)))),
      d_floor_rise(static_cast<float>(std::pow(10.0, FLOOR_RISE_DB_S * block / sample_rate / 10))),
      d_fft(2 * block),
      d_x_prev(block),
      d_time(2 * block),
      d_time2(2 * block),
      d_x(static_cast<size_t>(partitions) * (block + 1)),
      d_wf(d_x.size()),
      d_wb(d_x.size()),
      d_snapshot(d_x.size()),
      d_raw_y(block),
      d_wk(d_x.size()),
      d_time3(2 * block),
      d_spec(block + 1),
      d_spec2(block + 1),
      d_gain(partitions),
      d_energies(partitions),
      d_prior(partitions),
      d_norm(block + 1),
      d_lag_re(block + 1),
      d_lag_im(block + 1),
      d_lag_norm(block + 1),
      d_zeros(block + 1),
      d_err_pow(block + 1),
      d_err_floor(block + 1),
      d_tail_pow(block + 1),
      d_keep_blocks(std::max(1, static_cast<int>(std::lround(KEEP_S * sample_rate / block)))),
      d_good_blocks(std::max(1, static_cast<int>(std::lround(KEEP_GOOD_S * sample_rate / block)))),
      d_relearn_blocks(std::max(1, static_cast<int>(std::lround(RELEARN_HOLD_S * sample_rate / block)))),
      d_lost_blocks(std::max(1, static_cast<int>(std::lround(LOST_HOLD_S * sample_rate / block))))
{
    double sum = 0;
    for (int p = 0; p < d_p; p++)
        sum += d_prior[p] = static_cast<float>(std::exp(-p * block / (PRIOR_DECAY_S * sample_rate)));
    for (auto& v : d_prior)
        v = static_cast<float>(v / sum);
    reset();
}

void echo_filter::reset()
{
    std::fill(d_x_prev.begin(), d_x_prev.end(), 0.0f);
    std::fill(d_x.begin(), d_x.end(), cf(0));
    std::fill(d_wf.begin(), d_wf.end(), cf(0));
    std::fill(d_wb.begin(), d_wb.end(), cf(0));
    std::fill(d_snapshot.begin(), d_snapshot.end(), cf(0));
    std::fill(d_wk.begin(), d_wk.end(), cf(0));
    std::fill(d_raw_y.begin(), d_raw_y.end(), 0.0f);
    d_kept_left = 0;
    d_relearn_left = 0;
    d_kept_running = false;
    d_sk = 0;
    d_scale = 1.0f;
    d_since_good = d_good_blocks;
    for (int p = 0; p < d_p; p++)
        d_gain[p] = static_cast<float>(UNIFORM_SHARE / d_p + (1 - UNIFORM_SHARE) * d_prior[p]);
    d_head = 0;
    d_next_constraint = 0;
    d_sd = d_sf = d_sb = 0;
    d_copied = false;
    d_snapshot_valid = false;
    d_follow_turn = false;
    std::fill(d_err_pow.begin(), d_err_pow.end(), 0.0f);
    std::fill(d_err_floor.begin(), d_err_floor.end(), -1.0f); // unknown
    std::fill(d_past.begin(), d_past.end(), 0.0f);
}

void echo_filter::reload(const float* x)
{
    for (int age = d_p - 1; age >= 0; age--) {
        const float* first = x + static_cast<size_t>(d_p - 1 - age) * d_n;
        std::copy_n(first, 2 * d_n, d_time.begin());
        d_fft.forward(d_time.data(), &d_x[((d_head + d_p - age) % d_p) * d_k]);
    }
    std::copy_n(x + static_cast<size_t>(d_p) * d_n, d_n, d_x_prev.begin());
}

RIA_VECTOR_CLONES void echo_filter::filter(const std::vector<cf>& w, cf* y_spec)
{
    std::fill(y_spec, y_spec + d_k, cf(0));
    for (int age = 0; age < d_p; age++) {
        const cf* x = x_at(age);
        const cf* wp = &w[static_cast<size_t>(age) * d_k];
        for (int f = 0; f < d_k; f++) {
            const float wr = wp[f].real(), wi = wp[f].imag(), xr = x[f].real(), xi = x[f].imag();
            y_spec[f] = cf(y_spec[f].real() + (wr * xr - wi * xi), y_spec[f].imag() + (wr * xi + wi * xr));
        }
    }
}

RIA_VECTOR_CLONES void echo_filter::process(const float* x, const float* d, float* e, float* y)
{
    std::copy(d_x_prev.begin(), d_x_prev.end(), d_time.begin());
    std::copy_n(x, d_n, d_time.begin() + d_n);
    d_head = (d_head + 1) % d_p;
    d_fft.forward(d_time.data(), &d_x[static_cast<size_t>(d_head) * d_k]);
    std::copy_n(x, d_n, d_x_prev.begin());
    d_far_active = energy(x, d_n) > FAR_ACTIVE * d_n;

    // background
    filter(d_wb, d_spec.data());
    d_fft.inverse(d_spec.data(), d_time2.data());
    float* e_b = d_time2.data(); // reuses the first half as the background error
    for (int i = 0; i < d_n; i++)
        e_b[i] = d[i] - d_time2[d_n + i];
    // foreground
    filter(d_wf, d_spec.data());
    d_fft.inverse(d_spec.data(), d_time.data());
    double dd = 0, ee = 0, dy = 0, yy = 0;
    std::copy_n(d_time.begin() + d_n, d_n, d_raw_y.begin());
    for (int i = 0; i < d_n; i++) {
        y[i] = d_time[d_n + i];
        e[i] = d[i] - y[i];
        dd += double(d[i]) * d[i];
        ee += double(e[i]) * e[i];
        dy += double(d[i]) * y[i];
        yy += double(y[i]) * y[i];
    }
    const float scale = ee > dd && yy > 0 ? static_cast<float>(std::clamp(dy / yy, 0.0, 1.0)) : 1.0f;
    // down: ramped from the last block's scale; up at once (a scale set in a silent block would otherwise
    // leave half of an echo's onset uncancelled)
    const float from = std::min(d_scale, 1.0f) < scale ? scale : d_scale;
    if (scale < 1.0f || from < 1.0f) {
        for (int i = 0; i < d_n; i++) {
            y[i] *= from + (scale - from) * static_cast<float>(i + 1) / d_n;
            e[i] = d[i] - y[i];
        }
    }
    d_scale = scale;

    const double a = d_smooth;
    d_sd = (1 - a) * d_sd + a * dd;
    d_sf = (1 - a) * d_sf + a * ee; // the foreground's own error, unscaled, for the copies
    d_sb = (1 - a) * d_sb + a * energy(e_b, d_n);
    if (d_far_active && d_since_good < d_good_blocks && ee * std::pow(10.0, LOST_BLOCK_DB / 10) > dd &&
        dd < LOUDER_THAN_ECHO * yy)
        d_relearn_left = std::max(d_relearn_left, d_lost_blocks + 1);
    d_since_good = d_sf < KEEP_GOOD * d_sd ? 0 : std::min(d_since_good + 1, d_good_blocks);
    // the kept foreground, only while the current one cancels poorly (it costs a third filter)
    const bool run_kept = d_kept_left > 0 && d_sf > KEPT_RUN_ERLE * d_sd;
    bool kept_clearly_better = false; // in this very block: the echo is back, restore without waiting
    if (run_kept) {
        filter(d_wk, d_spec.data());
        d_fft.inverse(d_spec.data(), d_time3.data());
        float ek = 0;
        for (int i = 0; i < d_n; i++) {
            const float v = d[i] - d_time3[d_n + i];
            ek += v * v;
        }
        d_sk = d_kept_running ? (1 - a) * d_sk + a * ek : ek;
        kept_clearly_better = ek < KEPT_BLOCK_RATIO * ee && ek < energy(e_b, d_n);
    }
    d_kept_running = run_kept;

    d_copied = false;
    if (run_kept && ((d_sk < COPY_RATIO * d_sf && d_sk < d_sb) || kept_clearly_better)) {
        // the echo came back as it was: the copies since were a mistake
        d_wf = d_wk;
        d_wb = d_wk;
        d_sf = d_sb = d_sk;
        d_kept_left = 0;
        d_kept_running = false;
        d_copied = true;
    } else if (d_sb < COPY_RATIO * d_sf && d_sb < d_sd) {
        if (d_sf * std::pow(10.0, RELEARN_DB / 10) > d_sd)
            d_relearn_left = d_relearn_blocks + 1;
        if (d_kept_left == 0 && d_since_good < d_good_blocks) {
            d_wk = d_wf;
            d_sk = d_sf;
            d_kept_left = d_keep_blocks;
            d_kept_running = false;
        }
        if (d_sf * std::pow(10.0, AVERAGE_DB / 10) < d_sd) {
            for (size_t i = 0; i < d_wf.size(); i++)
                d_wf[i] = 0.5f * (d_wf[i] + d_wb[i]);
        } else {
            d_wf = d_wb;
        }
        d_sf = d_sb;
        d_copied = true;
    } else if (d_sb > DIVERGED_RATIO * d_sf) {
        d_wb = d_wf;
        d_sb = d_sf;
    } else if ((d_follow_turn = !d_follow_turn) && d_sb < d_sf && d_sf * std::pow(10.0, AVERAGE_DB / 10) < d_sd) {
        for (size_t i = 0; i < d_wf.size(); i++) // every other block (half the cost), twice the weight
            d_wf[i] += d_follow * (d_wb[i] - d_wf[i]);
    }
    if (d_relearn_left > 0)
        d_relearn_left--;
    if (d_kept_left > 0 && --d_kept_left == 0)
        d_kept_running = false;
    if (d_far_active)
        adapt(e_b);
}

RIA_VECTOR_CLONES void echo_filter::adapt(const float* e_b)
{
    std::fill(d_time.begin(), d_time.begin() + d_n, 0.0f);
    std::copy_n(e_b, d_n, d_time.begin() + d_n);
    d_fft.forward(d_time.data(), d_spec.data());

    const float floor = REGULARISATION * 2 * d_n;
    std::fill(d_norm.begin(), d_norm.end(), floor);
    std::fill(d_lag_re.begin(), d_lag_re.end(), 0.0f);
    std::fill(d_lag_im.begin(), d_lag_im.end(), 0.0f);
    std::fill(d_lag_norm.begin(), d_lag_norm.end(), floor);
    for (int age = 0; age < d_p; age++) {
        const cf* x = x_at(age);
        const float g = d_gain[age];
        for (int f = 0; f < d_k; f++)
            d_norm[f] += g * power(x[f]);
        if (age + 1 == d_p)
            break;
        const cf* o = x_at(age + 1);
        for (int f = 0; f < d_kd; f++) { // conj(o) x, weighted like the normalisation
            const float xr = x[f].real(), xi = x[f].imag(), o_r = o[f].real(), oi = o[f].imag();
            d_lag_re[f] += g * (o_r * xr + oi * xi);
            d_lag_im[f] += g * (o_r * xi - oi * xr);
            d_lag_norm[f] += g * (o_r * o_r + oi * oi);
        }
    }
    // per bin, in the loops below (one pass): the last block's floor regularises the normalisation, then this
    // block's error updates the floor, which sets the step
    const auto bin_step = [this](int f) {
        d_norm[f] += FLOOR_REGULARISATION * 2 * std::max(0.0f, d_err_floor[f]);
        d_err_pow[f] += d_err_smooth * (power(d_spec[f]) - d_err_pow[f]);
        d_err_floor[f] = d_err_floor[f] < 0 ? d_err_pow[f] : std::min(d_err_floor[f] * d_floor_rise, d_err_pow[f]);
        return d_err_pow[f] > 0 ? STEP * std::clamp(1.0f - d_err_floor[f] / d_err_pow[f], STEP_FLOOR_SHARE, 1.0f) : STEP;
    };
    for (int f = d_kd; f < d_k; f++) {
        const float step = bin_step(f);
        d_spec[f] *= step / d_norm[f];
    }
    for (int f = 0; f < d_kd; f++) {
        // rho = DECORRELATION conj(o)x / |o|^2 per bin; the part of the step along the older block is
        // carried in d_spec2 = conj(rho) spec
        const float step = bin_step(f);
        const float lr = d_lag_re[f], li = d_lag_im[f], ln = d_lag_norm[f];
        const float removed = DECORRELATION * (2 - DECORRELATION) * (lr * lr + li * li) / ln;
        const cf s = d_spec[f] * (step / std::max(d_norm[f] - removed, DECORRELATION_FLOOR * d_norm[f]));
        const float rr = DECORRELATION * lr / ln, ri = -DECORRELATION * li / ln; // conj(rho)
        d_spec[f] = s;
        d_spec2[f] = cf(rr * s.real() - ri * s.imag(), rr * s.imag() + ri * s.real());
    }
    double total = 0;
    for (int age = 0; age < d_p; age++) {
        const cf* x = x_at(age);
        // the oldest partition has no older block in the ring: zeros there (d_zeros)
        const cf* o = age + 1 < d_p ? x_at(age + 1) : d_zeros.data();
        cf* w = &d_wb[static_cast<size_t>(age) * d_k];
        const float g = d_gain[age];
        float en = 0;
        for (int f = 0; f < d_kd; f++) {
            // w += g (conj(x) spec - conj(o) spec2), in real arithmetic (std::complex's product checks for
            // NaN and does not vectorise)
            const float xr = x[f].real(), xi = x[f].imag(), sr = d_spec[f].real(), si = d_spec[f].imag();
            const float o_r = o[f].real(), oi = o[f].imag(), tr = d_spec2[f].real(), ti = d_spec2[f].imag();
            const float wr = w[f].real() + g * ((xr * sr + xi * si) - (o_r * tr + oi * ti));
            const float wi = w[f].imag() + g * ((xr * si - xi * sr) - (o_r * ti - oi * tr));
            w[f] = cf(wr, wi);
            en += wr * wr + wi * wi;
        }
        for (int f = d_kd; f < d_k; f++) {
            // w += g conj(x) spec
            const float xr = x[f].real(), xi = x[f].imag(), sr = d_spec[f].real(), si = d_spec[f].imag();
            const float wr = w[f].real() + g * (xr * sr + xi * si);
            const float wi = w[f].imag() + g * (xr * si - xi * sr);
            w[f] = cf(wr, wi);
            en += wr * wr + wi * wi;
        }
        d_energies[age] = std::sqrt(en);
        total += d_energies[age];
    }
    for (int i = 0; i < CONSTRAINTS; i++) {
        constrain(d_wb, d_next_constraint);
        d_next_constraint = (d_next_constraint + 1) % d_p;
    }
    for (int p = 0; p < d_p; p++)
        d_gain[p] = static_cast<float>(UNIFORM_SHARE / d_p + (1 - UNIFORM_SHARE - PROPORTIONATE_SHARE) * d_prior[p] +
                                       (total > 0 ? PROPORTIONATE_SHARE * d_energies[p] / total : PROPORTIONATE_SHARE / d_p));
}

// The partition's impulse response must fit in its first half (a linear, not circular, convolution).
void echo_filter::constrain(std::vector<cf>& w, int partition)
{
    cf* wp = &w[static_cast<size_t>(partition) * d_k];
    d_fft.inverse(wp, d_time.data());
    std::fill(d_time.begin() + d_n, d_time.end(), 0.0f);
    d_fft.forward(d_time.data(), wp);
}

RIA_VECTOR_CLONES void echo_filter::late_echo(int bins, float* out)
{
    bins = std::min(bins, d_k);
    if (static_cast<int>(d_past.size()) < bins)
        d_past.resize(bins, 0.0f);
    std::fill(out, out + bins, 0.0f);
    const int quarter = std::max(1, d_p / 4);
    double third = 0, last = 0; // the coefficients' energy in the tail's third and last quarter
    for (int age = d_p / 2; age < d_p; age++) {
        const cf* x = x_at(age);
        const cf* w = &d_wf[static_cast<size_t>(age) * d_k];
        float en = 0;
        for (int f = 0; f < bins; f++) {
            const float ww = power(w[f]);
            out[f] += ww * power(x[f]);
            en += ww;
        }
        if (age >= d_p - quarter)
            last += en;
        else if (age >= d_p - 2 * quarter)
            third += en;
    }
    // the echo past the tail: the last partition's, continued with the decay per partition the late ones show
    const float decay = third > 0 ? static_cast<float>(std::clamp(std::pow(last / third, 1.0 / quarter), 0.0, MAX_LATE_DECAY)) : 0.0f;
    const cf* x = x_at(d_p - 1);
    const cf* w = &d_wf[static_cast<size_t>(d_p - 1) * d_k];
    for (int f = 0; f < bins; f++) {
        d_past[f] = decay * (d_past[f] + power(w[f]) * power(x[f]));
        out[f] += d_past[f];
    }
}

void echo_filter::move(int samples)
{
    std::vector<float> h(static_cast<size_t>(d_p) * d_n);
    for (auto* w : { &d_wf, &d_wb, &d_wk }) {
        for (int p = 0; p < d_p; p++) {
            d_fft.inverse(&(*w)[static_cast<size_t>(p) * d_k], d_time.data());
            std::copy_n(d_time.begin(), d_n, h.begin() + static_cast<size_t>(p) * d_n);
        }
        const int64_t total = static_cast<int64_t>(h.size());
        std::vector<float> moved(h.size(), 0.0f);
        for (int64_t t = 0; t < total; t++)
            if (t + samples >= 0 && t + samples < total)
                moved[t] = h[t + samples];
        for (int p = 0; p < d_p; p++) {
            std::copy_n(moved.begin() + static_cast<size_t>(p) * d_n, d_n, d_time.begin());
            std::fill(d_time.begin() + d_n, d_time.end(), 0.0f);
            d_fft.forward(d_time.data(), &(*w)[static_cast<size_t>(p) * d_k]);
        }
    }
    d_snapshot_valid = false;
}

const float* echo_filter::tail_power(int bins)
{
    bins = std::clamp(bins, 0, d_k);
    std::fill_n(d_tail_pow.begin(), bins, 0.0f);
    for (int age = 0; age < d_p; age++) {
        const cf* x = x_at(age);
        for (int f = 0; f < bins; f++)
            d_tail_pow[f] += power(x[f]);
    }
    return d_tail_pow.data();
}

double echo_filter::erle_db() const
{
    return d_sf > 0 && d_sd > 0 ? 10.0 * std::log10(d_sd / d_sf) : 0.0;
}

double echo_filter::shift(double& weight)
{
    weight = 0;
    if (!d_snapshot_valid) {
        d_snapshot = d_wb;
        d_snapshot_valid = true;
        return 0.0;
    }
    const int top = std::max(2, d_k / SHIFT_BINS_DIVISOR);
    double num = 0, den = 0, cross = 0, pa = 0, pb = 0;
    const double w0 = 2 * M_PI / (2.0 * d_n);
    for (int f = 1; f < top; f++) {
        std::complex<double> c = 0;
        for (int p = 0; p < d_p; p++) {
            const size_t i = static_cast<size_t>(p) * d_k + f;
            c += std::complex<double>(d_wb[i]) * std::conj(std::complex<double>(d_snapshot[i]));
            pa += std::norm(d_wb[i]);
            pb += std::norm(d_snapshot[i]);
        }
        const double m = std::abs(c);
        const double omega = w0 * f;
        num += m * omega * std::arg(c);
        den += m * omega * omega;
        cross += m;
    }
    d_snapshot = d_wb;
    if (!(den > 0) || !(pa > 0) || !(pb > 0))
        return 0.0;
    weight = cross / std::sqrt(pa * pb);
    return -num / den;
}

} // namespace ria
} // namespace gr
