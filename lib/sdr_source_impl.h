#ifndef INCLUDED_RIA_SDR_SOURCE_IMPL_H
#define INCLUDED_RIA_SDR_SOURCE_IMPL_H

#include "device_settings.h"
#include "soapy_life_cycle.h"
#include <gnuradio/ria/sdr_source.h>
#include <string>
#include <vector>

namespace gr {
namespace ria {

class sdr_source_impl : public sdr_source, protected soapy_life_cycle
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
    // the life cycle's hooks
    void publish(const pmt::pmt_t& msg) override;
    bool apply(const std::string& key, const pmt::pmt_t& value) override;
    std::vector<std::string> apply_all_settings() override;
    void read_back() override;
    pmt::pmt_t settings_fields(pmt::pmt_t dict) const override;
    void prepare_device() override;
    void on_streaming(bool reopening) override;
    void on_lost(const std::string& reason) override;
    pmt::pmt_t opened_fields(pmt::pmt_t dict) const override;

    void post_cmd(const char* key, const pmt::pmt_t& value);
    //! Tunes to `freq` as corrected by d_set.ppm; returns the frequency the radio now receives.
    double tune(double freq);
    bool driver_corrects() const;
    //! Writes `which` to the open radio, each checked against its list; false if one was refused.
    bool write_device_settings(const device_settings& which);
    //! cmd device_settings: the keys given are written now (with a radio open) and after every reopen.
    bool change_device_settings(const pmt::pmt_t& value);

    void add_change_tags(uint64_t offset, int flags, long long time_ns);
    void report_overflows(double now, bool force);

    const bool d_sc16;
    device_settings d_device_settings;
    pmt::pmt_t d_settings_read_back = pmt::PMT_NIL; // {key: readSetting(key)} after the last open
    bool d_awaiting_first_samples = false;
    bool d_tags_pending = false;
    bool d_time_tag_pending = false;

    uint64_t d_overflows = 0;
    uint64_t d_overflows_unreported = 0;
    double d_last_overflow_report_s = -1e9;
};

} // namespace ria
} // namespace gr

#endif
