#include "soapy_life_cycle.h"
#include "block_args.h"
#include "monotonic_clock.h"
#include "soapy_ranges.h"
#include "status_message.h"

#include <SoapySDR/Errors.hpp>
#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace gr {
namespace ria {

namespace {
constexpr double idle_poll_s = 0.05;

std::string joined(const std::vector<std::string>& names)
{
    std::string all;
    for (const auto& n : names)
        all += (all.empty() ? "" : ", ") + n;
    return all;
}
} // namespace

soapy_life_cycle::soapy_life_cycle(identity id,
                                   const gr::logger_ptr& logger,
                                   std::string args,
                                   const std::string& on_disconnect,
                                   double reopen_interval,
                                   double disconnect_timeout)
    : d_id(id),
      d_log(logger),
      d_args(std::move(args)),
      d_stop_on_disconnect(require_choice(std::string(id.block) + ": on_disconnect",
                                          on_disconnect,
                                          { "reconnect", "stop" }) == "stop"),
      d_reopen_interval(require_number(
          std::string(id.block) + ": reopen_interval", reopen_interval, reopen_interval > 0, "> 0 seconds")),
      d_classifier(require_number(std::string(id.block) + ": disconnect_timeout",
                                  disconnect_timeout,
                                  disconnect_timeout > 0,
                                  "> 0 seconds"))
{
}

std::string soapy_life_cycle::state_name() const
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

void soapy_life_cycle::begin()
{
    std::lock_guard<std::mutex> lock(d_mutex);
    d_stopping = false;
    d_state = d_args.empty() ? state_t::closed : state_t::opening;
    d_next_open_s = 0.0;
}

void soapy_life_cycle::stop_waiting()
{
    {
        std::lock_guard<std::mutex> lock(d_mutex);
        d_stopping = true;
    }
    d_wake.notify_all();
}

void soapy_life_cycle::idle_wait(double seconds, std::unique_lock<std::mutex>& lock)
{
    if (seconds > 0)
        d_wake.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return d_stopping; });
}

// ---------------------------------------------------------------- the radio

void soapy_life_cycle::close_device()
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
    on_closed();
}

soapy_life_cycle::open_result soapy_life_cycle::try_open()
{
    d_refusal = open_forbidden();
    if (!d_refusal.empty()) {
        d_open_keys.clear();
        return open_result::refused;
    }
    const bool reopening = d_ever_opened && d_state == state_t::disconnected;
    try {
        d_dev = SoapySDR::Device::make(SoapySDR::KwargsFromString(d_args));
        const size_t channels = d_dev->getNumChannels(d_id.direction);
        if (d_id.channel >= channels)
            throw std::invalid_argument("channel " + std::to_string(d_id.channel) +
                                        " does not exist (the device has " + std::to_string(channels) +
                                        (d_id.direction == SOAPY_SDR_TX ? " TX" : " RX") + " channels)");
        prepare_device();
        // Each refusal is reported; one of a setting the `open` command carried refuses the open.
        std::vector<std::string> refused;
        for (const auto& key : apply_all_settings())
            if (std::find(d_open_keys.begin(), d_open_keys.end(), key) != d_open_keys.end())
                refused.push_back(key);
        if (!refused.empty()) {
            close_device();
            d_refusal = "the radio refused a setting of the open command: " + joined(refused);
            return open_result::refused;
        }
        read_back();
        d_refusal = check_device();
        if (!d_refusal.empty()) {
            report_error("open", pmt::mp(d_args), "cmd open: " + d_refusal);
            close_device();
            return open_result::refused;
        }
        d_stream = d_dev->setupStream(d_id.direction, d_id.stream_format, { d_id.channel });
        const int rc = d_dev->activateStream(d_stream);
        if (rc != 0)
            throw std::runtime_error(std::string("activateStream failed: ") + SoapySDR::errToStr(rc));
    } catch (const std::exception& e) {
        close_device();
        if (!d_open_failure_reported) {
            d_open_failure_reported = true;
            const std::string msg = "cannot open device '" + d_args + "': " + e.what();
            d_log->warn("{}; retrying every {} s", msg, d_reopen_interval);
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
    d_classifier.reset(monotonic_s());
    on_streaming(reopening);
    publish(with_open_seq(settings_fields(opened_status(reopening))));
    if (reopening)
        d_log->info("{} '{}' is back; streaming again", d_id.device, d_args);
    else
        d_log->info("opened {} '{}'", d_id.device, d_args);
    d_ever_opened = true;
    return open_result::opened;
}

pmt::pmt_t soapy_life_cycle::opened_status(bool reopening) const
{
    const int dir = d_id.direction;
    const size_t ch = d_id.channel;
    auto span = [](const SoapySDR::RangeList& r) {
        if (r.empty())
            return pmt::PMT_NIL;
        const auto [lo, hi] = overall_range(r);
        return range_pmt(lo, hi);
    };
    const auto gain_range = d_dev->getGainRange(dir, ch);
    const auto antenna_names = d_dev->listAntennas(dir, ch);
    pmt::pmt_t antennas = pmt::make_vector(antenna_names.size(), pmt::PMT_NIL);
    for (size_t i = 0; i < antenna_names.size(); i++)
        pmt::vector_set(antennas, i, pmt::mp(antenna_names[i]));
    return opened_fields(status_dict(reopening ? "reconnected" : "opened",
                                     { { "driver", pmt::mp(d_dev->getDriverKey()) },
                                       { "hardware", pmt::mp(d_dev->getHardwareKey()) },
                                       { "freq_range", span(d_dev->getFrequencyRange(dir, ch)) },
                                       { "rate_range", span(d_dev->getSampleRateRange(dir, ch)) },
                                       { "bandwidth_range", span(d_dev->getBandwidthRange(dir, ch)) },
                                       { "gain_range", range_pmt(gain_range.minimum(), gain_range.maximum()) },
                                       { "antennas", antennas } }));
}

void soapy_life_cycle::refuse_open(const std::string& message)
{
    // Nothing streams, and an `open` command's settings go with it.
    close_device();
    if (d_open_pending)
        d_set = d_before_open;
    d_open_keys.clear();
    d_open_pending = false;
    d_state = state_t::closed;
    d_log->warn("did not open {} '{}': {}", d_id.device, d_args, message);
    publish(with_open_seq(
        status_dict("refused", { { "device", pmt::mp(d_args) }, { "message", pmt::mp(message) } })));
}

void soapy_life_cycle::lose_device(const std::string& reason)
{
    d_disconnects++;
    on_lost(reason);
    close_device();
    const char* action = d_stop_on_disconnect ? "stop" : "reconnect";
    d_log->error("{} '{}' disconnected: {} ({})", d_id.device, d_args, reason, action);
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

soapy_life_cycle::next_step soapy_life_cycle::open_or_wait(double now, std::unique_lock<std::mutex>& lock)
{
    switch (d_state) {
    case state_t::stopped:
        return next_step::done;
    case state_t::closed:
        idle_wait(idle_poll_s, lock);
        return next_step::idle;
    case state_t::opening:
    case state_t::disconnected: {
        const open_result result = now >= d_next_open_s ? try_open() : open_result::failed;
        if (result == open_result::refused) {
            refuse_open(d_refusal);
            return next_step::idle;
        }
        if (result == open_result::failed && now >= d_next_open_s) {
            if (d_stop_on_disconnect) {
                d_state = state_t::stopped;
                publish(status_dict("stopped", { { "reason", pmt::mp("cannot open device '" + d_args + "'") } }));
                return next_step::done;
            }
            d_state = state_t::disconnected;
            d_next_open_s = now + d_reopen_interval;
        }
        if (d_state != state_t::streaming) {
            idle_wait(std::min(idle_poll_s * 2, d_next_open_s - now), lock);
            return next_step::idle;
        }
        return next_step::stream;
    }
    case state_t::streaming:
        return next_step::stream;
    }
    return next_step::idle;
}

// ---------------------------------------------------------------- commands

void soapy_life_cycle::report_error(const std::string& key, const pmt::pmt_t& value, const std::string& message)
{
    d_log->warn("{}", message);
    pmt::pmt_t error = error_status(key, value, message);
    publish(d_open_pending ? with_open_seq(error) : error);
}

void soapy_life_cycle::refuse(const std::string& label, const pmt::pmt_t& value, const std::string& why)
{
    report_error(label, value, origin(label) + label + ": " + why);
}

bool soapy_life_cycle::number_arg(const pmt::pmt_t& value, const std::string& label, double& out)
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

bool soapy_life_cycle::in_ranges(const std::string& label,
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
    refuse(label,
           pmt::from_double(v),
           format_number(v) + " " + unit + " is outside the device range " + format_number(lo) + " to " +
               format_number(hi) + " " + unit);
    return false;
}

bool soapy_life_cycle::gain_in_range(const std::string& label, double v)
{
    const auto r = d_dev->getGainRange(d_id.direction, d_id.channel);
    return in_ranges(label, v, { SoapySDR::Range(r.minimum(), r.maximum()) }, "dB");
}

bool soapy_life_cycle::antenna_arg(const pmt::pmt_t& value, const std::string& label)
{
    if (!pmt::is_symbol(value)) {
        refuse(label, value, "expected a string, got " + pmt::write_string(value));
        return false;
    }
    const std::string name = pmt::symbol_to_string(value);
    if (d_dev) {
        const auto names = d_dev->listAntennas(d_id.direction, d_id.channel);
        if (std::find(names.begin(), names.end(), name) == names.end()) {
            refuse(label, value, "'" + name + "' is not one of " + joined(names));
            return false;
        }
        d_dev->setAntenna(d_id.direction, d_id.channel, name);
    }
    d_set.antenna = name;
    return true;
}

pmt::pmt_t soapy_life_cycle::channel_fields(pmt::pmt_t d) const
{
    // With a radio open, the frequency, rate and gain are what it reported back; the filter and the
    // antenna are asked for here (the settings may say 0 and "": the driver's choice).
    double bandwidth = d_set.bandwidth;
    std::string antenna = d_set.antenna;
    if (d_dev) {
        try {
            bandwidth = d_dev->getBandwidth(d_id.direction, d_id.channel);
            antenna = d_dev->getAntenna(d_id.direction, d_id.channel);
        } catch (const std::exception&) { // a radio going away: the next read or write says so
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

pmt::pmt_t soapy_life_cycle::with_open_seq(pmt::pmt_t d) const
{
    return pmt::is_null(d_open_seq) ? d : with_field(d, "seq", d_open_seq);
}

void soapy_life_cycle::handle_cmd(const pmt::pmt_t& raw)
{
    std::unique_lock<std::mutex> lock(d_mutex);
    try {
        apply_cmd(raw);
    } catch (const std::exception& e) { // never out of a handler: that would end the block's thread
        report_error("cmd", raw, std::string("cmd: not handled: ") + e.what());
    }
}

void soapy_life_cycle::apply_cmd(const pmt::pmt_t& raw)
{
    pmt::pmt_t msg = raw;
    if (pmt::is_pair(msg) && !pmt::is_dict(msg) && pmt::is_symbol(pmt::car(msg)))
        msg = pmt::dict_add(pmt::make_dict(), pmt::car(msg), pmt::cdr(msg)); // ("freq" . 1e8) style
    if (!pmt::is_dict(msg)) {
        report_error("cmd", raw, "cmd: expected a dict such as {freq: 100e6}, got " + pmt::write_string(raw));
        return;
    }
    const pmt::pmt_t chan = pmt::dict_ref(msg, pmt::mp("chan"), pmt::PMT_NIL);
    if (chan != pmt::PMT_NIL && (!pmt::is_integer(chan) || pmt::to_long(chan) != long(d_id.channel))) {
        report_error("chan",
                     chan,
                     std::string("cmd chan: this ") + d_id.block + " uses channel " + std::to_string(d_id.channel) +
                         ", not " + pmt::write_string(chan) + "; command ignored");
        return;
    }

    // close, then open, then settings: "open X with these settings" is one message, all or nothing.
    if (pmt::dict_has_key(msg, pmt::mp("close"))) {
        on_close_command("closed");
        close_device();
        d_open_keys.clear();
        d_open_pending = false;
        d_state = state_t::closed;
        d_log->info("{} closed by command", d_id.device);
        publish(status_dict("closed", { { "device", pmt::mp(d_args) } }));
    }
    const pmt::pmt_t open = pmt::dict_ref(msg, pmt::mp("open"), pmt::PMT_NIL);
    bool open_requested = false;
    if (open != pmt::PMT_NIL) {
        if (!pmt::is_symbol(open) || pmt::symbol_to_string(open).empty()) {
            report_error("open", open, "cmd open: expected device args such as 'driver=riasim', got " +
                                           pmt::write_string(open));
        } else {
            on_close_command("reopened");
            close_device();
            d_args = pmt::symbol_to_string(open);
            d_ever_opened = false;
            d_open_failure_reported = false;
            d_before_open = d_set;
            d_open_keys.clear();
            d_open_seq = pmt::dict_ref(msg, pmt::mp("seq"), pmt::PMT_NIL);
            d_open_pending = true;
            open_requested = true;
            const std::string forbidden = open_forbidden();
            if (!forbidden.empty()) { // nothing else of this command is looked at
                refuse_open(forbidden);
                return;
            }
        }
    }

    bool changed = false;
    std::vector<std::string> refused;
    pmt::pmt_t items = pmt::dict_items(msg);
    for (size_t i = 0; i < pmt::length(items); i++) {
        const pmt::pmt_t item = pmt::nth(i, items);
        const pmt::pmt_t name = pmt::car(item);
        const std::string key = pmt::is_symbol(name) ? pmt::symbol_to_string(name) : pmt::write_string(name);
        if (key == "open" || key == "close" || key == "chan" || key == "seq")
            continue;
        const bool taken = apply(key, pmt::cdr(item));
        changed |= taken;
        if (!taken)
            refused.push_back(key);
        if (open_requested)
            d_open_keys.push_back(key);
    }

    if (open_requested) {
        if (!refused.empty()) { // a bad value or key: the radio is not even tried
            refuse_open("a setting of the open command was refused: " + joined(refused));
            return;
        }
        d_state = state_t::opening;
        switch (try_open()) {
        case open_result::opened:
            break;
        case open_result::refused:
            refuse_open(d_refusal);
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

} // namespace ria
} // namespace gr
