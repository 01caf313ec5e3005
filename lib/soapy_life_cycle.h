/* What the SDR source and the SDR sink share: the life cycle of one SoapySDR channel. The radio is opened
 * (the settings an `open` command carries, all or nothing), streams, is lost and reopened every
 * reopen_interval (or stops the flowgraph), and is closed; cmd messages have one envelope (close, open,
 * seq, chan). A block keeps what is its own (the settings it applies, its stream's samples) and says it
 * through the hooks. Every member is guarded by d_mutex. */
#ifndef INCLUDED_RIA_SOAPY_LIFE_CYCLE_H
#define INCLUDED_RIA_SOAPY_LIFE_CYCLE_H

#include <gnuradio/logger.h>
#include <gnuradio/ria/disconnect_classifier.h>
#include <pmt/pmt.h>
#include <SoapySDR/Device.hpp>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

namespace gr {
namespace ria {

class soapy_life_cycle
{
public:
    //! Who the block is: names its errors, its log lines and the channel it uses.
    struct identity {
        const char* block;  // "sdr_source": constructor errors begin with it
        const char* device; // "device" or "TX device", as the log names the radio
        int direction;      // SOAPY_SDR_RX or SOAPY_SDR_TX
        size_t channel;
        const char* stream_format; // SOAPY_SDR_CF32, SOAPY_SDR_CS16
    };

    //! What the tuning settings of the channel are; a block that has no AGC or correction leaves them.
    struct settings {
        double rate;
        double freq;
        double gain;
        double bandwidth; // 0: the driver's choice
        std::string antenna;
        bool agc = false;
        double ppm = 0.0;
    };

protected:
    enum class state_t { closed, opening, streaming, disconnected, stopped };
    enum class open_result { opened, failed, refused };
    //! What work() does after open_or_wait: stream, return nothing this call, or end the flowgraph.
    enum class next_step { stream, idle, done };

    soapy_life_cycle(identity id,
                     const gr::logger_ptr& logger,
                     std::string args,
                     const std::string& on_disconnect,
                     double reopen_interval,
                     double disconnect_timeout);
    virtual ~soapy_life_cycle() = default;

    // ---- hooks
    virtual void publish(const pmt::pmt_t& msg) = 0;
    //! One cmd key (not close/open/seq/chan), checked and applied, or only remembered while closed.
    virtual bool apply(const std::string& key, const pmt::pmt_t& value) = 0;
    //! Every setting, to a radio just made; returns the keys it refused.
    virtual std::vector<std::string> apply_all_settings() = 0;
    //! d_set from the radio: what it has, not what was asked.
    virtual void read_back() = 0;
    //! d_set and the block's own fields of a status message.
    virtual pmt::pmt_t settings_fields(pmt::pmt_t dict) const = 0;
    //! Why the block may not open a radio now (the TX interlocks); empty if it may.
    virtual std::string open_forbidden() const { return {}; }
    //! Before the settings are applied to a radio just made (driver settings that change what it can do).
    virtual void prepare_device() {}
    //! After read_back: why the radio, as it now is, must not stream; empty if it may.
    virtual std::string check_device() { return {}; }
    //! The radio streams: the block resets what belongs to one open.
    virtual void on_streaming(bool /*reopening*/) {}
    //! Before a command closes the radio (why: "closed", "reopened").
    virtual void on_close_command(const char* /*why*/) {}
    //! The radio was lost (before it is closed): what it was doing ends with \p reason.
    virtual void on_lost(const std::string& /*reason*/) {}
    //! The radio is closed, for whatever reason.
    virtual void on_closed() {}
    //! Fields of the opened status beyond the ranges every radio reports.
    virtual pmt::pmt_t opened_fields(pmt::pmt_t dict) const { return dict; }
    //! "cmd " or "tag ": where a setting named \p label came from, for its error message.
    virtual std::string origin(const std::string& /*label*/) const { return "cmd "; }

    // ---- life cycle
    std::string state_name() const;
    void begin();          // start(): open the radio in work(), if there are device args
    void stop_waiting();   // stop(): wake work() and any idle wait
    void close_device();
    //! For work(): a state other than streaming is handled (open, reopen, wait, stop); stream if streaming.
    next_step open_or_wait(double now, std::unique_lock<std::mutex>& lock);
    void lose_device(const std::string& reason);
    void idle_wait(double seconds, std::unique_lock<std::mutex>& lock);

    // ---- commands
    //! The cmd port's handler: never throws.
    void handle_cmd(const pmt::pmt_t& msg);
    void report_error(const std::string& key, const pmt::pmt_t& value, const std::string& message);
    //! report_error with "cmd LABEL: " (or "tag LABEL: ") before why.
    void refuse(const std::string& label, const pmt::pmt_t& value, const std::string& why);
    bool number_arg(const pmt::pmt_t& value, const std::string& label, double& out);
    bool in_ranges(const std::string& label, double v, const SoapySDR::RangeList& ranges, const char* unit);
    bool gain_in_range(const std::string& label, double v);
    //! An antenna name the open radio has (any name while closed), set on the radio.
    bool antenna_arg(const pmt::pmt_t& value, const std::string& label);
    //! d_set's own fields of a status message; the filter and antenna as the open radio has them.
    pmt::pmt_t channel_fields(pmt::pmt_t dict) const;
    pmt::pmt_t with_open_seq(pmt::pmt_t dict) const;

    mutable std::mutex d_mutex;
    std::condition_variable d_wake;
    bool d_stopping = false;

    const identity d_id;
    const gr::logger_ptr& d_log; // the block's own logger
    std::string d_args;
    settings d_set{};
    const bool d_stop_on_disconnect;
    const double d_reopen_interval;
    disconnect_classifier d_classifier;

    SoapySDR::Device* d_dev = nullptr;
    SoapySDR::Stream* d_stream = nullptr;
    state_t d_state = state_t::closed;
    bool d_unknown_error_logged = false;
    uint64_t d_disconnects = 0;

private:
    void apply_cmd(const pmt::pmt_t& msg);
    open_result try_open();
    void refuse_open(const std::string& message);
    pmt::pmt_t opened_status(bool reopening) const;

    bool d_ever_opened = false;
    bool d_open_failure_reported = false;
    double d_next_open_s = 0.0;
    std::string d_refusal; // why try_open refused
    // While an `open` command's radio is not yet streaming: the settings that command carried (the open is
    // refused if the radio refuses one of them) and the settings from before it (restored on a refusal).
    std::vector<std::string> d_open_keys;
    settings d_before_open{};
    pmt::pmt_t d_open_seq = pmt::PMT_NIL;
    bool d_open_pending = false; // until that command's radio streams (or is refused or closed): errors carry its seq
};

} // namespace ria
} // namespace gr

#endif
