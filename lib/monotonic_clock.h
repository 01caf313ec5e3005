/* Seconds on the steady clock, for the blocks' timers (reopen intervals, status rate limits). */
#ifndef INCLUDED_RIA_MONOTONIC_CLOCK_H
#define INCLUDED_RIA_MONOTONIC_CLOCK_H

#include <chrono>

namespace gr {
namespace ria {

inline double monotonic_s()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

} // namespace ria
} // namespace gr

#endif
