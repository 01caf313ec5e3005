/* The limits a transmitter keeps whatever it is asked: opt-in, gain cap, time on air, frequency ranges.
 * Plain logic: values in, refusal text out ("" when allowed). */
#ifndef INCLUDED_RIA_TX_INTERLOCKS_H
#define INCLUDED_RIA_TX_INTERLOCKS_H

#include <string>
#include <utility>
#include <vector>

namespace gr {
namespace ria {

class tx_interlocks
{
public:
    //! Throws std::invalid_argument naming the argument (max_gain_db, max_duration_s, allowed_freq_ranges).
    tx_interlocks(bool allow_tx, double max_gain_db, double max_duration_s, const std::string& allowed_freq_ranges);

    bool allow_tx() const { return d_allow_tx; }
    //! 0: no cap.
    double max_duration_s() const { return d_max_duration_s; }

    std::string check_freq(double hz) const;
    std::string check_gain(double db) const;
    //! "" or the reason an open is refused before the radio is touched.
    std::string check_open() const;

    //! "433.05e6–434.79e6 Hz, …" for messages.
    std::string ranges_text() const;

    //! "lo:hi,lo:hi" → pairs; throws std::invalid_argument naming allowed_freq_ranges.
    static std::vector<std::pair<double, double>> parse_ranges(const std::string& spec);

private:
    bool d_allow_tx;
    double d_max_gain_db; // +inf: no cap
    double d_max_duration_s;
    std::vector<std::pair<double, double>> d_ranges;
};

} // namespace ria
} // namespace gr

#endif
