#include "backoff.h"

#include <algorithm>
#include <cmath>

namespace gr {
namespace ria {

double backoff_delay(unsigned attempt, double uniform01)
{
    const double u = std::clamp(uniform01, 0.0, 1.0);
    return u * std::min(BACKOFF_CAP_S, BACKOFF_BASE_S * std::ldexp(1.0, static_cast<int>(std::min(attempt, 16u))));
}

} // namespace ria
} // namespace gr
