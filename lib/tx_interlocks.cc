#include "tx_interlocks.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace gr {
namespace ria {

namespace {
std::string number(double v)
{
    std::ostringstream s;
    s << v;
    return s.str();
}

std::string trim(const std::string& s)
{
    const auto b = s.find_first_not_of(" \t");
    const auto e = s.find_last_not_of(" \t");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}
} // namespace

std::vector<std::pair<double, double>> tx_interlocks::parse_ranges(const std::string& spec)
{
    std::vector<std::pair<double, double>> out;
    std::stringstream all(spec);
    std::string entry;
    while (std::getline(all, entry, ',')) {
        entry = trim(entry);
        if (entry.empty() && trim(spec).empty())
            continue;
        const auto colon = entry.find(':');
        bool ok = colon != std::string::npos;
        double lo = 0, hi = 0;
        if (ok) {
            try {
                size_t used_lo = 0, used_hi = 0;
                const std::string a = trim(entry.substr(0, colon)), b = trim(entry.substr(colon + 1));
                lo = std::stod(a, &used_lo);
                hi = std::stod(b, &used_hi);
                ok = used_lo == a.size() && used_hi == b.size() && std::isfinite(lo) && std::isfinite(hi) &&
                     lo >= 0 && lo <= hi;
            } catch (const std::exception&) {
                ok = false;
            }
        }
        if (!ok)
            throw std::invalid_argument("sdr_sink: allowed_freq_ranges entry '" + entry +
                                        "' is not LO_HZ:HI_HZ with 0 <= LO <= HI (example: 433.05e6:434.79e6)");
        out.emplace_back(lo, hi);
    }
    return out;
}

tx_interlocks::tx_interlocks(bool allow_tx,
                             double max_gain_db,
                             double max_duration_s,
                             const std::string& allowed_freq_ranges)
    : d_allow_tx(allow_tx),
      d_max_gain_db(std::isnan(max_gain_db) ? std::numeric_limits<double>::infinity() : max_gain_db),
      d_max_duration_s(max_duration_s),
      d_ranges(parse_ranges(allowed_freq_ranges))
{
    if (d_max_gain_db == -std::numeric_limits<double>::infinity())
        throw std::invalid_argument("sdr_sink: max_gain_db must be a number of dB, NaN or +inf (no cap), got -inf");
    if (!std::isfinite(max_duration_s) || max_duration_s < 0)
        throw std::invalid_argument("sdr_sink: max_duration_s must be >= 0 seconds (0: no cap), got " +
                                    number(max_duration_s));
}

std::string tx_interlocks::ranges_text() const
{
    std::string text;
    for (const auto& [lo, hi] : d_ranges)
        text += (text.empty() ? "" : ", ") + number(lo) + "–" + number(hi);
    return text + " Hz";
}

std::string tx_interlocks::check_freq(double hz) const
{
    if (d_ranges.empty())
        return "";
    for (const auto& [lo, hi] : d_ranges)
        if (hz >= lo && hz <= hi)
            return "";
    return number(hz) + " Hz is outside the allowed TX ranges " + ranges_text();
}

std::string tx_interlocks::check_gain(double db) const
{
    if (db <= d_max_gain_db)
        return "";
    return number(db) + " dB is above the TX gain cap of " + number(d_max_gain_db) + " dB";
}

std::string tx_interlocks::check_open() const
{
    return d_allow_tx ? "" : "TX is disabled (allow_tx is false)";
}

} // namespace ria
} // namespace gr
