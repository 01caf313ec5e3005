/* Follows the clock drift between reference and microphone from how fast the canceller's learned echo
 * path moves (echo_filter::shift), closing the loop through the reference's resampling step: a path
 * that keeps moving later means the reference must be read ever later. Symmetric in the drift's sign by
 * construction. Measurements are taken only while the filter has converged; their median over a
 * short window drives an integrator, so one bad measurement moves nothing. A drift believed under 2 ppm
 * is not followed: a step of 0 reads the reference whole samples apart, which is exact. */
#ifndef INCLUDED_RIA_DRIFT_FOLLOWER_H
#define INCLUDED_RIA_DRIFT_FOLLOWER_H

#include <deque>

namespace gr {
namespace ria {

class drift_follower
{
public:
    //! \p max_step: the largest |step| (samples per sample) believed.
    explicit drift_follower(double max_step = 1e-3) : d_max_step(max_step) {}

    //! The echo path moved \p shift samples later over \p samples samples.
    void measure(double shift, double samples);
    //! Forgets the measurements in flight (the filter was re-aligned or reset); keeps the step.
    void interrupt() { d_rates.clear(); }
    void reset();

    //! Change of the reference read offset per sample.
    double step() const { return d_step; }
    //! Whether enough measurements agreed to trust the step.
    bool known() const { return d_known; }

private:
    const double d_max_step;
    std::deque<double> d_rates;
    double d_step = 0;
    double d_estimate = 0; // the drift believed; the step follows it outside a dead band around 0
    int d_updates = 0;
    bool d_known = false;
};

} // namespace ria
} // namespace gr

#endif
