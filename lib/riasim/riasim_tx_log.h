/* What riasim transmitters were asked to do: one entry per writeStream (errors and timeouts too), kept per serial in this
 * process (so it outlives a close and reopen) and read through readSetting("tx_log"). */
#ifndef INCLUDED_RIASIM_TX_LOG_H
#define INCLUDED_RIASIM_TX_LOG_H

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

namespace riasim {

struct tx_write {
    int flags;         //!< as given to writeStream (SOAPY_SDR_HAS_TIME, SOAPY_SDR_END_BURST)
    long long time_ns; //!< as given (meaningful with SOAPY_SDR_HAS_TIME)
    size_t asked;      //!< samples offered
    int ret;           //!< what writeStream returned: samples taken or an error code
    double freq, rate, gain;
    bool aired;        //!< false: taken but not sent (a late burst)
};

class tx_log
{
public:
    static constexpr size_t capacity = 100000; //!< the oldest entries go first

    void add(const tx_write& w);
    void clear();
    //! [{"flags":…,"time_ns":…,"count":…,"asked":…,"freq":…,"rate":…,"gain":…,"aired":…}, …]; count = ret.
    std::string json() const;

private:
    mutable std::mutex d_mutex;
    std::deque<tx_write> d_writes;
};

std::shared_ptr<tx_log> tx_log_for(const std::string& serial);

} // namespace riasim

#endif
