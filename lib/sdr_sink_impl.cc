#include "sdr_sink_impl.h"
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
      soapy_life_cycle({ "sdr_sink", "TX device", SOAPY_SDR_TX, tx_channel, SOAPY_SDR_CF32 },
                       d_logger,
                       device,
                       on_disconnect,
                       reopen_interval,
                       disconnect_timeout),
      d_locks(allow_tx, max_gain_db, max_duration_s, allowed_freq_ranges),
      d_bursts_required(require_choice("sdr_sink: burst_tags", burst_tags, { "optional", "required" }) == "required")
{
    auto require = [](const char* name, double value, bool ok, const char* rule) {
        return require_number(std::string("sdr_sink: ") + name, value, ok, rule);
    };
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
    stop_waiting();
    if (d_status_thread.joinable())
        d_status_thread.join();
    std::lock_guard<std::mutex> lock(d_mutex);
    close_device();
}

bool sdr_sink_impl::start()
{
    begin();
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
    stop_waiting();
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

std::string sdr_sink_impl::state() const { return state_name(); }

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

pmt::pmt_t sdr_sink_impl::settings_fields(pmt::pmt_t d) const { return channel_fields(d); }

// ---------------------------------------------------------------- settings

std::string sdr_sink_impl::origin(const std::string& label) const
{
    return d_setters.count(label) ? "cmd " : "tag ";
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
        if (!gain_in_range(label, v))
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
        refuse(label, value, "must be >= 0 (0: driver's choice), got " + format_number(v));
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
    return antenna_arg(value, label);
}

bool sdr_sink_impl::apply(const std::string& key, const pmt::pmt_t& value) { return apply(key, value, key); }

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
        refuse(label, value, "the device refused " + pmt::write_string(value) + ": " + e.what());
        return false;
    }
    d_broken.erase(key); // the setting a tag broke is good again
    return true;
}

// ---------------------------------------------------------------- device life cycle

void sdr_sink_impl::on_closed() { d_radio_burst = false; }

void sdr_sink_impl::on_close_command(const char* why) { end_radio_burst(why); }

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

std::string sdr_sink_impl::open_forbidden() const { return d_locks.check_open(); }

std::string sdr_sink_impl::check_device()
{
    // What the radio has must be inside the interlocks too, whatever it kept of what was refused.
    const std::string outside = d_locks.check_freq(d_set.freq) + d_locks.check_gain(d_set.gain);
    return outside.empty() ? outside : "the radio stays at " + outside;
}

void sdr_sink_impl::on_streaming(bool reopening)
{
    d_status_supported = true;
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
}

void sdr_sink_impl::on_lost(const std::string& reason)
{
    if (d_radio_burst)
        publish(status_dict("burst_end",
                            { { "samples", pmt::from_uint64(d_burst_written) }, { "reason", pmt::mp(reason) } }));
    report_summaries(monotonic_s(), true);
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
        switch (open_or_wait(now, lock)) {
        case next_step::done:
            return WORK_DONE;
        case next_step::idle: // the samples go nowhere, at a pace that does not spin
            return consume(in, noutput_items, false);
        case next_step::stream:
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
