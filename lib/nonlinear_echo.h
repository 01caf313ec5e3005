/* A model of a saturating loudspeaker, for the linear echo filter (a Hammerstein model): the reference is
 * shaped by a memoryless odd curve f(x) = x + a3 x^3 + a5 x^5 before the filter sees it, so that the filter
 * learns the room from what the loudspeaker really plays. The curve is kept monotone and compressive: past
 * the first point where its slope would fall under 0.05 or rise again (a saturating loudspeaker never expands
 * again; the polynomial that fits tanh(6 x) turns up past its knee, and cost 12 dB there), or past the
 * loudest reference it was learned on, it goes on along its tangent, so a louder far end than ever heard
 * cannot make it fold back or explode.
 *
 * The coefficients are learned from the filter's own error e: the filter's foreground coefficients W,
 * applied to x^3 and x^5 (only the first partitions, where the direct sound and the early reflections
 * are), give z3 and z5, the echo each term would add; least squares of e on (y, z3, z5), with y the
 * filter's estimate (a linear misadjustment is the filter's to learn, not the curve's), gives the change
 * of a3 and a5 that explains the most of the error.
 *
 * A linear loudspeaker costs next to nothing: until a distortion is found the reference goes through
 * untouched (bit-identical), and the test runs only for PROBE_S of usable blocks at FIRST_PROBE_S, once
 * more SECOND_PROBE_AFTER_S after a first that found nothing, then every PROBE_EVERY_S (1.3 % more
 * instructions in the block at 48 kHz on the bench's cost scene, by callgrind). It takes the curve on when
 * the two terms would remove a clear share of the error the filter leaves (beyond what a rescaled estimate
 * would); from then on it learns on every usable block. */
#ifndef INCLUDED_RIA_NONLINEAR_ECHO_H
#define INCLUDED_RIA_NONLINEAR_ECHO_H

#include "real_fft.h"
#include <complex>
#include <vector>

namespace gr {
namespace ria {

class nonlinear_echo
{
public:
    typedef std::complex<float> cf;

    nonlinear_echo(int block, double sample_rate);
    void reset();
    //! Whether a distortion was found and the reference is shaped.
    bool active() const { return d_active; }

    //! The reference block \p x as the loudspeaker plays it: \p x itself while inactive.
    const float* shape(const float* x);
    //! The same for \p n samples in place (a reloaded history).
    void shape_in_place(float* x, size_t n) const;
    //! The reference was re-aligned: the terms' history no longer lines up with the filter.
    void realigned() { d_warm = 0; }

    //! After the filter's block: \p x the reference block before shaping, \p e the foreground's error,
    //! \p y its estimate, \p w its coefficients (partition-major, newest partition first, block + 1 bins
    //! each); \p usable: the far end plays, the near end is quiet and the filter cancels.
    void learn(const float* x, const float* e, const float* y, const std::vector<cf>& w, bool usable);

private:
    void update_curve();
    float curve(float x) const;
    void push_terms(const float* x);
    void solve(double explained[2], double delta[2]) const;
    //! d_idle after a test ended without finding distortion: the first is tried again soon, later ones in turn.
    int next_test_idle();

    const int d_n, d_k, d_q; // block, bins, partitions of W used
    const int d_probe_blocks, d_probe_max_blocks, d_probe_every_blocks, d_second_probe_blocks;
    const double d_keep; // per-block weight of the old statistics while active
    real_fft d_fft;
    std::vector<float> d_time, d_prev3, d_prev5, d_z3, d_z5, d_shaped;
    std::vector<cf> d_ring3, d_ring5, d_spec; // d_q spectra per term, ring; d_head is the newest
    int d_head = 0;
    int d_warm = 0; // blocks pushed into the ring since it was last valid
    double d_a[2] = { 0, 0 };
    double d_range = 0;            // the loudest reference sample learned on
    float d_knee = 1, d_knee_value = 1, d_knee_slope = 1; // where the tangent takes over
    // statistics: the Gram matrix of (y, z3, z5), their correlations with e, and e's energy
    double d_r[3][3] = {}, d_c[3] = {}, d_ee = 0;
    bool d_active = false;
    bool d_probing = false;
    int d_idle = 0;   // blocks since the last test
    int d_probed = 0; // usable blocks in this test
    int d_probe_age = 0;
    int d_tests = 0; // tests ended since the last reset
};

} // namespace ria
} // namespace gr

#endif
