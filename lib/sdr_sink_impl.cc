#include "sdr_sink_impl.h"
#include "monotonic_clock.h"
#include "soapy_ranges.h"
#include "status_message.h"

#include <gnuradio/io_signature.h>
#include <SoapySDR/Errors.hpp>
#include <SoapySDR/Formats.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

namespace gr {
namespace ria {

namespace {
const pmt::pmt_t port_cmd = pmt::mp("cmd");
const pmt::pmt_t port_status = pmt::mp("status");
const pmt::pmt_t tag_sob = pmt::mp("tx_sob");
const pmt::pmt_t tag_eob = pmt::mp("tx_eob");
const pmt::pmt_t tag_time = pmt::mp("tx_time");
const pmt::pmt_t tag_freq = pmt::mp("tx_freq");
const pmt::pmt_t tag_rate = pmt::mp("tx_rate");
const pmt::pmt_t tag_gain = pmt::mp("tx_gain");

// Every wait inside work() is bounded by this, so stop() and commands are never kept waiting.
constexpr long write_timeout_us = 100000;
constexpr double idle_poll_s = 0.05;
constexpr double fast_error_backoff_s = 0.01;
constexpr int status_polls_per_call = 8;
constexpr size_t tx_channel = 0;

const char* const known_keys = "freq, rate, gain, bandwidth, antenna, open, seq, close, chan";

// Order of the tags on one item: a new burst first, then its time, then its settings; tx_eob only ends windows.
int head_rank(const pmt::pmt_t& key)
{
    if (key == tag_sob)
        return 0;
    if (key == tag_time)
        return 1;
    if (key == tag_eob)
        return 3;
    return 2;
}

bool is_ours(const pmt::pmt_t& key)
{
    return key == tag_sob || key == tag_eob || key == tag_time || key == tag_freq || key == tag_rate ||
           key == tag_gain;
}

double require(const char* name, double value, bool ok, const char* rule)
{
    if (!std::isfinite(value) || !ok)
        throw std::invalid_argument(std::string("sdr_sink: ") + name + " must be " + rule + ", got " +
                                    format_number(value));
    return value;
}

bool parse_policy(const std::string& on_disconnect)
{
    if (on_disconnect == "reconnect")
        return false;
    if (on_disconnect == "stop")
        return true;
    throw std::invalid_argument("sdr_sink: on_disconnect must be 'reconnect' or 'stop', not '" + on_disconnect +
                                "'");
}

bool parse_burst_tags(const std::string& burst_tags)
{
    if (burst_tags == "optional")
        return false;
    if (burst_tags == "required")
        return true;
    throw std::invalid_argument("sdr_sink: burst_tags must be 'optional' or 'required', not '" + burst_tags + "'");
}

// A constructor setting that breaks an interlock is an argument error, named.
double within(const char* name, double value, const std::string& refusal)
{
    if (!refusal.empty())
        throw std::invalid_argument(std::string("sdr_sink: ") + name + " " + refusal);
    return value;
}
} // namespace

sdr_sink::sptr sdr_sink::make(const std::string& device,
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
                              double disconnect_timeout)
{
    return gnuradio::make_block_sptr<sdr_sink_impl>(device,
                                                    sample_rate,
                                                    center_freq,
                                                    gain,
                                                    antenna,
                                                    bandwidth,
                                                    allow_tx,
                                                    max_gain_db,
                                                    max_duration_s,
                                                    allowed_freq_ranges,
                                                    burst_tags,
                                                    on_disconnect,
                                                    reopen_interval,
                                                    disconnect_timeout);
}

sdr_sink_impl::sdr_sink_impl(const std::string& device,
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
                             double disconnect_timeout)
    : gr::sync_block("ria_sdr_sink",
                     gr::io_signature::make(1, 1, sizeof(gr_complex)),
                     gr::io_signature::make(0, 0, 0)),
      d_args(device),
      d_locks(allow_tx, max_gain_db, max_duration_s, allowed_freq_ranges),
      d_bursts_required(parse_burst_tags(burst_tags)),
      d_stop_on_disconnect(parse_policy(on_disconnect)),
      d_reopen_interval(require("reopen_interval", reopen_interval, reopen_interval > 0, "> 0 seconds")),
      d_classifier(require("disconnect_timeout", disconnect_timeout, disconnect_timeout > 0, "> 0 seconds"))
{
    d_set = { require("sample_rate", sample_rate, sample_rate > 0, "> 0"),
              within("center_freq",
                     require("center_freq", center_freq, center_freq >= 0, ">= 0"),
                     d_locks.check_freq(center_freq)),
              within("gain", require("gain", gain, true, "a finite number"), d_locks.check_gain(gain)),
              require("bandwidth", bandwidth, bandwidth >= 0, ">= 0 (0: driver's choice)"),
              antenna };
    d_setters = { { "freq", &sdr_sink_impl::set_freq },
                  { "rate", &sdr_sink_impl::set_rate },
                  { "gain", &sdr_sink_impl::set_gain_value },
                  { "bandwidth", &sdr_sink_impl::set_bandwidth_value },
                  { "antenna", &sdr_sink_impl::set_antenna_value } };
    message_port_register_in(port_cmd);
    set_msg_handler(port_cmd, [this](const pmt::pmt_t& msg) { handle_cmd(msg); });
    message_port_register_out(port_status);
    // Burst tags must reach work() where they were put, not be moved by the scheduler's propagation.
    set_tag_propagation_policy(TPP_DONT);
}

sdr_sink_impl::~sdr_sink_impl()
{
    {
        std::lock_guard<std::mutex> lock(d_mutex);
        d_stopping = true;
    }
    d_wake.notify_all();
    if (d_status_thread.joinable())
        d_status_thread.join();
    std::lock_guard<std::mutex> lock(d_mutex);
    close_device();
}

bool sdr_sink_impl::start()
{
    std::lock_guard<std::mutex> lock(d_mutex);
    d_stopping = false;
    d_state = d_args.empty() ? state_t::closed : state_t::opening;
    d_next_open_s = 0.0;
    d_status_thread = std::thread([this] { status_loop(); });
    return true;
}

void sdr_sink_impl::status_loop()
{
    std::unique_lock<std::mutex> lock(d_mutex);
    while (!d_stopping) {
        d_wake.wait_for(lock, std::chrono::duration<double>(idle_poll_s), [this] { return d_stopping; });
        if (d_stopping || d_state != state_t::streaming)
            continue;
        try {
            poll_stream_status();
            report_summaries(monotonic_s(), false);
        } catch (const std::exception& e) {
            d_logger->error("status: {}", e.what());
        }
    }
}

bool sdr_sink_impl::stop()
{
    {
        std::lock_guard<std::mutex> lock(d_mutex);
        d_stopping = true;
    }
    d_wake.notify_all();
    if (d_status_thread.joinable())
        d_status_thread.join();
    std::lock_guard<std::mutex> lock(d_mutex);
    end_radio_burst("stopped");
    close_device();
    return true;
}

void sdr_sink_impl::post_cmd(const char* key, const pmt::pmt_t& value)
{
    _post(port_cmd, pmt::dict_add(pmt::make_dict(), pmt::mp(key), value));
}

void sdr_sink_impl::set_center_freq(double freq) { post_cmd("freq", pmt::from_double(freq)); }
void sdr_sink_impl::set_sample_rate(double rate) { post_cmd("rate", pmt::from_double(rate)); }
void sdr_sink_impl::set_gain(double gain) { post_cmd("gain", pmt::from_double(gain)); }
void sdr_sink_impl::set_bandwidth(double bandwidth) { post_cmd("bandwidth", pmt::from_double(bandwidth)); }
void sdr_sink_impl::set_antenna(const std::string& antenna) { post_cmd("antenna", pmt::mp(antenna)); }

std::string sdr_sink_impl::state() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    switch (d_state) {
    case state_t::closed:
        return "closed";
    case state_t::opening:
        return "opening";
    case state_t::streaming:
        return "streaming";
    case state_t::disconnected:
        return "disconnected";
    case state_t::stopped:
        return "stopped";
    }
    return "closed";
}

uint64_t sdr_sink_impl::samples_written() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_written;
}

uint64_t sdr_sink_impl::samples_dropped() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_dropped;
}

uint64_t sdr_sink_impl::underflows() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_underflows;
}

uint64_t sdr_sink_impl::disconnects() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_disconnects;
}

void sdr_sink_impl::publish(const pmt::pmt_t& msg) { message_port_pub(port_status, msg); }

void sdr_sink_impl::report_error(const std::string& label, const pmt::pmt_t& value, const std::string& message)
{
    d_logger->warn("{}", message);
    pmt::pmt_t error = error_status(label, value, message);
    publish(d_open_pending ? with_open_seq(error) : error);
}

pmt::pmt_t sdr_sink_impl::with_open_seq(pmt::pmt_t d) const
{
    return pmt::is_null(d_open_seq) ? d : with_field(d, "seq", d_open_seq);
}

pmt::pmt_t sdr_sink_impl::settings_fields(pmt::pmt_t d) const
{
    double bandwidth = d_set.bandwidth;
    std::string antenna = d_set.antenna;
    if (d_dev) {
        try {
            bandwidth = d_dev->getBandwidth(SOAPY_SDR_TX, tx_channel);
            antenna = d_dev->getAntenna(SOAPY_SDR_TX, tx_channel);
        } catch (const std::exception&) { // a radio going away: the next write says so
        }
    }
    d = with_field(d, "device", pmt::mp(d_args));
    d = with_field(d, "freq", pmt::from_double(d_set.freq));
    d = with_field(d, "rate", pmt::from_double(d_set.rate));
    d = with_field(d, "gain", pmt::from_double(d_set.gain));
    d = with_field(d, "bandwidth", pmt::from_double(bandwidth));
    d = with_field(d, "antenna", pmt::mp(antenna));
    return d;
}

void sdr_sink_impl::idle_wait(double seconds, std::unique_lock<std::mutex>& lock)
{
    if (seconds > 0)
        d_wake.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return d_stopping; });
}

// ---------------------------------------------------------------- settings

void sdr_sink_impl::refuse(const std::string& label, const pmt::pmt_t& value, const std::string& why)
{
    report_error(label, value, (d_setters.count(label) ? "cmd " : "tag ") + label + ": " + why);
}

bool sdr_sink_impl::number_arg(const pmt::pmt_t& value, const std::string& label, double& out)
{
    if (!pmt::is_real(value) && !pmt::is_integer(value)) {
        refuse(label, value, "expected a number, got " + pmt::write_string(value));
        return false;
    }
    out = pmt::to_double(value);
    if (!std::isfinite(out)) {
        refuse(label, value, "value must be finite, got " + format_number(out));
        return false;
    }
    return true;
}

bool sdr_sink_impl::in_ranges(const std::string& label, double v, const SoapySDR::RangeList& ranges, const char* unit)
{
    if (ranges.empty())
        return true;
    for (const auto& r : ranges)
        if (v >= r.minimum() && v <= r.maximum())
            return true;
    const auto [lo, hi] = overall_range(ranges);
    refuse(label, pmt::from_double(v), format_number(v) + " " + unit + " is outside the device range " +
                                           format_number(lo) + " to " + format_number(hi) + " " + unit);
    return false;
}

bool sdr_sink_impl::set_freq(const pmt::pmt_t& value, const std::string& label)
{
    double v;
    if (!number_arg(value, label, v))
        return false;
    const std::string refusal = d_locks.check_freq(v);
    if (!refusal.empty()) {
        refuse(label, value, refusal);
        return false;
    }
    if (d_dev) {
        if (!in_ranges(label, v, d_dev->getFrequencyRange(SOAPY_SDR_TX, tx_channel), "Hz"))
            return false;
        d_dev->setFrequency(SOAPY_SDR_TX, tx_channel, v);
        v = d_dev->getFrequency(SOAPY_SDR_TX, tx_channel);
    }
    d_set.freq = v;
    return true;
}

bool sdr_sink_impl::set_rate(const pmt::pmt_t& value, const std::string& label)
{
    double v;
    if (!number_arg(value, label, v))
        return false;
    if (!(v > 0)) {
        refuse(label, value, "must be > 0, got " + format_number(v));
        return false;
    }
    if (d_dev) {
        if (!in_ranges(label, v, d_dev->getSampleRateRange(SOAPY_SDR_TX, tx_channel), "S/s"))
            return false;
        d_dev->setSampleRate(SOAPY_SDR_TX, tx_channel, v);
        v = d_dev->getSampleRate(SOAPY_SDR_TX, tx_channel);
    }
    d_set.rate = v;
    return true;
}

bool sdr_sink_impl::set_gain_value(const pmt::pmt_t& value, const std::string& label)
{
    double v;
    if (!number_arg(value, label, v))
        return false;
    const std::string refusal = d_locks.check_gain(v);
    if (!refusal.empty()) {
        refuse(label, value, refusal);
        return false;
    }
    if (d_dev) {
        const auto r = d_dev->getGainRange(SOAPY_SDR_TX, tx_channel);
        if (!in_ranges(label, v, { SoapySDR::Range(r.minimum(), r.maximum()) }, "dB"))
            return false;
        d_dev->setGain(SOAPY_SDR_TX, tx_channel, v);
        v = d_dev->getGain(SOAPY_SDR_TX, tx_channel);
    }
    d_set.gain = v;
    return true;
}

bool sdr_sink_impl::set_bandwidth_value(const pmt::pmt_t& value, const std::string& label)
{
    double v;
    if (!number_arg(value, label, v))
        return false;
    if (v < 0) {
        report_error(label, value, "cmd " + label + ": must be >= 0 (0: driver's choice), got " + format_number(v));
        return false;
    }
    if (d_dev && v > 0) {
        if (!in_ranges(label, v, d_dev->getBandwidthRange(SOAPY_SDR_TX, tx_channel), "Hz"))
            return false;
        d_dev->setBandwidth(SOAPY_SDR_TX, tx_channel, v);
    }
    d_set.bandwidth = v;
    return true;
}

bool sdr_sink_impl::set_antenna_value(const pmt::pmt_t& value, const std::string& label)
{
    if (!pmt::is_symbol(value)) {
        report_error(label, value, "cmd " + label + ": expected a string, got " + pmt::write_string(value));
        return false;
    }
    const std::string name = pmt::symbol_to_string(value);
    if (d_dev) {
        const auto names = d_dev->listAntennas(SOAPY_SDR_TX, tx_channel);
        if (std::find(names.begin(), names.end(), name) == names.end()) {
            std::string all;
            for (const auto& n : names)
                all += (all.empty() ? "" : ", ") + n;
            report_error(label, value, "cmd " + label + ": '" + name + "' is not one of " + all);
            return false;
        }
        d_dev->setAntenna(SOAPY_SDR_TX, tx_channel, name);
    }
    d_set.antenna = name;
    return true;
}

bool sdr_sink_impl::apply(const std::string& key, const pmt::pmt_t& value, const std::string& label)
{
    const auto it = d_setters.find(key);
    if (it == d_setters.end()) {
        report_error(key, value, "cmd: unknown key '" + key + "' (known: " + known_keys + ")");
        return false;
    }
    try {
        if (!(this->*(it->second))(value, label))
            return false;
    } catch (const std::exception& e) {
        report_error(label, value, label + ": the device refused " + pmt::write_string(value) + ": " + e.what());
        return false;
    }
    d_broken.erase(key); // the setting a tag broke is good again
    return true;
}

// ---------------------------------------------------------------- device life cycle

void sdr_sink_impl::close_device()
{
    if (!d_dev)
        return;
    // A vanished radio may throw from any of these; closing must still finish.
    try {
        if (d_stream)
            d_dev->deactivateStream(d_stream);
    } catch (...) {
    }
    try {
        if (d_stream)
            d_dev->closeStream(d_stream);
    } catch (...) {
    }
    try {
        SoapySDR::Device::unmake(d_dev);
    } catch (...) {
    }
    d_stream = nullptr;
    d_dev = nullptr;
    d_radio_burst = false;
}

std::vector<std::string> sdr_sink_impl::apply_all_settings()
{
    // The rate first, so that the frequency and the filter follow it.
    std::vector<std::string> refused;
    auto one = [&](const char* key, const pmt::pmt_t& value) {
        if (!apply(key, value, key))
            refused.push_back(key);
    };
    one("rate", pmt::from_double(d_set.rate));
    if (d_set.bandwidth > 0)
        one("bandwidth", pmt::from_double(d_set.bandwidth));
    one("freq", pmt::from_double(d_set.freq));
    if (!d_set.antenna.empty())
        one("antenna", pmt::mp(d_set.antenna));
    one("gain", pmt::from_double(d_set.gain));
    return refused;
}

void sdr_sink_impl::read_back()
{
    d_set.freq = d_dev->getFrequency(SOAPY_SDR_TX, tx_channel);
    d_set.rate = d_dev->getSampleRate(SOAPY_SDR_TX, tx_channel);
    d_set.gain = d_dev->getGain(SOAPY_SDR_TX, tx_channel);
}

sdr_sink_impl::open_result sdr_sink_impl::try_open()
{
    const std::string disabled = d_locks.check_open();
    if (!disabled.empty()) {
        d_open_keys.clear();
        return open_result::refused;
    }
    const bool reopening = d_ever_opened && d_state == state_t::disconnected;
    try {
        d_dev = SoapySDR::Device::make(SoapySDR::KwargsFromString(d_args));
        if (d_dev->getNumChannels(SOAPY_SDR_TX) <= tx_channel)
            throw std::invalid_argument("the device has no TX channel");
        for (const auto& key : apply_all_settings())
            if (std::find(d_open_keys.begin(), d_open_keys.end(), key) != d_open_keys.end()) {
                close_device();
                return open_result::refused;
            }
        read_back();
        // What the radio has must be inside the interlocks too, whatever it kept of what was refused.
        const std::string outside = d_locks.check_freq(d_set.freq) + d_locks.check_gain(d_set.gain);
        if (!outside.empty()) {
            report_error("open", pmt::mp(d_args), "cmd open: the radio stays at " + outside);
            close_device();
            return open_result::refused;
        }
        d_stream = d_dev->setupStream(SOAPY_SDR_TX, SOAPY_SDR_CF32, { tx_channel });
        const int rc = d_dev->activateStream(d_stream);
        if (rc != 0)
            throw std::runtime_error(std::string("activateStream failed: ") + SoapySDR::errToStr(rc));
    } catch (const std::exception& e) {
        close_device();
        if (!d_open_failure_reported) {
            d_open_failure_reported = true;
            const std::string msg = "cannot open device '" + d_args + "': " + e.what();
            d_logger->warn("{}; retrying every {} s", msg, d_reopen_interval);
            if (!reopening)
                publish(with_open_seq(status_dict("error",
                                                  { { "key", pmt::mp("open") },
                                                    { "value", pmt::mp(d_args) },
                                                    { "message", pmt::mp(msg) } })));
        }
        return open_result::failed;
    }

    d_open_failure_reported = false;
    d_open_keys.clear();
    d_open_pending = false;
    d_state = state_t::streaming;
    d_status_supported = true;
    d_classifier.reset(monotonic_s());
    // Nothing from before an open goes out: a burst must begin after it (or, optional tags, the next sample).
    d_burst_open = false;
    d_radio_burst = false;
    d_time_pending = false;
    d_broken.clear();
    if (!reopening) {
        d_written = 0;
        d_air_s = 0.0;
        d_limited = false;
    }

    auto span = [](const SoapySDR::RangeList& r) {
        if (r.empty())
            return pmt::PMT_NIL;
        const auto [lo, hi] = overall_range(r);
        return range_pmt(lo, hi);
    };
    const auto gain_range = d_dev->getGainRange(SOAPY_SDR_TX, tx_channel);
    const auto antenna_names = d_dev->listAntennas(SOAPY_SDR_TX, tx_channel);
    pmt::pmt_t antennas = pmt::make_vector(antenna_names.size(), pmt::PMT_NIL);
    for (size_t i = 0; i < antenna_names.size(); i++)
        pmt::vector_set(antennas, i, pmt::mp(antenna_names[i]));
    pmt::pmt_t opened =
        status_dict(reopening ? "reconnected" : "opened",
                    { { "driver", pmt::mp(d_dev->getDriverKey()) },
                      { "hardware", pmt::mp(d_dev->getHardwareKey()) },
                      { "freq_range", span(d_dev->getFrequencyRange(SOAPY_SDR_TX, tx_channel)) },
                      { "rate_range", span(d_dev->getSampleRateRange(SOAPY_SDR_TX, tx_channel)) },
                      { "bandwidth_range", span(d_dev->getBandwidthRange(SOAPY_SDR_TX, tx_channel)) },
                      { "gain_range", range_pmt(gain_range.minimum(), gain_range.maximum()) },
                      { "antennas", antennas } });
    publish(with_open_seq(settings_fields(opened)));
    d_logger->info(reopening ? "TX device '{}' is back" : "opened TX device '{}'", d_args);
    d_ever_opened = true;
    return open_result::opened;
}

void sdr_sink_impl::refuse_open(const std::string& message)
{
    close_device();
    if (d_open_pending) // an open command: its settings go with it
        d_set = d_before_open;
    d_open_keys.clear();
    d_open_pending = false;
    d_state = state_t::closed;
    d_logger->warn("did not open TX device '{}': {}", d_args, message);
    publish(with_open_seq(
        status_dict("refused", { { "device", pmt::mp(d_args) }, { "message", pmt::mp(message) } })));
}

void sdr_sink_impl::lose_device(const std::string& reason)
{
    d_disconnects++;
    if (d_radio_burst)
        publish(status_dict("burst_end",
                            { { "samples", pmt::from_uint64(d_burst_written) }, { "reason", pmt::mp(reason) } }));
    report_summaries(monotonic_s(), true);
    close_device();
    const char* action = d_stop_on_disconnect ? "stop" : "reconnect";
    d_logger->error("TX device '{}' disconnected: {} ({})", d_args, reason, action);
    publish(status_dict("disconnected",
                        { { "device", pmt::mp(d_args) },
                          { "reason", pmt::mp(reason) },
                          { "action", pmt::mp(action) } }));
    if (d_stop_on_disconnect) {
        d_state = state_t::stopped;
        publish(status_dict("stopped", { { "reason", pmt::mp(reason) } }));
    } else {
        d_state = state_t::disconnected;
        d_open_failure_reported = true; // the disconnect was the one message; retries stay quiet
        d_next_open_s = monotonic_s() + d_reopen_interval;
    }
}

// ---------------------------------------------------------------- commands

void sdr_sink_impl::handle_cmd(const pmt::pmt_t& raw)
{
    std::unique_lock<std::mutex> lock(d_mutex);
    try {
        apply_cmd(raw);
    } catch (const std::exception& e) { // never out of a handler: that would end the block's thread
        report_error("cmd", raw, std::string("cmd: not handled: ") + e.what());
    }
}

void sdr_sink_impl::apply_cmd(const pmt::pmt_t& raw)
{
    pmt::pmt_t msg = raw;
    if (pmt::is_pair(msg) && !pmt::is_dict(msg) && pmt::is_symbol(pmt::car(msg)))
        msg = pmt::dict_add(pmt::make_dict(), pmt::car(msg), pmt::cdr(msg));
    if (!pmt::is_dict(msg)) {
        report_error("cmd", raw, "cmd: expected a dict such as {freq: 433.92e6}, got " + pmt::write_string(raw));
        return;
    }
    const pmt::pmt_t chan = pmt::dict_ref(msg, pmt::mp("chan"), pmt::PMT_NIL);
    if (chan != pmt::PMT_NIL && (!pmt::is_integer(chan) || pmt::to_long(chan) != long(tx_channel))) {
        report_error("chan", chan, "cmd chan: this sink transmits on channel 0, not " + pmt::write_string(chan) +
                                       "; command ignored");
        return;
    }

    // close, then open, then settings: "open X with these settings" is one message, all or nothing.
    if (pmt::dict_has_key(msg, pmt::mp("close"))) {
        end_radio_burst("closed");
        close_device();
        d_open_keys.clear();
        d_open_pending = false;
        d_state = state_t::closed;
        d_logger->info("TX device closed by command");
        publish(status_dict("closed", { { "device", pmt::mp(d_args) } }));
    }
    const pmt::pmt_t open = pmt::dict_ref(msg, pmt::mp("open"), pmt::PMT_NIL);
    bool open_requested = false;
    if (open != pmt::PMT_NIL) {
        if (!pmt::is_symbol(open) || pmt::symbol_to_string(open).empty()) {
            report_error("open", open, "cmd open: expected device args such as 'driver=riasim', got " +
                                           pmt::write_string(open));
        } else {
            end_radio_burst("reopened");
            close_device();
            d_args = pmt::symbol_to_string(open);
            d_ever_opened = false;
            d_open_failure_reported = false;
            d_before_open = d_set;
            d_open_keys.clear();
            d_open_seq = pmt::dict_ref(msg, pmt::mp("seq"), pmt::PMT_NIL);
            d_open_pending = true;
            open_requested = true;
            const std::string disabled = d_locks.check_open();
            if (!disabled.empty()) { // nothing else of this command is looked at
                refuse_open(disabled);
                return;
            }
        }
    }

    bool changed = false, all_taken = true;
    std::vector<std::string> refused;
    pmt::pmt_t items = pmt::dict_items(msg);
    for (size_t i = 0; i < pmt::length(items); i++) {
        const pmt::pmt_t item = pmt::nth(i, items);
        const pmt::pmt_t name = pmt::car(item);
        const std::string key = pmt::is_symbol(name) ? pmt::symbol_to_string(name) : pmt::write_string(name);
        if (key == "open" || key == "close" || key == "chan" || key == "seq")
            continue;
        const bool taken = apply(key, pmt::cdr(item), key);
        changed |= taken;
        all_taken &= taken;
        if (!taken)
            refused.push_back(key);
        if (open_requested)
            d_open_keys.push_back(key);
    }

    if (open_requested) {
        auto refusal = [&](const std::vector<std::string>& keys) {
            std::string names;
            for (const auto& k : keys)
                names += (names.empty() ? "" : ", ") + k;
            return "a setting of the open command was refused: " + names;
        };
        if (!all_taken) { // a bad value or key: the device is not even tried
            refuse_open(refusal(refused));
            return;
        }
        d_state = state_t::opening;
        switch (try_open()) {
        case open_result::opened:
            break;
        case open_result::refused:
            refuse_open("a setting of the open command was refused by the radio or the interlocks");
            break;
        case open_result::failed:
            d_state = state_t::disconnected;
            d_next_open_s = monotonic_s() + d_reopen_interval;
            break;
        }
    } else if (changed && d_dev) {
        publish(settings_fields(status_dict("settings", {})));
    }
}

// ---------------------------------------------------------------- bursts

void sdr_sink_impl::start_burst()
{
    d_burst_open = true;
    d_burst_index = 0;
}

void sdr_sink_impl::end_radio_burst(const char* why)
{
    if (!d_radio_burst)
        return;
    d_radio_burst = false;
    if (d_dev && d_stream) {
        try { // an empty END_BURST, so the radio does not count the end as an underflow
            int flags = SOAPY_SDR_END_BURST;
            const void* buffs[] = { nullptr };
            d_dev->writeStream(d_stream, buffs, 0, flags, 0, write_timeout_us);
        } catch (const std::exception&) { // a radio going away: the next write says so
        }
    }
    d_logger->debug("burst ended ({}) after {} samples", why, d_burst_written);
    publish(status_dict("burst_end",
                        { { "samples", pmt::from_uint64(d_burst_written) }, { "reason", pmt::mp(why) } }));
}

void sdr_sink_impl::head_tag(const gr::tag_t& tag)
{
    if (tag.key == tag_sob) {
        end_radio_burst("new burst");
        start_burst();
        d_broken.clear();
        return;
    }
    if (tag.key == tag_time) {
        const pmt::pmt_t& v = tag.value;
        if (!pmt::is_tuple(v) || pmt::length(v) != 2 ||
            !(pmt::is_uint64(pmt::tuple_ref(v, 0)) || pmt::is_integer(pmt::tuple_ref(v, 0))) ||
            !pmt::is_real(pmt::tuple_ref(v, 1))) {
            report_error("tx_time", v, "tag tx_time: expected (uint64 seconds, double fraction), got " +
                                           pmt::write_string(v));
            return;
        }
        const pmt::pmt_t s = pmt::tuple_ref(v, 0);
        const double secs = pmt::is_uint64(s) ? double(pmt::to_uint64(s)) : double(pmt::to_long(s));
        end_radio_burst("timed burst");
        d_time_ns = (long long)(secs) * 1000000000LL + std::llround(pmt::to_double(pmt::tuple_ref(v, 1)) * 1e9);
        d_time_pending = true;
        return;
    }
    if (tag.key == tag_eob)
        return; // it ends a window, see one_window
    const std::string key = tag.key == tag_freq ? "freq" : tag.key == tag_rate ? "rate" : "gain";
    if (apply(key, tag.value, pmt::symbol_to_string(tag.key))) {
        if (d_dev)
            publish(status_dict("tuned",
                                { { "freq", pmt::from_double(d_set.freq) },
                                  { "rate", pmt::from_double(d_set.rate) },
                                  { "gain", pmt::from_double(d_set.gain) },
                                  { "index", pmt::from_uint64(d_burst_index) } }));
        return;
    }
    // Refused: these samples cannot go out as asked, so none go out until it is fixed or a new burst begins.
    end_radio_burst("setting refused");
    d_broken.insert(key);
}

void sdr_sink_impl::drop(size_t n)
{
    d_dropped += n;
    if (d_burst_open)
        d_burst_index += n;
}

void sdr_sink_impl::finish_write(size_t written, bool ended, bool limit)
{
    if (!d_radio_burst) {
        d_radio_burst = true;
        d_burst_written = 0;
        d_time_pending = false;
        d_logger->debug("transmitting");
        publish(settings_fields(status_dict("transmitting", { { "index", pmt::from_uint64(d_burst_index) } })));
    }
    d_burst_written += written;
    d_burst_index += written;
    d_written += written;
    d_air_s += double(written) / d_set.rate;
    if (!ended)
        return;
    d_radio_burst = false;
    publish(status_dict("burst_end",
                        { { "samples", pmt::from_uint64(d_burst_written) },
                          { "reason", pmt::mp(limit ? "max duration reached" : "tx_eob") } }));
    if (limit) {
        d_limited = true;
        d_logger->warn("max duration reached after {} samples ({} s on air): nothing more until the next open",
                       d_written,
                       d_air_s);
        publish(status_dict("limit",
                            { { "reason", pmt::mp("max duration reached") },
                              { "samples", pmt::from_uint64(d_written) } }));
    }
}

// One window: from item 0 (its tags handled first) to just before the next tag that must be at a write's
// first item, or through a tx_eob. Returns the items consumed; \p wrote says whether the radio was asked.
int sdr_sink_impl::one_window(const gr_complex* in, size_t start, size_t avail, bool can_write, bool& wrote)
{
    wrote = false;
    in += start;
    const uint64_t base = nitems_read(0) + start;
    std::vector<gr::tag_t> all, tags;
    get_tags_in_range(all, 0, base, base + avail);
    for (const auto& t : all)
        if (is_ours(t.key))
            tags.push_back(t);
    std::stable_sort(tags.begin(), tags.end(), [](const gr::tag_t& a, const gr::tag_t& b) {
        return a.offset != b.offset ? a.offset < b.offset : head_rank(a.key) < head_rank(b.key);
    });

    if (d_head_done != base) { // a window retried after a timeout does not apply its tags twice
        d_head_done = base;
        for (const auto& t : tags)
            if (t.offset == base)
                head_tag(t);
    }

    size_t head_stop = avail, eob_stop = avail + 1;
    for (const auto& t : tags) {
        const size_t rel = size_t(t.offset - base);
        if (t.key == tag_eob)
            eob_stop = std::min(eob_stop, rel + 1);
        else if (rel > 0)
            head_stop = std::min(head_stop, rel);
    }
    size_t len = std::min(head_stop, eob_stop);
    bool ends = eob_stop <= head_stop;

    if (!d_burst_open && !d_bursts_required)
        start_burst(); // an untagged stream is one long burst
    if (!can_write || !d_burst_open || !d_broken.empty() || d_limited) {
        drop(len);
        if (ends)
            d_burst_open = false;
        return int(len);
    }
    // A radio left idle (no burst) is not silent: the timeout counts from the first write after a pause.
    if (monotonic_s() - d_last_attempt_s > 2.5 * write_timeout_us / 1e6)
        d_classifier.reset(monotonic_s());

    bool limit = false;
    if (d_locks.max_duration_s() > 0) {
        const double left = std::floor((d_locks.max_duration_s() - d_air_s) * d_set.rate + 1e-6);
        if (left < 1) { // reached on the last write
            d_limited = true;
            drop(len);
            return int(len);
        }
        if (double(len) >= left) { // this write uses up the time on air: it ends the burst
            limit = true;
            len = size_t(left);
            ends = true;
        }
    }

    int flags = (ends ? SOAPY_SDR_END_BURST : 0) | (!d_radio_burst && d_time_pending ? SOAPY_SDR_HAS_TIME : 0);
    const void* buffs[] = { in };
    int ret;
    std::string failure;
    wrote = true;
    try {
        ret = d_dev->writeStream(d_stream, buffs, len, flags, d_time_ns, write_timeout_us);
    } catch (const std::exception& e) {
        failure = e.what();
        ret = SOAPY_SDR_STREAM_ERROR;
    }
    const double after = monotonic_s();
    d_last_attempt_s = after;
    const read_verdict verdict =
        failure.empty() ? d_classifier.on_code(ret, after) : d_classifier.on_exception(failure, after);
    switch (verdict) {
    case read_verdict::samples: {
        const bool all = size_t(ret) == len;
        finish_write(size_t(ret), all && ends, all && limit);
        if (all && ends && !limit)
            d_burst_open = false;
        return ret;
    }
    case read_verdict::disconnected:
        lose_device(d_classifier.reason());
        return 0;
    case read_verdict::overflow:
    case read_verdict::transient:
        if (!failure.empty() && !d_unknown_error_logged) {
            d_unknown_error_logged = true;
            d_logger->warn("write error (the radio counts as gone if no write succeeds): {}", failure);
        }
        return 0;
    }
    return 0;
}

int sdr_sink_impl::consume(const gr_complex* in, int n, bool can_write)
{
    // Windows the radio is not asked about (dropped) are consumed in the same call; one write per call.
    int done = 0;
    while (done < n && d_state != state_t::stopped) {
        bool wrote = false;
        const int used = one_window(in, size_t(done), size_t(n - done), can_write, wrote);
        done += used;
        if (wrote || used == 0)
            break;
    }
    return done;
}

// ---------------------------------------------------------------- status

void sdr_sink_impl::poll_stream_status()
{
    for (int i = 0; i < status_polls_per_call && d_status_supported && d_dev; i++) {
        size_t mask = 0;
        int flags = 0;
        long long time_ns = 0;
        int rc;
        try {
            rc = d_dev->readStreamStatus(d_stream, mask, flags, time_ns, 0);
        } catch (const std::exception&) {
            return; // the next write says what is wrong
        }
        if (rc == SOAPY_SDR_UNDERFLOW) {
            d_underflows++;
            d_underflows_unreported++;
        } else if (rc == SOAPY_SDR_TIME_ERROR) {
            d_late++;
            d_late_unreported++;
        } else if (rc == SOAPY_SDR_NOT_SUPPORTED) {
            d_status_supported = false;
        } else if (rc != 0) {
            return;
        }
    }
}

void sdr_sink_impl::report_summaries(double now, bool force)
{
    if ((d_underflows_unreported == 0 && d_late_unreported == 0) || (!force && now - d_last_summary_s < 1.0))
        return;
    if (d_underflows_unreported) {
        d_logger->warn("{} underflow(s) ({} in all)", d_underflows_unreported, d_underflows);
        publish(status_dict("underflow",
                            { { "count", pmt::from_uint64(d_underflows_unreported) },
                              { "total", pmt::from_uint64(d_underflows) } }));
    }
    if (d_late_unreported) {
        d_logger->warn("{} late burst(s) the radio did not send ({} in all)", d_late_unreported, d_late);
        publish(status_dict("late",
                            { { "count", pmt::from_uint64(d_late_unreported) },
                              { "total", pmt::from_uint64(d_late) } }));
    }
    d_underflows_unreported = d_late_unreported = 0;
    d_last_summary_s = now;
}

// ---------------------------------------------------------------- work

int sdr_sink_impl::work(int noutput_items, gr_vector_const_void_star& input_items, gr_vector_void_star&)
{
    std::unique_lock<std::mutex> lock(d_mutex);
    const auto* in = static_cast<const gr_complex*>(input_items[0]);
    const double now = monotonic_s();
    try {
        switch (d_state) {
        case state_t::stopped:
            return WORK_DONE;
        case state_t::closed:
            idle_wait(idle_poll_s, lock); // the samples go nowhere, at a pace that does not spin
            return consume(in, noutput_items, false);
        case state_t::opening:
        case state_t::disconnected: {
            const open_result result = now >= d_next_open_s ? try_open() : open_result::failed;
            if (result == open_result::refused) {
                refuse_open(d_locks.check_open().empty() ? "a setting was refused by the radio or the interlocks"
                                                         : d_locks.check_open());
                return consume(in, noutput_items, false);
            }
            if (result == open_result::failed && now >= d_next_open_s) {
                if (d_stop_on_disconnect) {
                    d_state = state_t::stopped;
                    publish(status_dict("stopped",
                                        { { "reason", pmt::mp("cannot open device '" + d_args + "'") } }));
                    return WORK_DONE;
                }
                d_state = state_t::disconnected;
                d_next_open_s = now + d_reopen_interval;
            }
            if (d_state != state_t::streaming) {
                idle_wait(std::min(idle_poll_s * 2, d_next_open_s - now), lock);
                return consume(in, noutput_items, false);
            }
            break;
        }
        case state_t::streaming:
            break;
        }
        poll_stream_status();
        report_summaries(now, false);
        const int used = consume(in, noutput_items, true);
        if (d_state == state_t::stopped)
            return WORK_DONE;
        return used;
    } catch (const std::exception& e) { // never out of work(): that would end the block's thread
        d_logger->error("work: {}", e.what());
        publish(error_status("work", pmt::PMT_NIL, std::string("sdr_sink: ") + e.what()));
        idle_wait(fast_error_backoff_s, lock);
        return 0;
    }
}

} // namespace ria
} // namespace gr
