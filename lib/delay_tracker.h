/* Finds the bulk delay from the far-end reference to the microphone, and follows it while the two
 * clocks drift apart.
 *
 * Both streams are averaged down to about 4 kHz. Every quarter second, while the reference carries
 * sound, the cross-spectrum of the last second of microphone against the reference one second plus
 * the search range long is added into a smoothed cross-spectrum; its phase transform (GCC-PHAT) peaks
 * at the echo's strongest path. That lag is refined at the full rate (half a second of both streams,
 * around the coarse lag only), because a canceller loses ERLE to even a fraction of a sample per second
 * of unfollowed drift. Measurements that agree form a segment; a straight line with one slope
 * shared by all segments is fitted through them: the slope is the clock drift, and a segment ends when
 * the delay jumps (a buffer under- or overrun in a sound card moves it by whole blocks). */
#ifndef INCLUDED_RIA_DELAY_TRACKER_H
#define INCLUDED_RIA_DELAY_TRACKER_H

#include <gnuradio/fft/fft.h>
#include <cmath>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

namespace gr {
namespace ria {

class delay_tracker
{
public:
    delay_tracker(double sample_rate, double max_delay_s);

    //! n samples of each stream, in step (the same sample index).
    void push(const float* mic, const float* ref, size_t n);
    void reset();

    bool locked() const { return d_locked; }
    //! Delay in samples (fractional) expected at microphone sample index \p at.
    double delay_at(double at) const;
    //! Change of delay per sample; negative when the reference clock runs faster.
    double slope() const { return d_slope / d_rate; }
    bool slope_known() const { return d_slope_known; }
    //! How many times the delay moved to a new segment after the first lock.
    uint64_t jumps() const { return d_jumps; }

private:
    struct measurement {
        double t; // seconds on the microphone clock
        double d; // samples
        uint64_t segment;
    };

    void push_decimated(float mic, float ref);
    void measure();
    double refine(double around, double expected) const;
    void consider(double t, double d);
    bool continues(const measurement& from, double t, double d, double slope, double slope_error) const;
    void refit();
    void forget_slope();
    double predict(double t) const;

    const double d_rate;
    const int d_decim;
    const int d_window;  // decimated samples of microphone per measurement
    const int d_lags;    // decimated lags searched: 0 .. d_lags
    const int d_hop;     // decimated samples between measurements
    const int d_fft_size;
    const int d_history; // d_window + d_lags

    std::vector<float> d_mic_ring, d_ref_ring;
    // The full-rate streams for the refinement.
    const int d_fine_window;
    const int d_fine_reach;   // samples either side of the coarse lag
    const int d_fine_fft_size;
    const size_t d_full_history;
    std::vector<float> d_full_mic, d_full_ref;
    uint64_t d_full_count = 0;
    std::unique_ptr<gr::fft::fft_real_fwd> d_fine_fwd;
    std::unique_ptr<gr::fft::fft_real_rev> d_fine_rev;
    mutable std::vector<gr_complex> d_fine_ref_spec;
    const size_t d_fine_bins; // cross-spectrum bins used, from DC up
    uint64_t d_count = 0; // decimated samples written
    double d_acc_mic = 0, d_acc_ref = 0;
    int d_acc_n = 0;

    gr::fft::fft_real_fwd d_fwd;
    gr::fft::fft_real_rev d_rev;
    std::vector<gr_complex> d_ref_spec, d_cross;
    bool d_cross_started = false;

    std::deque<measurement> d_kept;
    std::vector<measurement> d_candidates;
    uint64_t d_segment = 0;
    bool d_locked = false;
    uint64_t d_jumps = 0;
    double d_slope = 0;     // samples per second
    bool d_slope_known = false;
    // The fitted slope and its standard error (samples per second), trusted or not: measurements of
    // one arrival must continue along it.
    double d_fit_slope = 0;
    double d_fit_slope_error = HUGE_VAL;
    double d_mean_t = 0, d_mean_d = 0; // of the current segment
};

} // namespace ria
} // namespace gr

#endif
