#ifndef INCLUDED_RIA_SDR_SOURCE_IMPL_H
#define INCLUDED_RIA_SDR_SOURCE_IMPL_H

#include <gnuradio/ria/disconnect_classifier.h>
#include <gnuradio/ria/sdr_source.h>
#include <SoapySDR/Device.hpp>
#include <condition_variable>
#include <mutex>

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
                    double disconnect_timeout);
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
    };

    void handle_cmd(const pmt::pmt_t& msg);
    void post_cmd(const char* key, const pmt::pmt_t& value);
    bool apply(const std::string& key, const pmt::pmt_t& value);
    bool number_arg(const std::string& key, const pmt::pmt_t& value, double& out);
    bool check_range(const std::string& key, double v, const SoapySDR::RangeList& ranges, const char* unit);

    bool try_open();
    void apply_all_settings();
    void close_device();
    void lose_device(const std::string& reason);
    pmt::pmt_t settings_fields(pmt::pmt_t dict) const;

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
