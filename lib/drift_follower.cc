#include "drift_follower.h"
#include <algorithm>
#include <cmath>
#include <vector>

namespace gr {
namespace ria {

namespace {
// Measurements in the median, and the share of the way to the drift they show the estimate moves: 3 and 0.5 learn
// -150 ppm by about 6 s instead of 14 (the filter then has the steady path for longer: +0.5 to +1.1 dB
// of steady ERLE at +-150 ppm, -200 ppm); measurements are skipped while a near-end talker is heard
// (aec_impl), which this faster loop would otherwise follow.
constexpr size_t WINDOW = 3;
constexpr double GAIN = 0.5;
constexpr int UPDATES_TO_KNOW = 8;
// A drift believed under DEAD_BAND is not followed (and one followed is left under DEAD_BAND_LEAVE): with a
// step of 0 the reference is read whole samples apart, which is exact, while the loop's wander of a ppm
// or two around 0 made the filter chase a moving path (-1.2 to -1.5 dB of steady ERLE with no drift).
constexpr double DEAD_BAND = 2e-6;
constexpr double DEAD_BAND_LEAVE = 1e-6;
} // namespace

void drift_follower::reset()
{
    d_rates.clear();
    d_step = d_estimate = 0;
    d_updates = 0;
    d_known = false;
}

void drift_follower::measure(double shift, double samples)
{
    if (!std::isfinite(shift) || !(samples > 0))
        return;
    d_rates.push_back(shift / samples);
    if (d_rates.size() > WINDOW)
        d_rates.pop_front();
    if (d_rates.size() < WINDOW)
        return;
    std::vector<double> sorted(d_rates.begin(), d_rates.end());
    std::nth_element(sorted.begin(), sorted.begin() + WINDOW / 2, sorted.end());
    const double residual = sorted[WINDOW / 2];
    // the drift is the step applied plus what is left; the estimate moves towards it
    d_estimate = std::clamp(d_estimate + GAIN * (d_step + residual - d_estimate), -d_max_step, d_max_step);
    d_step = std::abs(d_estimate) > (d_step != 0 ? DEAD_BAND_LEAVE : DEAD_BAND) ? d_estimate : 0.0;
    // the measurements were taken while the step was still changing: start a fresh window
    d_rates.clear();
    if (++d_updates >= UPDATES_TO_KNOW)
        d_known = true;
}

} // namespace ria
} // namespace gr
