#include "echo_suppressor.h"
#include "vector_clones.h"
#include <algorithm>
#include <cmath>

namespace gr {
namespace ria {

namespace {
constexpr double MEAN_MEMORY_S = 0.5;   // power means the fluctuations are taken against
constexpr double COV_MEMORY_S = 0.25;   // covariance and variance behind the leakage
constexpr double BIN_MEMORY_S = 1.0;    // the same per bin, slower, while the near end is quiet
constexpr double NEAR_QUIET = 4.0;      // output over predicted residual power above which the near end talks
constexpr double RELEASE_S = 0.015;     // how fast a gain rises again when the echo is gone
constexpr double MAX_LEAK = 1000.0;     // +30 dB: the filter has barely started
constexpr double OVER_SUBTRACTION = 3.0;
// and in a block where the output holds more than the residual predicted (a near-end talker), unless the
// filter relearns (then the output's excess is the echo the filter lost): the talker's bins are taken less for
// echo. -0.1 dB of near-end attenuation on every double-talk scene of the bench and five more; steady ERLE
// within 0.2 dB in the 0.25 and 0.5 s rooms, -0.4 dB in the 0.8 s one (where a 0.4 s tail leaves more than
// the residual predicted).
constexpr double OVER_SUBTRACTION_TALKING = 2.0;
// Below LOW_HZ, in the other blocks, more: there a reverberant room's residual outlasts the block's estimate most
// (the echo left under 500 Hz was 5 dB over the noise in the RT60 0.5 s room, the bands above at it). 6 gave
// +0.3 to +0.7 dB of steady ERLE in the 0.5 s rooms, with drift and on music, for +0.05 dB of near-end
// attenuation in double talk; 5 since the tail's power predicts that residual too (see TAIL_WEIGHT).
constexpr double OVER_SUBTRACTION_LOW = 5.0;
constexpr double LOW_HZ = 500.0;
// The late residual (see the header) is taken as this much of the echo the filter's late partitions send (and past
// its tail), and not in a bin whose output holds more than LATE_TALKER times that. With the reference read 9 ms
// ahead of the echo (aec_impl.cc) the filter leaves 36-38 dB in the RT60 0.5 s room and the suppressor's leakage,
// which follows the estimate's power, took off only 1-3 dB more; in the talk test alone this power gave +0.4 dB,
// as residual alone +2 dB, both +4 dB (0.5 s room 42.1, 0.8 s room 29.3 -> 34.5 dB) but 1.2 dB of near-end
// attenuation in the 0.8 s rooms, where the late partitions hold the room's echo: TALK_HOLD_S and LATE_TALKER
// bring that back to 0.9 dB. Without the echo past the tail: 0.5 s room 41.7, 0.8 s room 33.0. Beside the tail's
// power under 500 Hz (TAIL_WEIGHT) 1 and 3 (1.5 and 4 alone): 0.94-0.95 dB of near-end attenuation in the 0.8 s
// seed-3 room with 1.5 or 4, 0.92 with these, for 0.06 dB less in the 0.5 s room.
constexpr float LATE_SHARE = 1.0f;
constexpr float LATE_TALKER = 3.0f;
// A block heard as a near-end talker's keeps the blocks for this long taken as the talker's too: a talker's weak
// syllables around the loud ones were taken for the late residual.
constexpr double TALK_HOLD_S = 0.1;
constexpr float MIN_GAIN = 0.01f;       // -40 dB
// The residual decays no faster than a room does, so it keeps covering the echo's tail.
constexpr double RESIDUAL_DECAY_S = 0.05;
constexpr double TAIL_DECAY_S = 0.3;     // the held one (see the header)
constexpr double HOLD_QUIET = 4.0;
constexpr double NOISE_RISE_DB_S = 3.0;  // how fast the noise floor may rise
constexpr float NOISE_SMOOTH = 0.3f;     // per-block weight of the output power the floor follows
// The output within this factor of the floor is taken for noise. Not 2: where the echo left is under the noise
// (above 2 kHz in the image rooms) a bin's noise crossing twice its floor was taken for echo and attenuated;
// +0.1 dB of steady ERLE and -0.02 dB of near-end attenuation on the bench's scenes.
constexpr float NOISE_MARGIN = 3.0f;
// Under LOW_HZ the floor rises this slowly while the far end plays: there the residual of a reverberant room is
// always present during speech, and a floor that followed it took much of that residual for noise (the floor
// was 3 times the microphone's noise under 500 Hz in the RT60 0.5 s room, 0.9 times with this).
constexpr double NOISE_RISE_LOW_DB_S = 0.25;
// Under LOW_HZ, the residual is also predicted from the reference's power over the filter's whole tail (the
// filter's error is spread over its tail, so what it leaves follows that power, not the echo estimate's: the
// cells where the estimate predicted under a tenth of the residual held 38 % of it, under 8 % with the tail's
// power), scaled per bin by its regression on the output's power and by this weight (the over-subtraction
// applies on top), in blocks where no near-end talker is heard, nor was within TAIL_HOLD_OFF_S (a talker's
// syllable rises over a few blocks before the talk is detected).
constexpr float TAIL_WEIGHT = 3.0f;
constexpr double TAIL_HOLD_OFF_S = 0.06;
} // namespace

echo_suppressor::echo_suppressor(int block, double sample_rate)
    : d_n(block),
      d_k(block + 1),
      d_slow(1.0 - std::exp(-block / (MEAN_MEMORY_S * sample_rate))),
      d_cov_smooth(1.0 - std::exp(-block / (COV_MEMORY_S * sample_rate))),
      d_bin_smooth(1.0 - std::exp(-block / (BIN_MEMORY_S * sample_rate))),
      d_release(1.0 - std::exp(-block / (RELEASE_S * sample_rate))),
      d_low_bins(static_cast<int>(std::lround(LOW_HZ * 2 * block / sample_rate))),
      d_tail_hold_off(static_cast<int>(std::lround(TAIL_HOLD_OFF_S * sample_rate / block))),
      d_fft(2 * block),
      d_e_prev(block),
      d_y_prev(block),
      d_time(2 * block),
      d_e_spec(block + 1),
      d_y_spec(block + 1),
      d_ee(block + 1),
      d_yy(block + 1),
      d_e_mean(block + 1),
      d_y_mean(block + 1),
      d_gain(block + 1),
      d_residual(block + 1),
      d_bin_cov(block + 1),
      d_bin_var(block + 1),
      d_tail_mean(block + 1),
      d_tail_cov(block + 1),
      d_tail_var(block + 1),
      d_fresh(block + 1),
      d_held(block + 1),
      d_smooth_ee(block + 1),
      d_noise(block + 1),
      d_talk_hold(static_cast<int>(std::lround(TALK_HOLD_S * sample_rate / block)))
{
    reset();
    d_residual_decay = static_cast<float>(std::exp(-block / (RESIDUAL_DECAY_S * sample_rate)));
    d_tail_decay = static_cast<float>(std::exp(-block / (TAIL_DECAY_S * sample_rate)));
    d_noise_rise = static_cast<float>(std::pow(10.0, NOISE_RISE_DB_S * block / sample_rate / 10));
    d_noise_rise_low = static_cast<float>(std::pow(10.0, NOISE_RISE_LOW_DB_S * block / sample_rate / 10));
}

void echo_suppressor::reset()
{
    std::fill(d_e_prev.begin(), d_e_prev.end(), 0.0f);
    std::fill(d_y_prev.begin(), d_y_prev.end(), 0.0f);
    std::fill(d_e_mean.begin(), d_e_mean.end(), 0.0f);
    std::fill(d_y_mean.begin(), d_y_mean.end(), 0.0f);
    std::fill(d_gain.begin(), d_gain.end(), 1.0f);
    std::fill(d_residual.begin(), d_residual.end(), 0.0f);
    std::fill(d_held.begin(), d_held.end(), 0.0f);
    std::fill(d_smooth_ee.begin(), d_smooth_ee.end(), 0.0f);
    std::fill(d_noise.begin(), d_noise.end(), -1.0f); // unknown
    std::fill(d_bin_cov.begin(), d_bin_cov.end(), 0.0f);
    std::fill(d_bin_var.begin(), d_bin_var.end(), 0.0f);
    std::fill(d_tail_mean.begin(), d_tail_mean.end(), 0.0f);
    std::fill(d_tail_cov.begin(), d_tail_cov.end(), 0.0f);
    std::fill(d_tail_var.begin(), d_tail_var.end(), 0.0f);
    d_cov = d_var = d_leak = 0;
    d_tail_wait = 0;
    d_started = false;
    d_near_talking = false;
    d_talk_left = 0;
}

RIA_VECTOR_CLONES void echo_suppressor::process(const float* e, const float* y, bool far_active, bool relearning,
                                                float* out, const float* tail, const float* late, int late_bins)
{
    std::copy(d_y_prev.begin(), d_y_prev.end(), d_time.begin());
    std::copy_n(y, d_n, d_time.begin() + d_n);
    d_fft.forward(d_time.data(), d_y_spec.data());
    std::copy_n(y, d_n, d_y_prev.begin());
    std::copy(d_e_prev.begin(), d_e_prev.end(), d_time.begin());
    std::copy_n(e, d_n, d_time.begin() + d_n);
    d_fft.forward(d_time.data(), d_e_spec.data());
    std::copy_n(e, d_n, d_e_prev.begin());

    for (int f = 0; f < d_k; f++) {
        d_ee[f] = power(d_e_spec[f]);
        d_yy[f] = power(d_y_spec[f]);
    }
    bool near_quiet = false;
    bool tail_usable = false;
    d_near_talking = false;
    if (far_active) {
        const float a = static_cast<float>(d_started ? d_slow : 1.0);
        double cov = 0, var = 0, ee_sum = 0, predicted = 0;
        for (int f = 0; f < d_k; f++) {
            ee_sum += d_ee[f];
            predicted += std::max(d_leak, d_bin_var[f] > 0 ? double(d_bin_cov[f]) / d_bin_var[f] : 0.0) * d_yy[f];
        }
        for (int f = 0; f < late_bins; f++)
            predicted += late[f];
        // the output holds no more than the residual predicted: no near-end talker in it
        near_quiet = ee_sum <= NEAR_QUIET * predicted;
        if (!near_quiet)
            d_talk_left = d_talk_hold;
        else if (d_talk_left > 0) {
            d_talk_left--;
            near_quiet = false;
        }
        tail_usable = tail && near_quiet && d_tail_wait == 0;
        if (!near_quiet)
            d_tail_wait = d_tail_hold_off;
        else if (d_tail_wait > 0)
            d_tail_wait--;
        d_near_talking = !near_quiet;
        for (int f = 0; f < d_k; f++) {
            d_e_mean[f] += a * (d_ee[f] - d_e_mean[f]);
            d_y_mean[f] += a * (d_yy[f] - d_y_mean[f]);
            const double dy = d_yy[f] - d_y_mean[f];
            cov += (d_ee[f] - d_e_mean[f]) * dy;
            var += dy * dy;
            const float b = near_quiet ? static_cast<float>(d_bin_smooth) : 0.0f;
            d_bin_cov[f] += b * (static_cast<float>((d_ee[f] - d_e_mean[f]) * dy) - d_bin_cov[f]);
            d_bin_var[f] += b * (static_cast<float>(dy * dy) - d_bin_var[f]);
        }
        if (tail) {
            for (int f = 0; f < d_low_bins; f++) { // the same regression on the tail's power
                d_tail_mean[f] += a * (tail[f] - d_tail_mean[f]);
                const float dt = tail[f] - d_tail_mean[f];
                const float b = near_quiet ? static_cast<float>(d_bin_smooth) : 0.0f;
                d_tail_cov[f] += b * ((d_ee[f] - d_e_mean[f]) * dt - d_tail_cov[f]);
                d_tail_var[f] += b * (dt * dt - d_tail_var[f]);
            }
        }
        d_started = true;
        d_cov += d_cov_smooth * (cov - d_cov);
        d_var += d_cov_smooth * (var - d_var);
        if (d_var > 0 && std::isfinite(d_cov / d_var))
            d_leak = std::clamp(d_cov / d_var, 0.0, MAX_LEAK);
    }
    float leak = static_cast<float>(d_leak);
    if (relearning && far_active) {
        double ee = 0, yy = 0;
        for (int f = 0; f < d_k; f++) {
            ee += d_ee[f];
            yy += d_yy[f];
        }
        if (yy > 0 && ee / yy > leak)
            leak = static_cast<float>(std::min(ee / yy, MAX_LEAK));
    }
    // The residual is held with the slow decay while the output holds no more than it predicts (no near-end
    // talker): the filter's error in a room's late tail outlasts the estimate's own decay.
    double out_sum = 0, held_sum = 0;
    // per bin; low: under LOW_HZ (the loops run over the two ranges, so that no bin tests which it is in)
    const auto predict = [&](int f, bool low) {
        float bin_leak = leak;
        if (near_quiet && d_bin_var[f] > 0 && d_bin_cov[f] > leak * d_bin_var[f])
            bin_leak = std::min(d_bin_cov[f] / d_bin_var[f], static_cast<float>(MAX_LEAK));
        d_fresh[f] = bin_leak * d_yy[f];
        if (low && tail_usable && d_tail_var[f] > 0 && d_tail_cov[f] > 0)
            d_fresh[f] = std::max(d_fresh[f], TAIL_WEIGHT * d_tail_cov[f] / d_tail_var[f] * tail[f]);
        out_sum += d_ee[f];
        d_held[f] = std::max(d_fresh[f], d_tail_decay * d_held[f]);
        held_sum += d_held[f];
    };
    for (int f = 0; f < d_low_bins; f++)
        predict(f, true);
    for (int f = d_low_bins; f < d_k; f++)
        predict(f, false);
    const bool hold = out_sum <= HOLD_QUIET * held_sum;
    const bool talking = d_near_talking && !relearning;
    const auto suppress = [&](int f, float rise, float over) {
        d_residual[f] = std::max(d_fresh[f], d_residual_decay * d_residual[f]);
        // the stationary noise under the echo is not echo: the residual is at most what rises above it
        d_smooth_ee[f] += NOISE_SMOOTH * (d_ee[f] - d_smooth_ee[f]);
        d_noise[f] = d_noise[f] < 0 ? d_smooth_ee[f] : std::min(d_noise[f] * rise, d_smooth_ee[f]);
        const float above = std::max(0.0f, d_ee[f] - NOISE_MARGIN * d_noise[f]);
        float echo_left = hold ? d_held[f] : d_residual[f];
        // the late residual, outside a talker's blocks and bins
        if (f < late_bins && !d_near_talking && d_ee[f] <= LATE_TALKER * LATE_SHARE * late[f])
            echo_left = std::max(echo_left, LATE_SHARE * late[f]);
        const float residual = std::min(echo_left, above);
        const float r = d_ee[f] > 0 ? residual / d_ee[f] : 0.0f;
        const float g = std::max(MIN_GAIN, 1.0f - over * r);
        d_gain[f] = g < d_gain[f] ? g : d_gain[f] + static_cast<float>(d_release) * (g - d_gain[f]);
        d_e_spec[f] *= d_gain[f];
    };
    const float low_rise = far_active ? d_noise_rise_low : d_noise_rise;
    const auto over = [talking](double other) { return static_cast<float>(talking ? OVER_SUBTRACTION_TALKING : other); };
    for (int f = 0; f < d_low_bins; f++)
        suppress(f, low_rise, over(OVER_SUBTRACTION_LOW));
    for (int f = d_low_bins; f < d_k; f++)
        suppress(f, d_noise_rise, over(OVER_SUBTRACTION));
    d_fft.inverse(d_e_spec.data(), d_time.data());
    std::copy_n(d_time.begin() + d_n, d_n, out);
}

} // namespace ria
} // namespace gr
