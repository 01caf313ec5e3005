/* Residual echo suppressor: after the linear filter, the echo that is left in each frequency bin is
 * estimated from the filter's echo estimate there, scaled by how strongly the output's power follows the
 * estimate's power (the leakage: their power fluctuations' covariance over the estimate's variance,
 * so that a near-end talker, whose power does not follow the far end, does not raise it).
 * The same leakage is also kept per bin, over a second of blocks where the output holds no more than
 * four times the residual predicted (no near-end talker), and used in those blocks where a bin leaks
 * more than the whole (a room's notches, where the filter is least accurate). The filter's error in a
 * room's late tail outlasts its estimate, so the residual is also held with a slow decay (0.3 s), used
 * while the output holds no more than four times it (no near-end talker). Under 500 Hz, where a
 * reverberant room's residual is largest, the residual is also predicted from the reference's power over
 * the filter's whole tail (the filter's error is spread over its tail), scaled per bin by its regression
 * on the output's power like the per-bin leakage, and used in blocks where no near-end talker is heard
 * nor was within the last 60 ms.
 * Below 1 kHz the filter also says what it leaves there (echo_filter::late_echo): the echo its late
 * partitions send (their coefficients are mostly gradient noise where the room has decayed, the echo
 * itself where it has not) and the echo past its tail. That power counts in the residual predicted for
 * the talk test, and it is taken as residual outside a talker's blocks, in the bins whose output holds no
 * more than three times it; a block where a talker is heard keeps the next 0.1 s taken as the talker's too.
 * Bins where that residual dominates are attenuated, bins where the near end dominates pass untouched, and
 * the stationary noise (each bin's floor, which may rise 3 dB a second, under 500 Hz only 0.25 dB a second
 * while the far end plays, so the residual that is always there during speech is not taken for noise; the
 * output within 3 times the floor) is not taken for echo; a gain rises again within 15 ms, so a near-end
 * talker's onset is not clipped.
 *
 * The gains are applied to the two-block window the filter's output ends in, and only its newest
 * block is kept (overlap-save), so the suppressor adds no latency. */
#ifndef INCLUDED_RIA_ECHO_SUPPRESSOR_H
#define INCLUDED_RIA_ECHO_SUPPRESSOR_H

#include "real_fft.h"
#include <complex>
#include <vector>

namespace gr {
namespace ria {

class echo_suppressor
{
public:
    typedef std::complex<float> cf;

    echo_suppressor(int block, double sample_rate);
    //! e: the linear filter's output, y: its echo estimate, far_active: the reference carried sound;
    //! writes out (may be e).
    //! relearning: the filter is relearning the echo path, so the output's power over the estimate's is
    //! taken as the leakage when it is higher. tail: for the lowest low_bins() bins, the reference's power
    //! summed over the filter's tail (echo_filter::tail_power), or null.
    //! late: per bin below late_bins, the echo the filter's late partitions send (echo_filter::late_echo), or null.
    void process(const float* e, const float* y, bool far_active, bool relearning, float* out, const float* tail,
                 const float* late, int late_bins);
    //! The bins under 500 Hz, where the tail's power is used.
    int low_bins() const { return d_low_bins; }
    void reset();
    //! The current leakage (residual over estimated echo power).
    double leakage() const { return d_leak; }
    //! Whether the last block's output held more than the residual predicted while the far end played
    //! (a near-end talker).
    bool near_talking() const { return d_near_talking; }

private:
    const int d_n, d_k;
    const double d_slow, d_cov_smooth, d_bin_smooth, d_release;
    const int d_low_bins; // bins below LOW_HZ
    const int d_tail_hold_off; // blocks after a near-end talker was heard before the tail's power is used again
    real_fft d_fft;
    std::vector<float> d_e_prev, d_y_prev, d_time;
    std::vector<cf> d_e_spec, d_y_spec;
    std::vector<float> d_ee, d_yy, d_e_mean, d_y_mean, d_gain, d_residual;
    std::vector<float> d_bin_cov, d_bin_var; // per bin, over BIN_MEMORY_S
    std::vector<float> d_tail_mean, d_tail_cov, d_tail_var; // per low bin: the tail power's regression
    std::vector<float> d_fresh; // this block's residual estimate
    std::vector<float> d_held;  // the residual held with the room-tail decay
    std::vector<float> d_smooth_ee, d_noise; // output power, smoothed, and its floor (the stationary noise)
    float d_noise_rise, d_noise_rise_low;
    int d_tail_wait = 0;
    float d_residual_decay, d_tail_decay;
    double d_cov = 0, d_var = 0, d_leak = 0;
    bool d_started = false;
    bool d_near_talking = false;
    const int d_talk_hold; // blocks
    int d_talk_left = 0;   // blocks the talker is still taken to be heard
};

} // namespace ria
} // namespace gr

#endif
