#include "sdr_source_impl.h"
#include "block_args.h"
#include "monotonic_clock.h"
#include "soapy_ranges.h"
#include "status_message.h"

#include <gnuradio/io_signature.h>
#include <SoapySDR/Errors.hpp>
#include <SoapySDR/Formats.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace gr {
namespace ria {

namespace {
const pmt::pmt_t port_cmd = pmt::mp("cmd");
const pmt::pmt_t port_status = pmt::mp("status");
const pmt::pmt_t tag_freq = pmt::mp("rx_freq");
const pmt::pmt_t tag_rate = pmt::mp("rx_rate");
const pmt::pmt_t tag_gain = pmt::mp("rx_gain");
const pmt::pmt_t tag_time = pmt::mp("rx_time");

// Long enough not to spin, short enough that stop() and commands are never kept waiting.
constexpr long read_timeout_us = 100000;
constexpr double idle_poll_s = 0.05;
constexpr double fast_error_backoff_s = 0.01;

const char* const known_keys =
    "freq, rate, gain, bandwidth, antenna, agc, ppm, device_settings, open, seq, close, chan";
// A crystal further off than this is broken, not in need of correction.
constexpr double max_ppm = 1000.0;

} // namespace

sdr_source::sptr sdr_source::make(const std::string& device_args,
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
                                  const std::string& device_settings)
{
    return gnuradio::make_block_sptr<sdr_source_impl>(device_args,
                                                      channel,
                                                      sample_rate,
                                                      center_freq,
                                                      gain,
                                                      agc,
                                                      bandwidth,
                                                      antenna,
                                                      on_disconnect,
                                                      reopen_interval,
                                                      disconnect_timeout,
                                                      ppm,
                                                      output_type,
                                                      device_settings);
}

namespace {
bool parse_policy(const std::string& on_disconnect)
{
    if (on_disconnect == "reconnect")
        return false;
    if (on_disconnect == "stop")
        return true;
    throw std::invalid_argument("sdr_source: on_disconnect must be 'reconnect' or 'stop', not '" +
                                on_disconnect + "'");
}

size_t output_item_size(const std::string& output_type)
{
    // sc16: complex int16, I then Q, as GRC's sc16 ports and gr-soapy's CS16 streams.
    return require_choice("sdr_source: output_type", output_type, { "fc32", "sc16" }) == "sc16"
               ? 2 * sizeof(int16_t)
               : sizeof(gr_complex);
}

double require(const char* name, double value, bool ok, const char* rule)
{
    if (!std::isfinite(value) || !ok)
        throw std::invalid_argument(std::string("sdr_source: ") + name + " must be " + rule +
                                    ", got " + format_number(value));
    return value;
}
} // namespace

sdr_source_impl::sdr_source_impl(const std::string& device_args,
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
                                 const std::string& device_settings)
    : gr::sync_block("ria_sdr_source",
                     gr::io_signature::make(0, 0, 0),
                     gr::io_signature::make(1, 1, output_item_size(output_type))),
      d_args(device_args),
      d_channel(channel),
      d_sc16(output_type == "sc16"),
      d_device_settings(parse_device_settings(device_settings)),
      d_set{ require("sample_rate", sample_rate, sample_rate > 0, "> 0"),
             require("center_freq", center_freq, center_freq >= 0, ">= 0"),
             require("gain", gain, true, "a finite number"),
             agc,
             require("bandwidth", bandwidth, bandwidth >= 0, ">= 0 (0: driver's choice)"),
             antenna,
             require("ppm", ppm, std::abs(ppm) <= max_ppm, "within +-1000") },
      d_stop_on_disconnect(parse_policy(on_disconnect)),
      d_reopen_interval(require("reopen_interval", reopen_interval, reopen_interval > 0, "> 0 seconds")),
      d_classifier(require("disconnect_timeout", disconnect_timeout, disconnect_timeout > 0, "> 0 seconds"))
{
    message_port_register_in(port_cmd);
    set_msg_handler(port_cmd, [this](const pmt::pmt_t& msg) { handle_cmd(msg); });
    message_port_register_out(port_status);
}

sdr_source_impl::~sdr_source_impl()
{
    std::lock_guard<std::mutex> lock(d_mutex);
    close_device();
}

bool sdr_source_impl::start()
{
    std::lock_guard<std::mutex> lock(d_mutex);
    d_stopping = false;
    d_state = d_args.empty() ? state_t::closed : state_t::opening;
    d_next_open_s = 0.0;
    return true;
}

bool sdr_source_impl::stop()
{
    {
        std::lock_guard<std::mutex> lock(d_mutex);
        d_stopping = true;
    }
    d_wake.notify_all();
    std::lock_guard<std::mutex> lock(d_mutex);
    close_device();
    return true;
}

void sdr_source_impl::post_cmd(const char* key, const pmt::pmt_t& value)
{
    _post(port_cmd, pmt::dict_add(pmt::make_dict(), pmt::mp(key), value));
}

void sdr_source_impl::set_center_freq(double freq) { post_cmd("freq", pmt::from_double(freq)); }
void sdr_source_impl::set_sample_rate(double rate) { post_cmd("rate", pmt::from_double(rate)); }
void sdr_source_impl::set_gain(double gain) { post_cmd("gain", pmt::from_double(gain)); }
void sdr_source_impl::set_agc(bool agc) { post_cmd("agc", pmt::from_bool(agc)); }
void sdr_source_impl::set_bandwidth(double bandwidth) { post_cmd("bandwidth", pmt::from_double(bandwidth)); }
void sdr_source_impl::set_antenna(const std::string& antenna) { post_cmd("antenna", pmt::mp(antenna)); }
void sdr_source_impl::set_ppm(double ppm) { post_cmd("ppm", pmt::from_double(ppm)); }
void sdr_source_impl::set_device_settings(const std::string& settings)
{
    post_cmd("device_settings", pmt::mp(settings));
}

std::string sdr_source_impl::state() const
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

uint64_t sdr_source_impl::overflows() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_overflows;
}

uint64_t sdr_source_impl::disconnects() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_disconnects;
}

void sdr_source_impl::publish(const pmt::pmt_t& msg) { message_port_pub(port_status, msg); }

void sdr_source_impl::report_error(const std::string& key,
                                   const pmt::pmt_t& value,
                                   const std::string& message)
{
    d_logger->warn("{}", message);
    pmt::pmt_t error = error_status(key, value, message);
    publish(d_open_pending ? with_open_seq(error) : error);
}

pmt::pmt_t sdr_source_impl::settings_fields(pmt::pmt_t d) const
{
    // With a device open, d_set's frequency, rate, gain and agc are what it reported back; the filter
    // and the antenna are asked for here (the settings may say 0 and "": the driver's choice).
    double bandwidth = d_set.bandwidth;
    std::string antenna = d_set.antenna;
    if (d_dev) {
        try {
            bandwidth = d_dev->getBandwidth(SOAPY_SDR_RX, d_channel);
            antenna = d_dev->getAntenna(SOAPY_SDR_RX, d_channel);
        } catch (const std::exception&) { // a radio going away: the next read says so
        }
    }
    d = with_field(d, "device", pmt::mp(d_args));
    d = with_field(d, "freq", pmt::from_double(d_set.freq));
    d = with_field(d, "rate", pmt::from_double(d_set.rate));
    d = with_field(d, "gain", pmt::from_double(d_set.gain));
    d = with_field(d, "agc", pmt::from_bool(d_set.agc));
    d = with_field(d, "bandwidth", pmt::from_double(bandwidth));
    d = with_field(d, "antenna", pmt::mp(antenna));
    d = with_field(d, "ppm", pmt::from_double(d_set.ppm));
    if (d_dev)
        d = with_field(d, "ppm_method", pmt::mp(driver_corrects() ? "driver" : "retune"));
    d = with_field(d, "output_type", pmt::mp(d_sc16 ? "sc16" : "fc32"));
    if (!pmt::is_null(d_settings_read_back))
        d = with_field(d, "device_settings", d_settings_read_back);
    return d;
}

pmt::pmt_t sdr_source_impl::with_open_seq(pmt::pmt_t d) const
{
    return pmt::is_null(d_open_seq) ? d : with_field(d, "seq", d_open_seq);
}

void sdr_source_impl::idle_wait(double seconds, std::unique_lock<std::mutex>& lock)
{
    if (seconds <= 0)
        return;
    d_wake.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return d_stopping; });
}

// ---------------------------------------------------------------- device life cycle

void sdr_source_impl::close_device()
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
}

sdr_source_impl::open_result sdr_source_impl::try_open()
{
    const bool reopening = d_ever_opened && d_state == state_t::disconnected;
    try {
        d_dev = SoapySDR::Device::make(SoapySDR::KwargsFromString(d_args));
        if (d_channel >= d_dev->getNumChannels(SOAPY_SDR_RX))
            throw std::invalid_argument("channel " + std::to_string(d_channel) +
                                        " does not exist (the device has " +
                                        std::to_string(d_dev->getNumChannels(SOAPY_SDR_RX)) +
                                        " RX channels)");
        // Driver settings first: some (direct sampling) change what the tuner can do.
        d_settings_read_back = pmt::PMT_NIL;
        write_device_settings(d_device_settings);
        // Each refusal is reported; one of a setting the `open` command carried refuses the open.
        for (const auto& key : apply_all_settings())
            if (std::find(d_open_keys.begin(), d_open_keys.end(), key) != d_open_keys.end()) {
                close_device();
                return open_result::refused;
            }
        read_back();
        d_stream = d_dev->setupStream(SOAPY_SDR_RX, d_sc16 ? SOAPY_SDR_CS16 : SOAPY_SDR_CF32, { d_channel });
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
    d_awaiting_first_samples = true;
    d_tags_pending = true;
    d_time_tag_pending = true;
    d_classifier.reset(monotonic_s());

    const auto ch = d_channel;
    const auto freq_ranges = d_dev->getFrequencyRange(SOAPY_SDR_RX, ch);
    const auto rate_ranges = d_dev->getSampleRateRange(SOAPY_SDR_RX, ch);
    const auto bw_ranges = d_dev->getBandwidthRange(SOAPY_SDR_RX, ch);
    const auto gain_range = d_dev->getGainRange(SOAPY_SDR_RX, ch);
    auto span = [](const SoapySDR::RangeList& r) {
        if (r.empty())
            return pmt::PMT_NIL;
        const auto [lo, hi] = overall_range(r);
        return range_pmt(lo, hi);
    };
    const auto antenna_names = d_dev->listAntennas(SOAPY_SDR_RX, ch);
    pmt::pmt_t antennas = pmt::make_vector(antenna_names.size(), pmt::PMT_NIL);
    for (size_t i = 0; i < antenna_names.size(); i++)
        pmt::vector_set(antennas, i, pmt::mp(antenna_names[i]));

    pmt::pmt_t opened = status_dict(reopening ? "reconnected" : "opened",
                                    { { "driver", pmt::mp(d_dev->getDriverKey()) },
                                      { "hardware", pmt::mp(d_dev->getHardwareKey()) },
                                      { "freq_range", span(freq_ranges) },
                                      { "rate_range", span(rate_ranges) },
                                      { "bandwidth_range", span(bw_ranges) },
                                      { "gain_range", range_pmt(gain_range.minimum(), gain_range.maximum()) },
                                      { "agc_supported", pmt::from_bool(d_dev->hasGainMode(SOAPY_SDR_RX, ch)) },
                                      { "antennas", antennas } });
    publish(with_open_seq(settings_fields(opened)));
    if (reopening)
        d_logger->info("device '{}' is back; streaming again", d_args);
    else
        d_logger->info("opened device '{}'", d_args);
    d_ever_opened = true;
    return open_result::opened;
}

std::vector<std::string> sdr_source_impl::apply_all_settings()
{
    // Applied in this order so that the frequency and filter follow the rate.
    std::vector<std::string> refused;
    auto one = [&](const char* key, const pmt::pmt_t& value) {
        if (!apply(key, value))
            refused.push_back(key);
    };
    one("rate", pmt::from_double(d_set.rate));
    if (d_set.bandwidth > 0)
        one("bandwidth", pmt::from_double(d_set.bandwidth));
    one("ppm", pmt::from_double(d_set.ppm));
    one("freq", pmt::from_double(d_set.freq));
    if (!d_set.antenna.empty())
        one("antenna", pmt::mp(d_set.antenna));
    if (d_dev->hasGainMode(SOAPY_SDR_RX, d_channel))
        one("agc", pmt::from_bool(d_set.agc));
    if (!d_set.agc)
        one("gain", pmt::from_double(d_set.gain));
    return refused;
}

void sdr_source_impl::read_back()
{
    // What the radio has, not what was asked: a refused or rounded value never reaches a tag or a status.
    if (driver_corrects())
        d_set.ppm = d_dev->getFrequencyCorrection(SOAPY_SDR_RX, d_channel);
    d_set.freq = d_dev->getFrequency(SOAPY_SDR_RX, d_channel) * (driver_corrects() ? 1.0 : 1.0 + d_set.ppm * 1e-6);
    d_set.rate = d_dev->getSampleRate(SOAPY_SDR_RX, d_channel);
    d_set.gain = d_dev->getGain(SOAPY_SDR_RX, d_channel);
    if (d_dev->hasGainMode(SOAPY_SDR_RX, d_channel))
        d_set.agc = d_dev->getGainMode(SOAPY_SDR_RX, d_channel);
}

void sdr_source_impl::refuse_open()
{
    // The radio refused a setting of the `open` command (reported as an error each): nothing streams,
    // and the settings are those from before the command.
    close_device();
    d_set = d_before_open;
    d_open_keys.clear();
    d_open_pending = false;
    d_state = state_t::closed;
    d_logger->warn("did not open device '{}': a setting of the open command was refused", d_args);
    publish(with_open_seq(status_dict("refused", { { "device", pmt::mp(d_args) } })));
}

void sdr_source_impl::lose_device(const std::string& reason)
{
    d_disconnects++;
    report_overflows(monotonic_s(), true);
    close_device();
    const char* action = d_stop_on_disconnect ? "stop" : "reconnect";
    d_logger->error("device '{}' disconnected: {} ({})", d_args, reason, action);
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

bool sdr_source_impl::driver_corrects() const
{
    return d_dev && d_dev->hasFrequencyCorrection(SOAPY_SDR_RX, d_channel);
}

double sdr_source_impl::tune(double freq)
{
    // A driver without its own correction: a crystal d_set.ppm fast puts the radio at
    // tuned * (1 + ppm / 1e6), so it is tuned that much lower.
    const double scale = driver_corrects() ? 1.0 : 1.0 + d_set.ppm * 1e-6;
    d_dev->setFrequency(SOAPY_SDR_RX, d_channel, freq / scale);
    return d_dev->getFrequency(SOAPY_SDR_RX, d_channel) * scale;
}

bool sdr_source_impl::write_device_settings(const device_settings& which)
{
    // Like the block's other settings, one the radio refuses is reported and the radio streams without it.
    const SoapySDR::ArgInfoList info = which.empty() ? SoapySDR::ArgInfoList{} : d_dev->getSettingInfo();
    pmt::pmt_t read_back = pmt::is_null(d_settings_read_back) ? pmt::make_dict() : d_settings_read_back;
    bool all_taken = true;
    for (const auto& [key, value] : which) {
        std::string problem = setting_problem(key, value, info);
        if (problem.empty()) {
            try {
                d_dev->writeSetting(key, value);
                read_back = pmt::dict_add(read_back, pmt::mp(key), pmt::mp(d_dev->readSetting(key)));
            } catch (const std::exception& e) {
                problem = "device setting '" + key + "': the radio refused '" + value + "': " + e.what();
            }
        }
        if (!problem.empty()) {
            report_error("device_settings", pmt::mp(key + "=" + value), problem);
            all_taken = false;
        }
    }
    if (!which.empty())
        d_settings_read_back = read_back;
    return all_taken;
}

bool sdr_source_impl::change_device_settings(const pmt::pmt_t& value)
{
    if (!pmt::is_symbol(value)) {
        report_error("device_settings", value, "cmd device_settings: expected a string such as 'biastee=true', got " +
                                                   pmt::write_string(value));
        return false;
    }
    device_settings given;
    try {
        given = parse_device_settings(pmt::symbol_to_string(value));
    } catch (const std::invalid_argument& e) {
        const std::string why = e.what(); // "sdr_source: ...", as the constructor says it
        report_error("device_settings", value, "cmd device_settings: " + why.substr(why.find(": ") + 2));
        return false;
    }
    if (d_dev && !write_device_settings(given))
        return false; // what the radio took stays taken (it has it), and is written again after a reopen
    for (const auto& kv : given) {
        auto it = std::find_if(d_device_settings.begin(), d_device_settings.end(), [&](const auto& old) {
            return old.first == kv.first;
        });
        if (it == d_device_settings.end())
            d_device_settings.push_back(kv);
        else
            it->second = kv.second;
    }
    return true;
}

bool sdr_source_impl::number_arg(const std::string& key, const pmt::pmt_t& value, double& out)
{
    if (!pmt::is_real(value) && !pmt::is_integer(value)) {
        report_error(key, value, "cmd " + key + ": expected a number, got " + pmt::write_string(value));
        return false;
    }
    out = pmt::to_double(value);
    if (!std::isfinite(out)) {
        report_error(key, value, "cmd " + key + ": value must be finite, got " + format_number(out));
        return false;
    }
    return true;
}

bool sdr_source_impl::check_range(const std::string& key,
                                  double v,
                                  const SoapySDR::RangeList& ranges,
                                  const char* unit)
{
    if (ranges.empty())
        return true;
    for (const auto& r : ranges)
        if (v >= r.minimum() && v <= r.maximum())
            return true;
    const auto [lo, hi] = overall_range(ranges);
    report_error(key,
                 pmt::from_double(v),
                 "cmd " + key + ": " + format_number(v) + " " + unit + " is outside the device range " +
                     format_number(lo) + " to " + format_number(hi) + " " + unit);
    return false;
}

// Applies one setting; when no device is open it is only remembered for the next open.
bool sdr_source_impl::apply(const std::string& key, const pmt::pmt_t& value)
{
    const int rx = SOAPY_SDR_RX;
    const size_t ch = d_channel;
    double v = 0.0;
    try {
        if (key == "freq" || key == "rate" || key == "gain" || key == "bandwidth") {
            if (!number_arg(key, value, v))
                return false;
            if (key == "freq") {
                if (d_dev && !check_range(key, v, d_dev->getFrequencyRange(rx, ch), "Hz"))
                    return false;
                if (d_dev)
                    v = tune(v);
                d_set.freq = v;
            } else if (key == "rate") {
                if (d_dev && !check_range(key, v, d_dev->getSampleRateRange(rx, ch), "S/s"))
                    return false;
                if (d_dev) {
                    d_dev->setSampleRate(rx, ch, v);
                    v = d_dev->getSampleRate(rx, ch);
                }
                d_set.rate = v;
                d_time_tag_pending = true;
            } else if (key == "gain") {
                if (d_dev) {
                    const auto r = d_dev->getGainRange(rx, ch);
                    if (!check_range(key, v, { SoapySDR::Range(r.minimum(), r.maximum()) }, "dB"))
                        return false;
                    d_dev->setGain(rx, ch, v);
                    v = d_dev->getGain(rx, ch);
                }
                d_set.gain = v;
            } else {
                if (d_dev && v > 0 && !check_range(key, v, d_dev->getBandwidthRange(rx, ch), "Hz"))
                    return false;
                if (d_dev && v > 0)
                    d_dev->setBandwidth(rx, ch, v);
                d_set.bandwidth = v;
            }
        } else if (key == "ppm") {
            if (!number_arg(key, value, v))
                return false;
            if (std::abs(v) > max_ppm) {
                report_error(key, value, "cmd ppm: " + format_number(v) + " is outside -1000 to 1000 ppm");
                return false;
            }
            d_set.ppm = v;
            if (d_dev) {
                if (driver_corrects()) {
                    d_dev->setFrequencyCorrection(rx, ch, v);
                    d_set.ppm = d_dev->getFrequencyCorrection(rx, ch);
                }
                if (d_state == state_t::streaming) // while opening, the frequency is applied next
                    d_set.freq = tune(d_set.freq);
            }
        } else if (key == "device_settings") {
            if (!change_device_settings(value))
                return false;
        } else if (key == "antenna") {
            if (!pmt::is_symbol(value)) {
                report_error(key, value, "cmd antenna: expected a string, got " + pmt::write_string(value));
                return false;
            }
            const std::string name = pmt::symbol_to_string(value);
            if (d_dev) {
                const auto names = d_dev->listAntennas(rx, ch);
                if (std::find(names.begin(), names.end(), name) == names.end()) {
                    std::string all;
                    for (const auto& n : names)
                        all += (all.empty() ? "" : ", ") + n;
                    report_error(key, value, "cmd antenna: '" + name + "' is not one of " + all);
                    return false;
                }
                d_dev->setAntenna(rx, ch, name);
            }
            d_set.antenna = name;
        } else if (key == "agc") {
            if (!pmt::is_bool(value) && !pmt::is_integer(value)) {
                report_error(key, value, "cmd agc: expected true or false, got " + pmt::write_string(value));
                return false;
            }
            const bool on = pmt::is_bool(value) ? pmt::to_bool(value) : pmt::to_long(value) != 0;
            if (d_dev) {
                if (!d_dev->hasGainMode(rx, ch)) {
                    if (on) {
                        report_error(key, value, "cmd agc: this device has no automatic gain");
                        return false;
                    }
                } else {
                    d_dev->setGainMode(rx, ch, on);
                    if (on) // the device now picks the gain; manual gain stays as asked
                        d_set.gain = d_dev->getGain(rx, ch);
                }
            }
            d_set.agc = on;
        } else {
            report_error(key, value, "cmd: unknown key '" + key + "' (known: " + known_keys + ")");
            return false;
        }
    } catch (const std::exception& e) {
        report_error(key, value, "cmd " + key + ": the device refused " + pmt::write_string(value) + ": " + e.what());
        return false;
    }
    d_tags_pending = true;
    return true;
}

void sdr_source_impl::handle_cmd(const pmt::pmt_t& raw)
{
    std::unique_lock<std::mutex> lock(d_mutex);
    try {
        apply_cmd(raw);
    } catch (const std::exception& e) { // never out of a handler: that would end the block's thread
        report_error("cmd", raw, std::string("cmd: not handled: ") + e.what());
    }
}

void sdr_source_impl::apply_cmd(const pmt::pmt_t& raw)
{
    pmt::pmt_t msg = raw;
    if (pmt::is_pair(msg) && !pmt::is_dict(msg) && pmt::is_symbol(pmt::car(msg)))
        msg = pmt::dict_add(pmt::make_dict(), pmt::car(msg), pmt::cdr(msg)); // ("freq" . 1e8) style
    if (!pmt::is_dict(msg)) {
        report_error("cmd", raw, "cmd: expected a dict such as {freq: 100e6}, got " + pmt::write_string(raw));
        return;
    }

    const pmt::pmt_t chan = pmt::dict_ref(msg, pmt::mp("chan"), pmt::PMT_NIL);
    if (chan != pmt::PMT_NIL && (!pmt::is_integer(chan) || size_t(pmt::to_long(chan)) != d_channel)) {
        report_error("chan", chan, "cmd chan: this source streams channel " + std::to_string(d_channel) +
                                       ", not " + pmt::write_string(chan) + "; command ignored");
        return;
    }

    // close, then open, then settings: "open X with these settings" is one message, all or nothing.
    if (pmt::dict_has_key(msg, pmt::mp("close"))) {
        close_device();
        d_open_keys.clear();
        d_open_pending = false;
        d_state = state_t::closed;
        d_logger->info("device closed by command");
        publish(status_dict("closed", { { "device", pmt::mp(d_args) } }));
    }
    const pmt::pmt_t open = pmt::dict_ref(msg, pmt::mp("open"), pmt::PMT_NIL);
    bool open_requested = false;
    if (open != pmt::PMT_NIL) {
        if (!pmt::is_symbol(open) || pmt::symbol_to_string(open).empty()) {
            report_error("open", open, "cmd open: expected device args such as 'driver=riasim', got " +
                                           pmt::write_string(open));
        } else {
            close_device();
            d_args = pmt::symbol_to_string(open);
            d_ever_opened = false;
            d_open_failure_reported = false;
            d_before_open = d_set;
            d_open_keys.clear();
            d_open_seq = pmt::dict_ref(msg, pmt::mp("seq"), pmt::PMT_NIL);
            d_open_pending = true;
            open_requested = true;
        }
    }

    bool changed = false, all_taken = true;
    pmt::pmt_t items = pmt::dict_items(msg);
    for (size_t i = 0; i < pmt::length(items); i++) {
        const pmt::pmt_t item = pmt::nth(i, items);
        const pmt::pmt_t name = pmt::car(item);
        const std::string key = pmt::is_symbol(name) ? pmt::symbol_to_string(name) : pmt::write_string(name);
        if (key == "open" || key == "close" || key == "chan" || key == "seq")
            continue;
        const bool taken = apply(key, pmt::cdr(item));
        changed |= taken;
        all_taken &= taken;
        if (open_requested)
            d_open_keys.push_back(key);
    }

    if (open_requested) {
        if (!all_taken) { // a bad value or key: the device is not even tried
            refuse_open();
            return;
        }
        d_state = state_t::opening;
        switch (try_open()) {
        case open_result::opened:
            break;
        case open_result::refused:
            refuse_open();
            break;
        case open_result::failed: // not there (yet): tried again every reopen_interval, with these settings
            d_state = state_t::disconnected;
            d_next_open_s = monotonic_s() + d_reopen_interval;
            break;
        }
    } else if (changed && d_dev) {
        publish(settings_fields(status_dict("settings", {})));
    }
}

// ---------------------------------------------------------------- streaming

void sdr_source_impl::add_change_tags(uint64_t offset, int flags, long long time_ns)
{
    if (d_tags_pending) {
        add_item_tag(0, offset, tag_freq, pmt::from_double(d_set.freq));
        add_item_tag(0, offset, tag_rate, pmt::from_double(d_set.rate));
        add_item_tag(0, offset, tag_gain, pmt::from_double(d_set.gain));
        d_tags_pending = false;
        d_time_tag_pending = true;
    }
    if (d_time_tag_pending) {
        long long ns = time_ns;
        if (!(flags & SOAPY_SDR_HAS_TIME))
            ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
        const uint64_t secs = uint64_t(ns / 1000000000LL);
        const double frac = double(ns % 1000000000LL) / 1e9;
        add_item_tag(0, offset, tag_time, pmt::make_tuple(pmt::from_uint64(secs), pmt::from_double(frac)));
        d_time_tag_pending = false;
    }
}

void sdr_source_impl::report_overflows(double now, bool force)
{
    if (d_overflows_unreported == 0 || (!force && now - d_last_overflow_report_s < 1.0))
        return;
    d_logger->warn("{} overflow(s) in the last {:.1f} s ({} in all)",
                   d_overflows_unreported,
                   std::min(now - d_last_overflow_report_s, 999.0),
                   d_overflows);
    publish(status_dict("overflow",
                        { { "count", pmt::from_uint64(d_overflows_unreported) },
                          { "total", pmt::from_uint64(d_overflows) } }));
    d_overflows_unreported = 0;
    d_last_overflow_report_s = now;
}

int sdr_source_impl::work(int noutput_items,
                          gr_vector_const_void_star&,
                          gr_vector_void_star& output_items)
{
    std::unique_lock<std::mutex> lock(d_mutex);
    const double now = monotonic_s();
    report_overflows(now, false);

    switch (d_state) {
    case state_t::stopped:
        return WORK_DONE;
    case state_t::closed:
        idle_wait(idle_poll_s, lock);
        return 0;
    case state_t::opening:
    case state_t::disconnected: {
        const open_result result = now >= d_next_open_s ? try_open() : open_result::failed;
        if (result == open_result::refused) {
            refuse_open();
            return 0;
        }
        if (result == open_result::failed && now >= d_next_open_s) {
            if (d_stop_on_disconnect) {
                d_state = state_t::stopped;
                publish(status_dict("stopped", { { "reason", pmt::mp("cannot open device '" + d_args + "'") } }));
                return WORK_DONE;
            }
            d_state = state_t::disconnected;
            d_next_open_s = now + d_reopen_interval;
        }
        if (d_state != state_t::streaming) {
            idle_wait(std::min(idle_poll_s * 2, d_next_open_s - now), lock);
            return 0;
        }
        break;
    }
    case state_t::streaming:
        break;
    }

    void* buffs[] = { output_items[0] };
    int flags = 0;
    long long time_ns = 0;
    int ret;
    std::string failure;
    try {
        ret = d_dev->readStream(d_stream, buffs, size_t(noutput_items), flags, time_ns, read_timeout_us);
    } catch (const std::exception& e) {
        failure = e.what();
        ret = SOAPY_SDR_STREAM_ERROR;
    }
    const double after = monotonic_s();
    const read_verdict verdict =
        failure.empty() ? d_classifier.on_code(ret, after) : d_classifier.on_exception(failure, after);

    switch (verdict) {
    case read_verdict::samples:
        if (d_awaiting_first_samples) {
            d_awaiting_first_samples = false;
            publish(with_open_seq(settings_fields(status_dict("streaming", {}))));
        }
        add_change_tags(nitems_written(0), flags, time_ns);
        return ret;
    case read_verdict::overflow:
        d_overflows++;
        d_overflows_unreported++;
        d_time_tag_pending = true;
        report_overflows(after, false);
        return 0;
    case read_verdict::disconnected:
        lose_device(d_classifier.reason());
        return d_state == state_t::stopped ? WORK_DONE : 0;
    case read_verdict::transient:
        if (!failure.empty() && !d_unknown_error_logged) {
            d_unknown_error_logged = true;
            d_logger->warn("read error (the radio counts as gone if no samples follow): {}", failure);
        }
        if (ret != SOAPY_SDR_TIMEOUT) // an error that returned at once: don't spin on it
            idle_wait(fast_error_backoff_s, lock);
        return 0;
    }
    return 0;
}

} // namespace ria
} // namespace gr
