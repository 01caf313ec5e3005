/* Reconnect schedule of docs/protocol.md section 2: full jitter, 1 s doubling to 30 s, reset after 10 s up. */
#ifndef INCLUDED_RIA_BACKOFF_H
#define INCLUDED_RIA_BACKOFF_H

#include <gnuradio/ria/api.h>

namespace gr {
namespace ria {

constexpr double BACKOFF_BASE_S = 1.0;
constexpr double BACKOFF_CAP_S = 30.0;
constexpr double BACKOFF_RESET_AFTER_S = 10.0;

//! Seconds to wait before attempt number `attempt` (0 first): uniform01 * min(cap, base * 2^attempt).
RIA_API double backoff_delay(unsigned attempt, double uniform01);

} // namespace ria
} // namespace gr

#endif
