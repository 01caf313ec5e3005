/* Range lists and numbers as the radio blocks report them. */
#ifndef INCLUDED_RIA_SOAPY_RANGES_H
#define INCLUDED_RIA_SOAPY_RANGES_H

#include <SoapySDR/Types.hpp>
#include <algorithm>
#include <sstream>
#include <string>
#include <utility>

namespace gr {
namespace ria {

//! The smallest [min, max] that holds every range of a non-empty list.
inline std::pair<double, double> overall_range(const SoapySDR::RangeList& ranges)
{
    double lo = ranges.front().minimum(), hi = ranges.front().maximum();
    for (const auto& r : ranges) {
        lo = std::min(lo, r.minimum());
        hi = std::max(hi, r.maximum());
    }
    return { lo, hi };
}

//! A number as in the status messages: 1e+08, 2.048e+06, 30.
inline std::string format_number(double v)
{
    std::ostringstream s;
    s << v;
    return s.str();
}

} // namespace ria
} // namespace gr

#endif
