/* riasim's TX channel: bursts, a sample clock on air time, pacing like a real radio's buffer,
 * underflow and late-burst reports, the tx_log, and what goes on the air. */
#ifndef INCLUDED_RIASIM_TRANSMITTER_H
#define INCLUDED_RIASIM_TRANSMITTER_H

#include "riasim_air.h"
#include "riasim_tx_log.h"

#include <complex>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace riasim {

constexpr double tx_min_gain_db = 0.0;
constexpr double tx_max_gain_db = 60.0;

class transmitter
{
public:
    transmitter(const std::string& serial, const std::string& air_path, bool pace);

    // Settings; a change applies from the first sample of the next write.
    double freq = 100e6;
    double rate = 1e6;
    double gain = 0.0;
    double bandwidth = 0.0; // 0: follows the rate
    std::string antenna = "TX";
    void settings_changed() { d_new_segment = true; }
    void set_pace(bool pace) { d_pace = pace; }
    bool pace() const { return d_pace; }

    bool open = false;
    bool cs16 = false;
    void activate();
    void deactivate();
    bool active() const { return d_active; }

    //! writeStream; \p lock (the device's, held) is released while waiting for room.
    int write(std::unique_lock<std::mutex>& lock,
              const void* buff,
              size_t n,
              int flags,
              long long time_ns,
              long timeout_us,
              long long hw_offset_ns);
    //! readStreamStatus: SOAPY_SDR_UNDERFLOW (a paced burst ran dry), SOAPY_SDR_TIME_ERROR (a late
    //! burst: dropped until its end) or SOAPY_SDR_TIMEOUT.
    int read_status(std::unique_lock<std::mutex>& lock,
                    int& flags,
                    long long& time_ns,
                    long timeout_us,
                    long long hw_offset_ns);
    size_t mtu() const;

    tx_log& log() const { return *d_log; }
    const std::string& air_file() const { return d_air_path; }

private:
    struct status_event {
        int code;
        long long air_ns;
    };
    int64_t next_ns() const;
    void check_starved(int64_t now);

    std::shared_ptr<tx_log> d_log;
    std::string d_air_path;
    air_transmitter d_air;
    bool d_air_problem_logged = false;
    bool d_pace;
    bool d_active = false;

    bool d_in_burst = false;
    bool d_late = false;            // this burst's time had passed: taken, not aired, until its end
    bool d_starved_reported = false; // the underflow of the current gap is already queued
    bool d_new_segment = true;
    int64_t d_seg_start_ns = 0;
    uint64_t d_seg_samples = 0;
    double d_seg_rate = 1.0;
    std::deque<status_event> d_events;
    std::vector<std::complex<float>> d_scratch;
};

} // namespace riasim

#endif
