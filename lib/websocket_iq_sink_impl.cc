#include "websocket_iq_sink_impl.h"

#include "block_args.h"
#include "monotonic_clock.h"
#include "pmt_json.h"
#include "wire.h"
#include <gnuradio/io_signature.h>
#include <algorithm>
#include <cmath>

namespace gr {
namespace ria {

using json = nlohmann::json;

namespace {

const char* VERSION = "0.1.0";
const pmt::pmt_t RX_FREQ = pmt::mp("rx_freq");
const pmt::pmt_t RX_RATE = pmt::mp("rx_rate");
const pmt::pmt_t RX_GAIN = pmt::mp("rx_gain");
constexpr double DRAIN_ON_STOP_S = 0.5;
constexpr double ROOM_WAIT_S = 0.1; // every wait in work() is short, so tb.stop() stays prompt
constexpr unsigned HISTORY = 1 << 16;
constexpr size_t MAX_BLOCK_STATS = 24; // figures another block may add to the heartbeat's stats

} // namespace

websocket_iq_sink::sptr websocket_iq_sink::make(const std::string& url,
                                                const std::string& token,
                                                const std::string& input_type,
                                                int64_t buffer_size,
                                                const std::string& sample_format,
                                                const std::string& overflow,
                                                double queue_seconds,
                                                double sample_rate,
                                                double heartbeat_interval,
                                                bool autostart,
                                                const std::string& app_id,
                                                const std::vector<std::string>& hardware_names,
                                                const std::string& ca_file,
                                                bool insecure,
                                                bool token_in_query,
                                                const std::string& agent_name,
                                                int bitrate)
{
    require_choice("input_type", input_type, { "complex", "float" });
    require_choice("overflow", overflow, { "drop", "block" });
    const bool audio = input_type == "float";
    const auto format = audio ? wire::parse_audio_format(sample_format) : wire::parse_format(sample_format);
    if (audio && sample_format != wire::format_name(format))
        gr::logger("ria_websocket_iq_sink")
            .warn("sample_format '{}' is an IQ format; float input sends it as '{}'", sample_format,
                  wire::format_name(format));
    if (bitrate < opus::MIN_BITRATE || bitrate > opus::MAX_BITRATE)
        throw std::invalid_argument("bitrate must be " + std::to_string(opus::MIN_BITRATE) + " to " +
                                    std::to_string(opus::MAX_BITRATE) + " bit/s, got " + std::to_string(bitrate));
    if (!(sample_rate >= 0) || !std::isfinite(sample_rate)) // (before any cast of it to int)
        throw std::invalid_argument("sample_rate must be >= 0 (0: unknown), got " + std::to_string(sample_rate));
    if (format == wire::sample_format::opus && sample_rate != std::floor(sample_rate))
        throw std::invalid_argument("opus needs a whole sample_rate, got " + std::to_string(sample_rate));
    // throws naming buffer_size (or, for opus, the rate or bitrate)
    frame_assembler check(buffer_size, format, 1, static_cast<int>(sample_rate), bitrate);
    if (!(queue_seconds > 0) || queue_seconds > 60)
        throw std::invalid_argument("queue_seconds must be > 0 and at most 60, got " + std::to_string(queue_seconds));
    if (autostart && app_id.empty())
        throw std::invalid_argument("autostart needs an app_id");
    const auto ts = transport_settings::checked(url, token, token_in_query, ca_file, insecure, heartbeat_interval);
    return gnuradio::make_block_sptr<websocket_iq_sink_impl>(ts,
                                                             input_type == "complex",
                                                             buffer_size,
                                                             format,
                                                             overflow == "drop",
                                                             queue_seconds,
                                                             sample_rate,
                                                             autostart ? json(app_id) : json(),
                                                             hardware_names,
                                                             agent_name,
                                                             bitrate);
}

websocket_iq_sink_impl::websocket_iq_sink_impl(const transport_settings& transport,
                                               bool complex_input,
                                               int64_t buffer_size,
                                               wire::sample_format format,
                                               bool drop,
                                               double queue_seconds,
                                               double sample_rate,
                                               const json& autostart_app,
                                               const std::vector<std::string>& hardware_names,
                                               const std::string& agent_name,
                                               int bitrate)
    : gr::sync_block("ria_websocket_iq_sink",
                     gr::io_signature::make(1, 1, complex_input ? sizeof(gr_complex) : sizeof(float)),
                     gr::io_signature::make(0, 0, 0)),
      d_settings(transport),
      d_values(complex_input ? 2 : 1),
      d_bitrate(bitrate),
      d_drop(drop),
      d_queue_seconds(queue_seconds),
      d_autostart_app(autostart_app),
      d_hardware(hardware_names),
      d_agent({ { "name", agent_name }, { "version", VERSION } }),
      d_ctrl_port(pmt::mp("ctrl")),
      d_assembler(make_assembler(format, buffer_size, sample_rate)),
      d_rate(sample_rate),
      d_started_at(monotonic_s())
{
    // GNU Radio sizes the buffer in front of a block from that block's history; a long one
    // makes each work() call carry many frames instead of 4096 samples, so the block threads
    // hand over far less often (at 1024-sample frames about 1.4x the throughput). work() skips
    // the HISTORY - 1 old samples at the start of its input.
    set_history(HISTORY);
    d_audio_rate = sample_rate;
    message_port_register_in(pmt::mp("cmd"));
    message_port_register_in(pmt::mp("to_hub"));
    message_port_register_out(d_ctrl_port);
    set_msg_handler(pmt::mp("cmd"), [this](const pmt::pmt_t& msg) { handle_cmd(msg); });
    set_msg_handler(pmt::mp("to_hub"), [this](const pmt::pmt_t& msg) { handle_to_hub(msg); });
}

websocket_iq_sink_impl::~websocket_iq_sink_impl() = default; // stop() has released the transport

// ------------------------------------------------------------------ life cycle

bool websocket_iq_sink_impl::start()
{
    // Never throws: an exception here would leave GNU Radio's start waiting forever.
    try {
        d_started_at = monotonic_s();
        d_samples_produced = 0; // the counters are the new transport's
        agent_transport::user me;
        me.heartbeat = [this] { return heartbeat(); };
        me.receiver = [this](const json& msg) { message_port_pub(d_ctrl_port, json_to_pmt(msg)); };
        int handle = -1;
        auto t = agent_transport::acquire(d_settings, std::move(me), handle);
        std::shared_ptr<agent_transport> previous;
        {
            std::lock_guard<std::mutex> lk(d_mutex);
            previous = std::move(d_transport); // destroyed below, outside the lock
            d_transport = t;
            d_transport_handle = handle;
        }
        previous.reset();
        update_queue_limit();
        if (!d_autostart_app.is_null())
            begin(d_autostart_app);
        else if (d_streaming)
            d_info_due = true; // a session that goes on after a restart of the flowgraph: describe it again
    } catch (const std::exception& e) {
        d_logger->error("cannot start the hub connection: {}", e.what());
    }
    return true;
}

bool websocket_iq_sink_impl::stop()
{
    // A finite stream (a file, a test vector) ends here: its tail goes out if the hub takes
    // it within the budget, and stop() returns within about a second whatever the network does.
    if (auto t = transport()) {
        if (d_streaming)
            cut();
        t->release(d_transport_handle, DRAIN_ON_STOP_S);
    }
    return true;
}

std::shared_ptr<agent_transport> websocket_iq_sink_impl::transport() const
{
    std::lock_guard<std::mutex> lk(d_mutex);
    return d_transport;
}

// ------------------------------------------------------------------ accessors

transport_counters websocket_iq_sink_impl::counters() const
{
    auto t = transport();
    return t ? t->counters() : transport_counters();
}

bool websocket_iq_sink_impl::connected() const
{
    auto t = transport();
    return t && t->connected();
}

std::string websocket_iq_sink_impl::last_error() const
{
    auto t = transport();
    return t ? t->last_error() : std::string();
}

size_t websocket_iq_sink_impl::queue_depth() const
{
    auto t = transport();
    return t ? t->queue_frames() : 0;
}

uint64_t websocket_iq_sink_impl::queue_samples() const
{
    auto t = transport();
    return t ? t->queue_samples() : 0;
}

std::string websocket_iq_sink_impl::app_id() const
{
    std::lock_guard<std::mutex> lk(d_mutex);
    return d_streaming && !d_app_id.is_null() ? d_app_id.dump() : std::string();
}

json websocket_iq_sink_impl::stats() const
{
    const auto c = counters();
    json s = { { "frames_sent", c.frames_sent },
               { "frames_dropped", c.frames_dropped },
               { "samples_dropped", c.samples_dropped },
               { "bytes_sent", c.bytes_sent },
               { "sdr_overflows", d_sdr_overflows.load() },
               { "reconnects", c.reconnects() },
               { "uptime_s", std::round((monotonic_s() - d_started_at) * 10) / 10 } };
    if (d_values == 1) {
        // The microphone's side of the voice counters (§8).
        const double rate = d_audio_rate.load();
        const double queued = static_cast<double>(queue_samples());
        s["audio_frames_sent"] = c.frames_sent;
        s["audio_frames_dropped"] = c.frames_dropped;
        s["mic_queue_ms"] = rate > 0 ? std::round(queued / rate * 1e4) / 10 : 0.0;
        if (c.write_latency_s >= 0) // absent until a frame was written
            s["mic_latency_ms"] = std::round(c.write_latency_s * 1e4) / 10;
    }
    return s;
}

json websocket_iq_sink_impl::heartbeat() const
{
    json app, fields;
    {
        std::lock_guard<std::mutex> lk(d_mutex);
        app = d_app_id;
        fields = d_heartbeat_fields;
    }
    json hb = wire::heartbeat(d_hardware, d_streaming, app, d_agent, stats());
    if (fields.is_null())
        return hb;
    if (fields.contains("stats")) {
        for (const auto& item : fields["stats"].items())
            hb["stats"].emplace(item.key(), item.value()); // this block's own counters keep their values
        fields.erase("stats");
    }
    hb.update(fields);
    return hb;
}

// ------------------------------------------------------------------ messages

void websocket_iq_sink_impl::report(const std::string& message)
{
    d_logger->warn("cmd: {}", message);
    if (auto t = transport())
        t->send_control(wire::error(d_app_id, message)); // (block thread: d_app_id is ours to read)
}

void websocket_iq_sink_impl::handle_to_hub(const pmt::pmt_t& msg)
{
    json value;
    try {
        value = pmt_to_json(msg);
    } catch (const std::exception& e) {
        d_logger->warn("to_hub: cannot turn {} into JSON: {}", pmt::write_string(msg).substr(0, 200), e.what());
        return;
    }
    if (!value.is_object() || !value.contains("type") || !value["type"].is_string()) {
        d_logger->warn("to_hub: expected a dict with a 'type', got {}", pmt::write_string(msg).substr(0, 200));
        return;
    }
    if (auto t = transport())
        t->send_control(std::move(value));
}

void websocket_iq_sink_impl::handle_cmd(const pmt::pmt_t& msg)
{
    try {
        json cmd = pmt_to_json(msg);
        if (!cmd.is_object()) {
            d_logger->warn("cmd: expected a dict, got {}", pmt::write_string(msg).substr(0, 200));
            return;
        }
        apply_cmd(cmd);
    } catch (const std::exception& e) {
        report(e.what());
    }
}

void websocket_iq_sink_impl::apply_cmd(const json& cmd)
{
    static const char* known[] = { "stream",      "app_id", "buffer_size",   "sample_format", "sample_rate",
                                   "center_frequency", "gain", "sdr_overflows", "heartbeat" };
    for (const auto& item : cmd.items())
        if (std::none_of(std::begin(known), std::end(known), [&](const char* k) { return item.key() == k; }))
            throw std::invalid_argument("unknown cmd key '" + item.key() + "'");
    if (cmd.contains("heartbeat"))
        set_heartbeat_fields(cmd["heartbeat"]);
    if (cmd.contains("sdr_overflows") && cmd["sdr_overflows"].is_number())
        d_sdr_overflows = cmd["sdr_overflows"].get<int64_t>();

    // Check everything first: a refused command changes nothing.
    auto format = d_assembler->format();
    int64_t size = static_cast<int64_t>(d_assembler->buffer_size());
    if (cmd.contains("sample_format")) {
        if (!cmd["sample_format"].is_string())
            throw std::invalid_argument("sample_format must be a string, got " + wire::encode(cmd["sample_format"]));
        const auto& name = cmd["sample_format"].get_ref<const std::string&>();
        format = d_values == 1 ? wire::parse_audio_format(name) : wire::parse_format(name);
    }
    if (cmd.contains("buffer_size")) {
        if (!cmd["buffer_size"].is_number_integer())
            throw std::invalid_argument("buffer_size must be an integer, got " + wire::encode(cmd["buffer_size"]));
        size = cmd["buffer_size"].get<int64_t>();
    }
    double rate = d_rate, freq = d_freq, gain = d_gain;
    if (cmd.contains("sample_rate"))
        rate = finite_number(cmd, "sample_rate");
    if (cmd.contains("center_frequency"))
        freq = finite_number(cmd, "center_frequency");
    if (cmd.contains("gain"))
        gain = finite_number(cmd, "gain");
    if (cmd.contains("stream") && !cmd["stream"].is_boolean())
        throw std::invalid_argument("stream must be true or false, got " + wire::encode(cmd["stream"]));
    std::unique_ptr<frame_assembler> next;
    const bool opus_rate = format == wire::sample_format::opus && rate != d_rate;
    if (format != d_assembler->format() || opus_rate ||
        (format != wire::sample_format::opus && size != static_cast<int64_t>(d_assembler->buffer_size())))
        next = make_assembler(format, size, rate); // throws naming what it cannot take

    if (next) {
        cut();
        d_assembler = std::move(next);
        d_info_due = true;
        update_queue_limit();
    }
    change_stream(rate, freq, gain);
    if (cmd.contains("stream")) {
        const bool on = cmd["stream"].get<bool>();
        if (on && !d_streaming) {
            const json& app = cmd.contains("app_id") ? cmd["app_id"] : d_app_id;
            begin(app.is_null() ? json("") : app);
        } else if (!on && d_streaming) {
            end();
        }
    } else if (cmd.contains("app_id")) {
        set_app_id(cmd["app_id"]);
    }
}

void websocket_iq_sink_impl::set_heartbeat_fields(const json& fields)
{
    // What another block of the agent reports (TX capabilities, the TX session, voice figures under
    // "stats"); the protocol's own fields stay this block's.
    static const char* allowed[] = { "capabilities",      "tx_enabled",             "tx_max_gain_db",
                                     "tx_max_duration_s", "tx_allowed_freq_ranges", "sessions",
                                     "stats" };
    if (!fields.is_object())
        throw std::invalid_argument("heartbeat must be a dict of heartbeat fields");
    for (const auto& item : fields.items())
        if (std::none_of(std::begin(allowed), std::end(allowed), [&](const char* k) { return item.key() == k; }))
            throw std::invalid_argument("heartbeat: field '" + item.key() + "' is not one a block may set");
    if (fields.contains("stats") && (!fields["stats"].is_object() || fields["stats"].size() > MAX_BLOCK_STATS))
        throw std::invalid_argument("heartbeat: stats must be a dict of at most " + std::to_string(MAX_BLOCK_STATS) +
                                    " figures");
    const bool only_stats = fields.size() == 1 && fields.contains("stats");
    {
        std::lock_guard<std::mutex> lk(d_mutex);
        for (const auto& item : fields.items())
            if (item.value().is_null() && item.key() == "sessions")
                d_heartbeat_fields.erase(item.key());
            else
                d_heartbeat_fields[item.key()] = item.value();
    }
    if (only_stats)
        return; // figures that change every second travel with the next heartbeat
    if (auto t = transport())
        t->send_heartbeat(); // the hub learns of the change now, not at the next interval
}

std::unique_ptr<frame_assembler>
websocket_iq_sink_impl::make_assembler(wire::sample_format f, int64_t size, double rate) const
{
    if (f == wire::sample_format::opus && rate != std::floor(rate))
        throw std::invalid_argument("opus needs a whole sample_rate, got " + std::to_string(rate));
    return std::make_unique<frame_assembler>(size, f, d_values, static_cast<int>(rate), d_bitrate);
}

void websocket_iq_sink_impl::change_stream(double rate, double freq, double gain)
{
    if (rate == d_rate && freq == d_freq && gain == d_gain)
        return;
    cut(); // the frame ends at the change
    if (d_assembler->format() == wire::sample_format::opus && rate != d_rate) {
        try {
            d_assembler = make_assembler(d_assembler->format(), 1, rate);
        } catch (const std::exception& e) {
            // An rx_rate tag Opus cannot take: keep the encoder and say so.
            d_logger->error("rx_rate {}: {}", rate, e.what());
            rate = d_rate;
        }
    }
    d_audio_rate = rate;
    d_rate = rate;
    d_freq = freq;
    d_gain = gain;
    d_info_due = true;
    update_queue_limit();
}

void websocket_iq_sink_impl::set_app_id(const json& app_id)
{
    // Written only on the block thread, which reads it without the lock; the lock is for the others.
    std::lock_guard<std::mutex> lk(d_mutex);
    d_app_id = app_id;
}

// ------------------------------------------------------------------ stream

void websocket_iq_sink_impl::update_queue_limit()
{
    auto t = transport();
    if (!t)
        return;
    const double rate = d_rate > 0 ? d_rate : 1e6;
    const auto limit = static_cast<uint64_t>(std::ceil(d_queue_seconds * rate));
    t->set_queue_limit(std::max<uint64_t>(limit, 2 * d_assembler->buffer_size()));
}

void websocket_iq_sink_impl::begin(const json& app_id)
{
    set_app_id(app_id);
    d_assembler->discard();
    d_sample_index = 0;
    d_info_due = true;
    d_streaming = true;
}

void websocket_iq_sink_impl::end()
{
    cut();
    d_streaming = false;
}

void websocket_iq_sink_impl::flush()
{
    auto t = transport();
    if (d_batch.empty() || !t) {
        d_batch.clear();
        return;
    }
    const json& app = d_app_id; // written only on this thread, so read without the lock
    if (d_info_due) {
        d_info_due = false;
        const auto f = d_assembler->format();
        t->send_in_order(wire::is_audio(f) ? wire::audio_stream_info(app, d_rate, f, d_sample_index,
                                                                     static_cast<int>(d_assembler->buffer_size()),
                                                                     d_bitrate)
                                           : wire::stream_info(app, d_rate, d_freq, d_gain, f, d_sample_index));
    }
    d_sample_index += t->send_frames(d_batch, d_sample_index, app, d_drop);
}

void websocket_iq_sink_impl::cut()
{
    frame f;
    if (d_assembler->cut(f) && d_streaming)
        d_batch.push_back(std::move(f));
    flush(); // whatever comes next (a change, a stream_info) goes after these frames
}

int websocket_iq_sink_impl::work(int noutput_items,
                                 gr_vector_const_void_star& input_items,
                                 gr_vector_void_star& output_items)
{
    const auto n = static_cast<uint64_t>(noutput_items);
    auto t = transport();
    if (!d_streaming || !t)
        return noutput_items;
    if (!d_drop && !t->wait_for_room(ROOM_WAIT_S))
        return 0; // lossless: no progress this time; the scheduler may stop us here
    d_samples_produced += n;
    const auto* in = static_cast<const float*>(input_items[0]) + (HISTORY - 1) * d_values;
    const uint64_t start = nitems_read(0);
    d_assembler->stamp(monotonic_s());

    std::vector<gr::tag_t> tags;
    get_tags_in_range(tags, 0, start, start + n);
    tags.erase(std::remove_if(tags.begin(),
                              tags.end(),
                              [](const gr::tag_t& tag) {
                                  return !(pmt::eqv(tag.key, RX_FREQ) || pmt::eqv(tag.key, RX_RATE) ||
                                           pmt::eqv(tag.key, RX_GAIN)) ||
                                         !(pmt::is_real(tag.value) || pmt::is_integer(tag.value));
                              }),
               tags.end());
    std::stable_sort(tags.begin(), tags.end(), [](const gr::tag_t& a, const gr::tag_t& b) {
        return a.offset < b.offset;
    });

    uint64_t pos = 0;
    size_t i = 0;
    while (i < tags.size()) {
        const uint64_t at = tags[i].offset - start;
        d_assembler->push(in + pos * d_values, at - pos, d_batch);
        double rate = d_rate, freq = d_freq, gain = d_gain;
        for (; i < tags.size() && tags[i].offset - start == at; i++) {
            const double v = pmt::to_double(tags[i].value);
            (pmt::eqv(tags[i].key, RX_FREQ) ? freq : pmt::eqv(tags[i].key, RX_RATE) ? rate : gain) = v;
        }
        change_stream(rate, freq, gain);
        pos = at;
    }
    d_assembler->push(in + pos * d_values, n - pos, d_batch);
    flush();
    return noutput_items;
}

} // namespace ria
} // namespace gr
