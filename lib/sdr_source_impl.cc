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
size_t output_item_size(const std::string& output_type)
{
    // sc16: complex int16, I then Q, as GRC's sc16 ports and gr-soapy's CS16 streams.
    return require_choice("sdr_source: output_type", output_type, { "fc32", "sc16" }) == "sc16"
               ? 2 * sizeof(int16_t)
               : sizeof(gr_complex);
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
      soapy_life_cycle(
          { "sdr_source", "device", SOAPY_SDR_RX, channel, output_type == "sc16" ? SOAPY_SDR_CS16 : SOAPY_SDR_CF32 },
                       d_logger,
                       device_args,
                       on_disconnect,
                       reopen_interval,
                       disconnect_timeout),
      d_sc16(output_type == "sc16"),
      d_device_settings(parse_device_settings(device_settings))
{
    auto require = [](const char* name, double value, bool ok, const char* rule) {
        return require_number(std::string("sdr_source: ") + name, value, ok, rule);
    };
    d_set = { require("sample_rate", sample_rate, sample_rate > 0, "> 0"),
              require("center_freq", center_freq, center_freq >= 0, ">= 0"),
              require("gain", gain, true, "a finite number"),
              require("bandwidth", bandwidth, bandwidth >= 0, ">= 0 (0: driver's choice)"),
              antenna,
              agc,
              require("ppm", ppm, std::abs(ppm) <= max_ppm, "within +-1000") };
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
    begin();
    return true;
}

bool sdr_source_impl::stop()
{
    stop_waiting();
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

std::string sdr_source_impl::state() const { return state_name(); }

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

pmt::pmt_t sdr_source_impl::settings_fields(pmt::pmt_t d) const
{
    d = channel_fields(d);
    d = with_field(d, "agc", pmt::from_bool(d_set.agc));
    d = with_field(d, "ppm", pmt::from_double(d_set.ppm));
    if (d_dev)
        d = with_field(d, "ppm_method", pmt::mp(driver_corrects() ? "driver" : "retune"));
    d = with_field(d, "output_type", pmt::mp(d_sc16 ? "sc16" : "fc32"));
    if (!pmt::is_null(d_settings_read_back))
        d = with_field(d, "device_settings", d_settings_read_back);
    return d;
}

// ---------------------------------------------------------------- device life cycle

void sdr_source_impl::prepare_device()
{
    // Driver settings first: some (direct sampling) change what the tuner can do.
    d_settings_read_back = pmt::PMT_NIL;
    write_device_settings(d_device_settings);
}

void sdr_source_impl::on_streaming(bool)
{
    d_awaiting_first_samples = true;
    d_tags_pending = true;
    d_time_tag_pending = true;
}

pmt::pmt_t sdr_source_impl::opened_fields(pmt::pmt_t d) const
{
    return with_field(d, "agc_supported", pmt::from_bool(d_dev->hasGainMode(SOAPY_SDR_RX, d_id.channel)));
}

void sdr_source_impl::on_lost(const std::string&) { report_overflows(monotonic_s(), true); }

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
    if (d_dev->hasGainMode(SOAPY_SDR_RX, d_id.channel))
        one("agc", pmt::from_bool(d_set.agc));
    if (!d_set.agc)
        one("gain", pmt::from_double(d_set.gain));
    return refused;
}

void sdr_source_impl::read_back()
{
    // What the radio has, not what was asked: a refused or rounded value never reaches a tag or a status.
    if (driver_corrects())
        d_set.ppm = d_dev->getFrequencyCorrection(SOAPY_SDR_RX, d_id.channel);
    d_set.freq = d_dev->getFrequency(SOAPY_SDR_RX, d_id.channel) * (driver_corrects() ? 1.0 : 1.0 + d_set.ppm * 1e-6);
    d_set.rate = d_dev->getSampleRate(SOAPY_SDR_RX, d_id.channel);
    d_set.gain = d_dev->getGain(SOAPY_SDR_RX, d_id.channel);
    if (d_dev->hasGainMode(SOAPY_SDR_RX, d_id.channel))
        d_set.agc = d_dev->getGainMode(SOAPY_SDR_RX, d_id.channel);
}

// ---------------------------------------------------------------- commands

bool sdr_source_impl::driver_corrects() const
{
    return d_dev && d_dev->hasFrequencyCorrection(SOAPY_SDR_RX, d_id.channel);
}

double sdr_source_impl::tune(double freq)
{
    // A driver without its own correction: a crystal d_set.ppm fast puts the radio at
    // tuned * (1 + ppm / 1e6), so it is tuned that much lower.
    const double scale = driver_corrects() ? 1.0 : 1.0 + d_set.ppm * 1e-6;
    d_dev->setFrequency(SOAPY_SDR_RX, d_id.channel, freq / scale);
    return d_dev->getFrequency(SOAPY_SDR_RX, d_id.channel) * scale;
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

// Applies one setting; when no device is open it is only remembered for the next open.
bool sdr_source_impl::apply(const std::string& key, const pmt::pmt_t& value)
{
    const int rx = SOAPY_SDR_RX;
    const size_t ch = d_id.channel;
    double v = 0.0;
    try {
        if (key == "freq" || key == "rate" || key == "gain" || key == "bandwidth") {
            if (!number_arg(value, key, v))
                return false;
            if (key == "freq") {
                if (d_dev && !in_ranges(key, v, d_dev->getFrequencyRange(rx, ch), "Hz"))
                    return false;
                if (d_dev)
                    v = tune(v);
                d_set.freq = v;
            } else if (key == "rate") {
                if (d_dev && !in_ranges(key, v, d_dev->getSampleRateRange(rx, ch), "S/s"))
                    return false;
                if (d_dev) {
                    d_dev->setSampleRate(rx, ch, v);
                    v = d_dev->getSampleRate(rx, ch);
                }
                d_set.rate = v;
                d_time_tag_pending = true;
            } else if (key == "gain") {
                if (d_dev) {
                    if (!gain_in_range(key, v))
                        return false;
                    d_dev->setGain(rx, ch, v);
                    v = d_dev->getGain(rx, ch);
                }
                d_set.gain = v;
            } else {
                if (d_dev && v > 0 && !in_ranges(key, v, d_dev->getBandwidthRange(rx, ch), "Hz"))
                    return false;
                if (d_dev && v > 0)
                    d_dev->setBandwidth(rx, ch, v);
                d_set.bandwidth = v;
            }
        } else if (key == "ppm") {
            if (!number_arg(value, key, v))
                return false;
            if (std::abs(v) > max_ppm) {
                refuse(key, value, format_number(v) + " is outside -1000 to 1000 ppm");
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
            if (!antenna_arg(value, key))
                return false;
        } else if (key == "agc") {
            if (!pmt::is_bool(value) && !pmt::is_integer(value)) {
                refuse(key, value, "expected true or false, got " + pmt::write_string(value));
                return false;
            }
            const bool on = pmt::is_bool(value) ? pmt::to_bool(value) : pmt::to_long(value) != 0;
            if (d_dev) {
                if (!d_dev->hasGainMode(rx, ch)) {
                    if (on) {
                        refuse(key, value, "this device has no automatic gain");
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
        refuse(key, value, "the device refused " + pmt::write_string(value) + ": " + e.what());
        return false;
    }
    d_tags_pending = true;
    return true;
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

    switch (open_or_wait(now, lock)) {
    case next_step::done:
        return WORK_DONE;
    case next_step::idle:
        return 0;
    case next_step::stream:
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
