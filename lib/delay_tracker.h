/* Finds the bulk delay from the far-end reference to the microphone, and notices when it jumps.
 *
 * Both streams are averaged down to about 2 kHz. Every eighth of a second, while the reference carries
 * sound, the cross-spectrum of the last half second of microphone against the reference (half a
 * second plus the search range) is blended into a running one; its phase transform (GCC-PHAT) peaks
 * at the echo's strongest path, or at an earlier one nearly as strong (the direct sound). Two
 * measurements that agree lock the delay (before the first lock it measures four times as often, so the
 * lock comes within a few tenths of a second of the echo's onset). While locked, and once the caller has
 * confirmed the lock (its canceller cancels there), the delay the caller expects (the locked one, moved
 * along the drift the caller follows) is kept as long as its peak is still there; four agreeing
 * measurements elsewhere are a jump (a buffer under- or overrun in a sound card), or, while the caller's
 * canceller still cancels (the echo cannot have moved), a relocation: the first lock was on a spurious peak
 * (a voice's pitch period shows as a side peak when only the first syllable is in the window) and the
 * filter, long enough to hold the echo anyway, found it where it is.
 *
 * The precise delay and the clock drift are left to the canceller's filter, which sees them to a
 * fraction of a sample; this only needs to be right to a millisecond, and cheap. */
#ifndef INCLUDED_RIA_DELAY_TRACKER_H
#define INCLUDED_RIA_DELAY_TRACKER_H

#include "real_fft.h"
#include <complex>
#include <cstdint>
#include <vector>

namespace gr {
namespace ria {

class delay_tracker
{
public:
    delay_tracker(double sample_rate, double max_delay_s);

    //! n samples of each stream, in step, finite and within -1..1.
    void push(const float* mic, const float* ref, size_t n);
    void reset();

    bool locked() const { return d_locked; }
    //! The delay (samples) of the last lock or jump.
    double delay() const { return d_delay; }
    enum class change { none, lock, jump, relocation };
    //! What happened since the last call: the first lock, a jump, or a relocation (the echo did not move,
    //! the delay was wrong).
    change take_change()
    {
        const change c = d_change;
        d_change = change::none;
        return c;
    }
    //! Where the caller believes the echo is now (samples): measurements there are no jump.
    void expect(double delay) { d_expected = delay; }
    //! The caller found the echo moved to \p delay (samples) by other means: a jump, taken as if measured
    //! here (take_change() stays none: the caller re-aligns itself).
    void jump_to(double delay)
    {
        d_delay = d_expected = delay;
        d_agreeing = 0;
        d_jumps++;
    }
    //! The canceller cancels at the located delay: from now on the tracked arrival is kept while its peak
    //! is still there. Until then a lock is defended by nothing (a talker at the near end, before any echo,
    //! can make a spurious peak that would otherwise be kept for as long as the talker talks).
    void confirm() { d_confirmed = true; }
    //! Whether the caller's canceller cancels the echo now: measurements elsewhere then relocate the echo
    //! instead of making a jump.
    void cancelling(bool yes) { d_cancelling = yes; }
    //! The caller's canceller still cancels well at the delay before the jump or relocation just reported:
    //! that delay is kept (the new peak was a reflection that outgrew the direct sound in the correlation).
    void refuse()
    {
        if (d_before_jump_counted)
            d_jumps--;
        d_before_jump_counted = false;
        d_delay = d_expected = d_before_jump;
        d_agreeing = 0;
    }
    //! How many times the echo moved after the first lock (relocations are not counted).
    uint64_t jumps() const { return d_jumps; }

private:
    void push_decimated(float mic, float ref);
    void measure();
    bool peak_near(const float* c, double delay, float needed) const;

    const double d_rate;
    const int d_decim;
    const int d_window; // decimated samples of microphone per measurement
    const int d_lags;   // decimated lags searched: 0 .. d_lags
    const int d_hop;
    const int d_history;
    real_fft d_fft;
    std::vector<float> d_mic_ring, d_ref_ring, d_in, d_corr;
    std::vector<std::complex<float>> d_ref_spec, d_mic_spec, d_cross;
    uint64_t d_count = 0;
    double d_acc_mic = 0, d_acc_ref = 0;
    int d_acc_n = 0;
    bool d_cross_started = false;

    bool d_locked = false, d_confirmed = false, d_cancelling = false;
    change d_change = change::none;
    double d_delay = 0, d_expected = 0;
    double d_before_jump = 0;
    bool d_before_jump_counted = false; // the change that left d_before_jump counted as a jump
    int d_agreeing = 0; // measurements in a row that agree with d_candidate
    double d_candidate = 0;
    uint64_t d_jumps = 0;
};

} // namespace ria
} // namespace gr

#endif
