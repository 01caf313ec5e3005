#ifndef INCLUDED_RIA_SDR_SINK_IMPL_H
#define INCLUDED_RIA_SDR_SINK_IMPL_H

#include "soapy_life_cycle.h"
#include "tx_interlocks.h"
#include <gnuradio/ria/sdr_sink.h>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace gr {
namespace ria {

class sdr_sink_impl : public sdr_sink, protected soapy_life_cycle
{
public:
    sdr_sink_impl(const std::string& device,
                  double sample_rate,
                  double center_freq,
                  double gain,
                  const std::string& antenna,
                  double bandwidth,
                  bool allow_tx,
                  double max_gain_db,
                  double max_duration_s,
                  const std::string& allowed_freq_ranges,
                  const std::string& burst_tags,
                  const std::string& on_disconnect,
                  double reopen_interval,
                  double disconnect_timeout);
    ~sdr_sink_impl() override;

    bool start() override;
    bool stop() override;
    int work(int noutput_items,
             gr_vector_const_void_star& input_items,
             gr_vector_void_star& output_items) override;

    void set_center_freq(double freq) override;
    void set_sample_rate(double rate) override;
    void set_gain(double gain) override;
    void set_bandwidth(double bandwidth) override;
    void set_antenna(const std::string& antenna) override;

    std::string state() const override;
    uint64_t samples_written() const override;
    uint64_t samples_dropped() const override;
    uint64_t underflows() const override;
    uint64_t disconnects() const override;

private:
    //! Checks one setting (type, interlocks, the radio's range), applies it (or only remembers it while
    //! closed) and reads it back. \p label names it in an error: the cmd key or the tag name.
    using setter = bool (sdr_sink_impl::*)(const pmt::pmt_t& value, const std::string& label);

    // the life cycle's hooks
    void publish(const pmt::pmt_t& msg) override;
    bool apply(const std::string& key, const pmt::pmt_t& value) override;
    std::vector<std::string> apply_all_settings() override;
    void read_back() override;
    pmt::pmt_t settings_fields(pmt::pmt_t dict) const override;
    std::string open_forbidden() const override;
    std::string check_device() override;
    void on_streaming(bool reopening) override;
    void on_close_command(const char* why) override;
    void on_lost(const std::string& reason) override;
    void on_closed() override;
    std::string origin(const std::string& label) const override;

    // settings
    void post_cmd(const char* key, const pmt::pmt_t& value);
    bool apply(const std::string& key, const pmt::pmt_t& value, const std::string& label);
    bool set_freq(const pmt::pmt_t& value, const std::string& label);
    bool set_rate(const pmt::pmt_t& value, const std::string& label);
    bool set_gain_value(const pmt::pmt_t& value, const std::string& label);
    bool set_bandwidth_value(const pmt::pmt_t& value, const std::string& label);
    bool set_antenna_value(const pmt::pmt_t& value, const std::string& label);

    // bursts
    int consume(const gr_complex* in, int n, bool can_write);
    int one_window(const gr_complex* in, size_t start, size_t avail, bool can_write, bool& wrote);
    void head_tag(const gr::tag_t& tag);
    void start_burst();
    void end_radio_burst(const char* why);
    void finish_write(size_t written, bool ended, bool limit);
    void drop(size_t n);

    // status
    void poll_stream_status();
    void report_summaries(double now, bool force);
    void status_loop();

    // Polls the radio's stream status while no samples come (a starved burst is reported even then).
    std::thread d_status_thread;

    const tx_interlocks d_locks;
    const bool d_bursts_required;
    std::map<std::string, setter> d_setters; // the cmd keys; built once

    // Bursts. A burst runs from tx_sob (or, with optional tags, the first untagged sample) to tx_eob; the
    // radio burst is what went to the radio since its last END_BURST.
    bool d_burst_open = false;
    bool d_radio_burst = false;
    uint64_t d_burst_index = 0;   // samples since the burst began, sent or not
    uint64_t d_burst_written = 0; // samples of the radio burst
    bool d_time_pending = false;
    long long d_time_ns = 0;
    std::set<std::string> d_broken; // settings a tag asked for and could not have: samples are dropped
    bool d_limited = false;         // max_duration_s reached: nothing more until the next open
    uint64_t d_head_done = ~uint64_t(0); // the item whose tags were last handled at the head of a window

    uint64_t d_written = 0; // since the latest open
    double d_air_s = 0.0;   // time on air since the latest open
    uint64_t d_dropped = 0;
    uint64_t d_underflows = 0;
    uint64_t d_underflows_unreported = 0;
    uint64_t d_late = 0;
    uint64_t d_late_unreported = 0;
    double d_last_summary_s = -1e9;
    bool d_status_supported = true;
    double d_last_attempt_s = -1e9;
};

} // namespace ria
} // namespace gr

#endif
