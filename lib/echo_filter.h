/* The linear echo canceller: a partitioned-block frequency-domain adaptive filter (overlap-save,
 * blocks of N samples, FFTs of 2N, P partitions covering the tail).
 *
 * Two copies of the filter run side by side. The background one adapts on every block with a large
 * normalised step, so it learns fast, and diverges when the near end talks; in each bin the step shrinks
 * with the share of the background's error that is that error's floor (the microphone's noise), to a fifth
 * once only the floor is left (less misadjustment where nothing is left to learn, the full step where the
 * echo still shows), and the floor regularises the bin's normalisation, so a block that barely excites a
 * bin does not turn its noise into a large update. The foreground one makes
 * the output: it takes the background's coefficients whenever the background has cancelled clearly
 * better for a while (once the foreground cancels 25 dB, it takes the mean of itself and the background,
 * which halves the background's gradient noise, and in the blocks between, while the background cancels
 * no worse, it follows the background with a 1 s time constant: a running mean that leaves a fraction of
 * that noise), and gives them back when the background has diverged. The step of each
 * partition is proportionate to the energy the filter has found there, plus shares that decay over the
 * tail and that are uniform, so the early part of a room's response, where most of its energy is,
 * converges first.
 *
 * Voiced speech keeps a bin's spectrum nearly the same from one block to the next, so the partitions'
 * inputs at that bin are strongly correlated and their differences learn slowly (after 20 s the filter was
 * still converging). Below 4 kHz the background's update for each partition therefore leaves out 60 % of
 * its projection on the next older block's spectrum (a partial second-order affine projection, per bin),
 * and its normalisation what that removed (down to 30 %): steady ERLE +1.2 dB in a RT60 0.5 s room,
 * 20 dB half a second sooner.
 *
 * A copy can be a mistake: when the echo stops for a moment while the reference plays (a loudspeaker
 * that drops a buffer, a recording that loops), the background unlearns the path within a few blocks
 * and is copied. So the first copy after the foreground cancelled well (15 dB within the last half
 * second) keeps the foreground it replaces for 2 s; while the foreground cancels poorly (under 10 dB)
 * that kept one is run too, and it comes back, to both filters, as soon as it cancels clearly better
 * than both (over 0.15 s, or by 6 dB in one block).
 *
 * The output is never made louder than the microphone by the filter: in a block where subtracting the
 * foreground's estimate would add energy (the echo stopped or moved, and the filter has not caught
 * up), the estimate is scaled down to the share that fits the microphone (least squares, 0..1),
 * ramping over the block from the last block's scale.
 *
 * The foreground coefficients also tell how far the echo path moved between two snapshots
 * (shift()), which is how clock drift is measured once the filter has converged. */
#ifndef INCLUDED_RIA_ECHO_FILTER_H
#define INCLUDED_RIA_ECHO_FILTER_H

#include "real_fft.h"
#include <cmath>
#include <complex>
#include <vector>

namespace gr {
namespace ria {

class echo_filter
{
public:
    typedef std::complex<float> cf;

    echo_filter(int block, int partitions, double sample_rate);

    //! One block: x the reference as it reaches the filter, d the microphone; writes e = d - echo
    //! estimate (foreground) and y = the echo estimate.
    void process(const float* x, const float* d, float* e, float* y);
    void reset();
    //! Replaces the reference history with \p x ((partitions + 1) blocks, oldest first), after the
    //! reference was re-aligned: the coefficients stay, and apply to the new alignment at once.
    void reload(const float* x);

    //! Moves the learned echo path \p samples earlier (later when negative), for a reference that
    //! is now read that much later while the echo stayed where it was.
    void move(int samples);

    //! Mic power over output power of the foreground, smoothed over about half a second, in dB.
    double erle_db() const;
    //! The foreground's echo estimate of the last block, before any scaling to fit the microphone.
    const float* estimate() const { return d_raw_y.data(); }
    //! The background's echo estimate of the last block (it adapts on every block, so right after a lock
    //! it shows the echo long before the foreground has taken any coefficients).
    const float* background_estimate() const { return d_time2.data() + d_n; }
    //! The foreground's coefficients: partition-major, the newest block's partition first, block + 1 bins each.
    const std::vector<cf>& foreground() const { return d_wf; }
    //! Whether the last block changed the foreground (a copy from the background, or the kept one back).
    bool adapted() const { return d_copied; }
    //! Whether the filter is relearning the echo path: the foreground took the background's coefficients
    //! while it cancelled under RELEARN_DB, within the last RELEARN_HOLD_S.
    bool relearning() const { return d_relearn_left > 0; }
    //! The echo path is new to the filter (the delay was just found): relearning from now on, and the
    //! error energies compared for copies start again, so the first useful background is taken at once.
    void relearn()
    {
        d_relearn_left = d_relearn_blocks + 1;
        d_sd = d_sf = d_sb = 0;
    }
    //! Whether the background filter is usable for shift(): not diverged, and cancelling \p db at least.
    bool background_converged(double db) const { return d_sb > 0 && d_sd > d_sb * std::pow(10.0, db / 10) && d_sb <= 2.0 * d_sf; }
    //! Samples the background's echo path moved later since the last call (0 when unknown);
    //! \p weight gets how much of the filter took part (0..1), to judge the measurement.
    double shift(double& weight);

    //! Into \p out, per bin below \p bins: the echo power the foreground's later half of the tail sends,
    //! sum over those partitions of |W_p|^2 |X_p|^2, plus the echo past the tail, the last partition's continued
    //! with the decay per partition that the last two quarters of the tail show (see echo_suppressor: the residual
    //! the filter leaves there). Called once per block (it keeps the echo past the tail).
    void late_echo(int bins, float* out);

    //! Per bin, for the lowest \p bins: the reference's power summed over the partitions (over the whole tail).
    //! The filter's error is spread over its tail, so its residual follows this, not the echo estimate.
    const float* tail_power(int bins);

    int block() const { return d_n; }
    int partitions() const { return d_p; }

private:
    void filter(const std::vector<cf>& w, cf* y_spec);
    void adapt(const float* e_b);
    void constrain(std::vector<cf>& w, int partition);
    const cf* x_at(int age) const { return &d_x[((d_head + d_p - age) % d_p) * d_k]; }

    const int d_n, d_p, d_k; // block, partitions, bins (n + 1)
    const int d_kd;          // bins below DECORRELATION_TOP_HZ
    const double d_smooth;   // per-block weight of the newest block in the smoothed energies
    const float d_follow;    // per-block weight of the background in the foreground's running mean
    const float d_err_smooth, d_floor_rise; // per block: weight of the newest error power, rise of its floor
    real_fft d_fft;
    std::vector<float> d_x_prev, d_time, d_time2;
    std::vector<cf> d_x;       // partitions spectra, ring; d_head is the newest
    int d_head = 0;
    std::vector<cf> d_wf, d_wb, d_snapshot;
    std::vector<float> d_raw_y;
    std::vector<cf> d_wk;    // the foreground a copy replaced, kept for d_kept_left more blocks
    std::vector<float> d_time3;
    std::vector<cf> d_spec, d_spec2;
    std::vector<float> d_gain;     // per partition: share of the step
    std::vector<float> d_energies; // per partition: norm of the background coefficients
    std::vector<float> d_prior; // decaying share over the tail
    std::vector<float> d_norm;
    std::vector<float> d_lag_re, d_lag_im, d_lag_norm; // per bin: the spectra's correlation with the next older block
    std::vector<cf> d_zeros;
    std::vector<float> d_past; // per bin: late_echo()'s echo past the tail
    std::vector<float> d_err_pow, d_err_floor; // per bin: the background's error power, smoothed, and its floor
    std::vector<float> d_tail_pow;                // tail_power()'s result
    int d_next_constraint = 0;
    double d_sd = 0, d_sf = 0, d_sb = 0; // smoothed block energies: mic, foreground and background error
    double d_sk = 0;                     // and the kept filter's error, while it is run
    int d_kept_left = 0;
    int d_relearn_left = 0;
    const int d_keep_blocks, d_good_blocks;
    const int d_relearn_blocks, d_lost_blocks;
    int d_since_good = 0; // blocks since the foreground last cancelled well (capped at d_good_blocks)
    bool d_kept_running = false;
    float d_scale = 1.0f; // the share of the estimate subtracted at the end of the last block
    bool d_copied = false;
    bool d_snapshot_valid = false;
    bool d_far_active = false;
    bool d_follow_turn = false; // the foreground follows the background every other block
};

} // namespace ria
} // namespace gr

#endif
