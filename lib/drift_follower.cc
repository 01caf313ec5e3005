#include "drift_follower.h"
#include <algorithm>
#include <cmath>
#include <vector>

namespace gr {
namespace ria {

namespace {
constexpr size_t WINDOW = 5;     // measurements in the median
constexpr double GAIN = 0.3;     // share of the median residual added to the step per measurement
constexpr int UPDATES_TO_KNOW = 8;
} // namespace

void drift_follower::reset()
{
    d_rates.clear();
    d_step = 0;
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
    d_step = std::clamp(d_step + GAIN * residual, -d_max_step, d_max_step);
    // the measurements were taken while the step was still changing: start a fresh window
    d_rates.clear();
    if (++d_updates >= UPDATES_TO_KNOW)
        d_known = true;
}

} // namespace ria
} // namespace gr
