#ifndef INCLUDED_RIA_SDR_SOURCE_IMPL_H
#define INCLUDED_RIA_SDR_SOURCE_IMPL_H

#include "device_settings.h"
#include <gnuradio/ria/disconnect_classifier.h>
#include <gnuradio/ria/sdr_source.h>
#include <SoapySDR/Device.hpp>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

namespace gr {
namespace ria {

class sdr_source_impl : public sdr_source
{
public:
    sdr_source_impl(const std::string& device_args,
                    size_t channel,
                    double sample_rate,
                    double center_freq,
                    double gain,
                    bool agc,
                    double bandwidth,
                    const std::string& antenna,
                    const std::string& on_disconnect,
                    double reopen_interval,
                    double disconnect_timeout,
                    double ppm,
                    const std::string& output_type,
                    const std::string& device_settings);
    ~sdr_source_impl() override;

    bool start() override;
    bool stop() override;
    int work(int noutput_items,
             gr_vector_const_void_star& input_items,
             gr_vector_void_star& output_items) override;

    void set_center_freq(double freq) override;
    void set_sample_rate(double rate) override;
    void set_gain(double gain) override;
    void set_agc(bool agc) override;
    void set_bandwidth(double bandwidth) override;
    void set_antenna(const std::string& antenna) override;
    void set_ppm(double ppm) override;
    void set_device_settings(const std::string& settings) override;

    std::string state() const override;
    uint64_t overflows() const override;
    uint64_t disconnects() const override;

private:
    enum class state_t { closed, opening, streaming, disconnected, stopped };
    struct settings {
        double rate;
        double freq;
        double gain;
        bool agc;
        double bandwidth;
        std::string antenna;
        double ppm;
    };

    //! What an open attempt came to: streaming, not there (retry), or a setting of the `open` command refused.
    enum class open_result { opened, failed, refused };

    void handle_cmd(const pmt::pmt_t& msg);
    void apply_cmd(const pmt::pmt_t& msg);
    void post_cmd(const char* key, const pmt::pmt_t& value);
    bool apply(const std::string& key, const pmt::pmt_t& value);
    bool number_arg(const std::string& key, const pmt::pmt_t& value, double& out);
    bool check_range(const std::string& key, double v, const SoapySDR::RangeList& ranges, const char* unit);

    //! Tunes to `freq` as corrected by d_set.ppm; returns the frequency the radio now receives.
    double tune(double freq);
    bool driver_corrects() const;
    //! Writes `which` to the open radio, each checked against its list; false if one was refused.
    bool write_device_settings(const device_settings& which);
    //! cmd device_settings: the keys given are written now (with a radio open) and after every reopen.
    bool change_device_settings(const pmt::pmt_t& value);
    open_result try_open();
    std::vector<std::string> apply_all_settings();
    void read_back();
    void refuse_open();
    void close_device();
    void lose_device(const std::string& reason);
    pmt::pmt_t settings_fields(pmt::pmt_t dict) const;
    //! Adds the `seq` of the last `open` command, if it had one (events that command caused carry it).
    pmt::pmt_t with_open_seq(pmt::pmt_t dict) const;

    void publish(const pmt::pmt_t& msg);
    void report_error(const std::string& key, const pmt::pmt_t& value, const std::string& message);
    void add_change_tags(uint64_t offset, int flags, long long time_ns);
    void report_overflows(double now, bool force);
    void idle_wait(double seconds, std::unique_lock<std::mutex>& lock);

    mutable std::mutex d_mutex;
    std::condition_variable d_wake;
    bool d_stopping = false;

    std::string d_args;
    const size_t d_channel;
    const bool d_sc16;
    device_settings d_device_settings;
    pmt::pmt_t d_settings_read_back = pmt::PMT_NIL; // {key: readSetting(key)} after the last open
    settings d_set;
    const bool d_stop_on_disconnect;
    const double d_reopen_interval;
    disconnect_classifier d_classifier;

    SoapySDR::Device* d_dev = nullptr;
    SoapySDR::Stream* d_stream = nullptr;
    state_t d_state = state_t::closed;
    bool d_ever_opened = false;
    bool d_open_failure_reported = false;
    bool d_awaiting_first_samples = false;
    double d_next_open_s = 0.0;
    bool d_tags_pending = false;
    // While an `open` command's device is not yet streaming: the settings that command carried (the open is
    // refused if the device refuses one of them) and the settings from before it (restored on a refusal).
    std::vector<std::string> d_open_keys;
    settings d_before_open{};
    pmt::pmt_t d_open_seq = pmt::PMT_NIL;
    bool d_open_pending = false; // until that command's device streams (or is refused or closed): errors carry its seq
    bool d_time_tag_pending = false;

    uint64_t d_overflows = 0;
    uint64_t d_overflows_unreported = 0;
    double d_last_overflow_report_s = -1e9;
    uint64_t d_disconnects = 0;
    bool d_unknown_error_logged = false;
};

} // namespace ria
} // namespace gr

#endif
