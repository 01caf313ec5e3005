#include "websocket_source_impl.h"

#include "block_args.h"
#include "monotonic_clock.h"
#include "pmt_json.h"
#include "wire.h"
#include <gnuradio/io_signature.h>
#include <algorithm>
#include <cmath>
#include <cstring>

namespace gr {
namespace ria {

using json = nlohmann::json;

namespace {

const pmt::pmt_t TX_SOB = pmt::mp("tx_sob");
const pmt::pmt_t TX_EOB = pmt::mp("tx_eob");
constexpr double WAIT_S = 0.1;            // every wait in work() is short, so tb.stop() stays prompt
constexpr double PROGRESS_EVERY_S = 0.1;  // tx_progress while the session plays
constexpr double DEFAULT_RATE = 1e6;      // for the queue's size before a session names its rate
constexpr size_t MAX_REPEAT = 1 << 16;    // samples "repeat" keeps of the last piece
constexpr size_t DEFAULT_FILL = 1024;     // samples of zeros per call when nothing was played yet
constexpr double CONCEAL_S = 0.1;         // an audio underrun is concealed this long, then silence
constexpr double FRAME_S = 0.02;          // the unit of concealment (an Opus frame)
constexpr double IDLE_BUFFER_S = 0.04;    // audio: the most idle silence ahead of the speaker
constexpr double VOLUME_MIN_DB = -60, VOLUME_MAX_DB = 20;

//! The "_seq" of a tx_* message, as a cmd names it under `key`.
uint64_t sequence(const json& cmd, const char* key)
{
    const json& v = cmd.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
        throw std::invalid_argument(std::string(key) + " must be the \"_seq\" of a tx_* message, got " +
                                    wire::encode(v));
    return v.get<uint64_t>();
}

} // namespace

websocket_source::sptr websocket_source::make(const std::string& url,
                                              const std::string& token,
                                              const std::string& output_type,
                                              double queue_seconds,
                                              double sample_rate,
                                              double underrun_timeout,
                                              double heartbeat_interval,
                                              const std::string& ca_file,
                                              bool insecure,
                                              bool token_in_query,
                                              const std::string& idle_output)
{
    require_choice("output_type", output_type, { "complex", "float" });
    require_choice("idle_output", idle_output, { "auto", "silence", "nothing" });
    const bool idle_silence = idle_output == "silence" || (idle_output == "auto" && output_type == "float");
    if (!(queue_seconds > 0) || queue_seconds > 60)
        throw std::invalid_argument("queue_seconds must be > 0 and at most 60, got " + std::to_string(queue_seconds));
    if (!(sample_rate >= 0) || !std::isfinite(sample_rate))
        throw std::invalid_argument("sample_rate must be >= 0 (0: 1 MS/s until a session names one), got " +
                                    std::to_string(sample_rate));
    if (!(underrun_timeout > 0) || underrun_timeout > 10)
        throw std::invalid_argument("underrun_timeout must be > 0 and at most 10 s, got " +
                                    std::to_string(underrun_timeout));
    const auto ts = transport_settings::checked(url, token, token_in_query, ca_file, insecure, heartbeat_interval);
    return gnuradio::make_block_sptr<websocket_source_impl>(
        ts, output_type == "complex", queue_seconds, sample_rate, underrun_timeout, idle_silence);
}

websocket_source_impl::websocket_source_impl(const transport_settings& transport,
                                             bool complex_output,
                                             double queue_seconds,
                                             double sample_rate,
                                             double underrun_timeout,
                                             bool idle_silence)
    : gr::sync_block("ria_websocket_source",
                     gr::io_signature::make(0, 0, 0),
                     gr::io_signature::make(1, 1, complex_output ? sizeof(gr_complex) : sizeof(float))),
      d_settings(transport),
      d_values(complex_output ? 2 : 1),
      d_queue_seconds(queue_seconds),
      d_default_rate(sample_rate > 0 ? sample_rate : DEFAULT_RATE),
      d_underrun_timeout(underrun_timeout),
      d_audio(!complex_output),
      d_idle_silence(idle_silence),
      d_status_port(pmt::mp("status")),
      d_queue(d_values, static_cast<uint64_t>(std::ceil(queue_seconds * d_default_rate)))
{
    message_port_register_in(pmt::mp("cmd"));
    message_port_register_out(d_status_port);
    set_msg_handler(pmt::mp("cmd"), [this](const pmt::pmt_t& msg) { handle_cmd(msg); });
    if (d_audio && d_idle_silence && sample_rate > 0)
        // Idle silence fills the buffer ahead of the speaker; a session's first sample waits behind it.
        set_max_output_buffer(0, std::max<long>(1024, static_cast<long>(sample_rate * IDLE_BUFFER_S)));
    d_play_rate = d_default_rate;
}

websocket_source_impl::~websocket_source_impl() = default; // stop() has released the transport

// ------------------------------------------------------------------ life cycle

bool websocket_source_impl::start()
{
    // Never throws: an exception here would leave GNU Radio's start waiting forever.
    try {
        agent_transport::user me;
        me.receiver = [this](const json& msg) { on_hub(msg); };
        me.binary = [this](const void* data, size_t bytes) { return on_binary(data, bytes); };
        me.annotate = [this](json& hb) { annotate(hb); };
        me.connection_lost = [this] { d_queue.on_connection_lost(); };
        int handle = -1;
        auto t = agent_transport::acquire(d_settings, std::move(me), handle);
        std::shared_ptr<agent_transport> previous;
        {
            std::lock_guard<std::mutex> lk(d_mutex);
            previous = std::move(d_transport);
            d_transport = t;
            d_transport_handle = handle;
        }
    } catch (const std::exception& e) {
        d_logger->error("cannot start the hub connection: {}", e.what());
    }
    return true;
}

bool websocket_source_impl::stop()
{
    d_queue.interrupt();
    if (auto t = transport())
        t->release(d_transport_handle, 0.2);
    return true;
}

std::shared_ptr<agent_transport> websocket_source_impl::transport() const
{
    std::lock_guard<std::mutex> lk(d_mutex);
    return d_transport;
}

bool websocket_source_impl::connected() const
{
    auto t = transport();
    return t && t->connected();
}

std::string websocket_source_impl::state() const
{
    std::lock_guard<std::mutex> lk(d_mutex);
    return d_state;
}

void websocket_source_impl::set_state(const std::string& state)
{
    {
        std::lock_guard<std::mutex> lk(d_mutex);
        if (d_state == state)
            return;
        d_state = state;
        d_state_app = state == "idle" ? json() : d_app_id;
    }
    if (auto t = transport())
        t->send_heartbeat(); // its sessions.tx says so now, not at the next interval
}

json websocket_source_impl::stats() const
{
    const auto c = d_queue.counters();
    json s = { { "received", c.received },       { "played", c.played },
               { "underruns", d_underruns.load() }, { "late_frames", c.late_frames },
               { "bad_frames", c.bad_frames + d_audio_bad.load() }, { "queued", c.queued },
               { "queue_samples", d_queue.capacity() } };
    if (d_audio) {
        // The speaker's side of the voice counters (§8).
        const double rate = d_play_rate.load();
        s["audio_frames_received"] = c.frames_in;
        s["audio_frames_played"] = c.frames_out;
        s["audio_frames_concealed"] = d_audio_concealed.load();
        s["audio_frames_bad"] = d_audio_bad.load();
        s["speaker_queue_ms"] = rate > 0 ? std::round(c.queued / rate * 1e4) / 10 : 0.0;
        if (c.latency_s >= 0) // absent until a frame played
            s["speaker_latency_ms"] = std::round(c.latency_s * 1e4) / 10;
    }
    return s;
}

// ------------------------------------------------------------------ hub -> queue (io thread)

void websocket_source_impl::on_hub(const json& msg)
{
    // In the connection's order, so every frame is placed in the session it was sent for.
    const auto seq = msg.find("_seq");
    if (seq == msg.end())
        return;
    const auto& type = msg["type"].get_ref<const std::string&>();
    if (type == "tx_start") {
        if (d_audio)
            on_audio_start(msg);
        d_queue.on_start(seq->get<uint64_t>());
    }
    else if (type == "tx_stop")
        d_queue.on_stop();
    else if (type == "tx_configure")
        d_queue.on_configure(seq->get<uint64_t>());
}

void websocket_source_impl::on_audio_start(const json& msg)
{
    // The radio_config as the hub sent it; the handler checks it (and refuses the session) on the
    // block thread, but the frames that follow must be decoded as they come.
    auto format = wire::sample_format::f32;
    int rate = 0;
    const auto rc = msg.find("radio_config");
    if (rc != msg.end() && rc->is_object()) {
        const auto f = rc->find("sample_format");
        if (f != rc->end() && f->is_string()) {
            const auto& name = f->get_ref<const std::string&>();
            format = name == "s16" ? wire::sample_format::s16
                     : name == "opus" ? wire::sample_format::opus
                                      : wire::sample_format::f32;
        }
        const auto r = rc->find("tx_sample_rate");
        if (r != rc->end() && r->is_number() && r->get<double>() == std::floor(r->get<double>()))
            rate = static_cast<int>(std::min(r->get<double>(), 1e6));
    }
    std::shared_ptr<opus::decoder> dec;
    if (format == wire::sample_format::opus && opus::valid_rate(rate))
        dec = std::make_shared<opus::decoder>(rate);
    std::lock_guard<std::mutex> lk(d_codec_mutex);
    d_codec_seq = msg["_seq"].get<uint64_t>();
    d_intake_format = format;
    d_intake_decoder = std::move(dec); // null for opus at a rate it cannot take: its frames are bad
}

std::optional<bool> websocket_source_impl::on_audio_binary(const void* data, size_t bytes)
{
    const auto session = d_queue.intake_session();
    std::lock_guard<std::mutex> lk(d_codec_mutex);
    if (session == 0 || session != d_codec_seq || d_intake_format == wire::sample_format::f32)
        return std::nullopt; // the caller's: outside a session, or f32 as it came
    d_decoded.clear();
    try {
        if (d_intake_format == wire::sample_format::s16)
            wire::audio_from_bytes(static_cast<const uint8_t*>(data), bytes, d_intake_format, d_decoded);
        else if (!d_intake_decoder)
            throw opus::error("no Opus decoder for this session (its tx_sample_rate is not one Opus takes)");
        else
            d_intake_decoder->decode(static_cast<const uint8_t*>(data), bytes, d_decoded);
    } catch (const std::exception& e) {
        d_audio_bad++;
        tell_hub(std::string("audio frame of ") + std::to_string(bytes) + " bytes dropped: " + e.what(), d_opus_said);
        return true;
    }
    return d_queue.push_samples(d_decoded.data(), d_decoded.size()) != tx_queue::intake::full;
}

bool websocket_source_impl::on_binary(const void* data, size_t bytes)
{
    if (d_audio)
        if (const auto decoded = on_audio_binary(data, bytes))
            return *decoded;
    switch (d_queue.push(data, bytes)) {
    case tx_queue::intake::taken:
        return true;
    case tx_queue::intake::full:
        return false; // the hub waits (TCP) until the flowgraph has played some
    case tx_queue::intake::bad_length:
        tell_hub("binary frame of " + std::to_string(bytes) + " bytes is not a whole number of " +
                     std::to_string(d_values * sizeof(float)) + "-byte samples; dropped",
                 d_bad_said);
        return true;
    case tx_queue::intake::outside_session:
        tell_hub("binary frame outside a TX session (no tx_start before it, or the session is over); dropped",
                 d_late_said);
        return true;
    }
    return true;
}

void websocket_source_impl::tell_hub(const std::string& message, double& last_said)
{
    // A hub can send many: it hears at most one a second, the log the same.
    const double now = monotonic_s();
    if (now - last_said < 1.0)
        return;
    last_said = now;
    d_logger->warn("{}", message);
    if (auto t = transport())
        t->send_control(wire::error(json(), message));
}

void websocket_source_impl::annotate(json& hb) const
{
    std::string state;
    json app;
    {
        std::lock_guard<std::mutex> lk(d_mutex);
        state = d_state;
        app = d_state_app;
    }
    if (state != "idle")
        hb["sessions"]["tx"] = { { "app_id", app }, { "state", state } };
    if (d_audio && !hb.contains("stats"))
        hb["stats"] = json::object(); // a speaker alone still reports its counters
    if (hb.contains("stats") && hb["stats"].is_object()) {
        const auto c = d_queue.counters();
        if (d_audio) {
            const json mine = stats();
            for (const char* key : { "audio_frames_received", "audio_frames_played", "audio_frames_concealed",
                                     "audio_frames_bad", "speaker_queue_ms", "speaker_latency_ms" })
                if (mine.contains(key))
                    hb["stats"][key] = mine[key];
        }
        hb["stats"]["tx_samples_received"] = c.received;
        hb["stats"]["tx_samples_played"] = c.played;
        hb["stats"]["tx_underruns"] = d_underruns.load();
        hb["stats"]["tx_late_frames"] = c.late_frames;
    }
}

// ------------------------------------------------------------------ sessions (block thread)

void websocket_source_impl::publish(json event)
{
    message_port_pub(d_status_port, json_to_pmt(event));
}

void websocket_source_impl::handle_cmd(const pmt::pmt_t& msg)
{
    try {
        json cmd = pmt_to_json(msg);
        if (!cmd.is_object())
            throw std::invalid_argument("expected a dict, got " + pmt::write_string(msg).substr(0, 200));
        apply_cmd(cmd);
    } catch (const std::exception& e) {
        d_logger->warn("cmd: {}", e.what());
        publish({ { "event", "error" }, { "message", std::string("cmd: ") + e.what() } });
    }
    resume_if_room();
}

void websocket_source_impl::apply_cmd(const json& cmd)
{
    if (cmd.contains("arm"))
        arm(cmd);
    else if (cmd.contains("refuse"))
        d_queue.refuse(sequence(cmd, "refuse"));
    else if (cmd.contains("stop"))
        end_session("ended", "stopped");
    else if (cmd.contains("configure")) {
        const uint64_t seq = sequence(cmd, "configure");
        if (cmd.value("refused", false)) {
            d_queue.forget(seq);
            return;
        }
        std::vector<tx_tag> tags;
        if (cmd.contains("tags") && cmd["tags"].is_object())
            for (const auto& item : cmd["tags"].items()) {
                if (item.key() != "tx_freq" && item.key() != "tx_rate" && item.key() != "tx_gain")
                    throw std::invalid_argument("configure: unknown tag '" + item.key() +
                                                "' (known: tx_freq, tx_rate, tx_gain)");
                tags.push_back({ 0, item.key(), finite_number(cmd["tags"], item.key().c_str()) });
            }
        if (!d_queue.schedule(seq, tags))
            publish({ { "event", "configure_lost" }, { "seq", seq } });
    } else
        throw std::invalid_argument("a cmd needs one of arm, refuse, stop, configure");
}

void websocket_source_impl::arm(const json& cmd)
{
    const uint64_t seq = sequence(cmd, "arm");
    // Checked before anything changes: a refused arm leaves the playing session alone.
    auto play_format = wire::sample_format::f32;
    float volume = 1.0f;
    if (d_audio) {
        if (cmd.contains("sample_format")) {
            if (!cmd["sample_format"].is_string())
                throw std::invalid_argument("sample_format must be a string, got " + wire::encode(cmd["sample_format"]));
            const auto& name = cmd["sample_format"].get_ref<const std::string&>();
            if (name != "f32" && name != "s16" && name != "opus")
                throw std::invalid_argument("sample_format must be one of f32, s16, opus for audio, got '" + name + "'");
            play_format = wire::parse_audio_format(name);
        }
        if (cmd.contains("volume")) {
            const double db = finite_number(cmd, "volume");
            if (db < VOLUME_MIN_DB || db > VOLUME_MAX_DB)
                throw std::invalid_argument("volume must be -60 to 20 dB, got " + std::to_string(db));
            volume = static_cast<float>(std::pow(10.0, db / 20.0));
        }
        std::lock_guard<std::mutex> lk(d_codec_mutex);
        if (d_codec_seq == seq && d_intake_format != play_format)
            throw std::invalid_argument(std::string("arm: sample_format ") + wire::format_name(play_format) +
                                        " is not the tx_start's (" + wire::format_name(d_intake_format) + ")");
    }
    if (d_queue.active())
        end_session("ended", "replaced");
    d_rate_known = cmd.contains("sample_rate");
    d_freq_known = cmd.contains("center_frequency");
    d_gain_known = cmd.contains("gain");
    d_rate = d_rate_known ? finite_number(cmd, "sample_rate") : d_default_rate;
    d_freq = d_freq_known ? finite_number(cmd, "center_frequency") : 0;
    d_gain = d_gain_known ? finite_number(cmd, "gain") : 0;
    if (!(d_rate > 0))
        throw std::invalid_argument("sample_rate must be > 0");
    d_policy = require_choice("underrun_policy", cmd.value("underrun_policy", std::string("pause")),
                              { "pause", "zero", "repeat" });
    d_app_id = cmd.contains("app_id") ? cmd["app_id"] : json();
    const auto capacity = static_cast<uint64_t>(std::ceil(d_queue_seconds * d_rate));
    const auto before = d_queue.counters();
    if (!d_queue.arm(seq, capacity)) {
        publish({ { "event", "stale" }, { "seq", seq }, { "app_id", d_app_id } });
        return;
    }
    const auto c = d_queue.counters();
    d_played_at_arm = c.played;
    d_received_at_arm = before.received;
    d_reported_played = 0;
    d_reported_at = monotonic_s();
    d_sob_due = true;
    d_eob_due = false;
    d_transmitting = false;
    d_in_underrun = false;
    d_empty_since = -1;
    d_last_piece.clear();
    d_volume = volume;
    d_play_rate = d_rate;
    d_conceal.clear();
    d_conceal_pos = 0;
    d_conceal_run = 0;
    {
        std::lock_guard<std::mutex> lk(d_codec_mutex);
        d_play_decoder = d_codec_seq == seq && d_intake_format == wire::sample_format::opus ? d_intake_decoder : nullptr;
    }
    set_state("armed");
    publish({ { "event", "armed" }, { "seq", seq }, { "app_id", d_app_id }, { "queue_samples", capacity } });
}

void websocket_source_impl::end_session(const std::string& event, const std::string& reason)
{
    const bool was_active = d_queue.active();
    send_progress(progress::now);
    d_queue.end();
    if (d_transmitting)
        d_eob_due = true; // the burst ends on a zero sample, tagged
    const auto c = d_queue.counters();
    publish({ { "event", event },
              { "reason", reason },
              { "app_id", d_app_id },
              { "active", was_active },
              { "played", c.played - d_played_at_arm } });
    d_transmitting = false;
    d_sob_due = false;
    set_state("idle");
}

void websocket_source_impl::send_progress(progress when)
{
    if (!d_queue.active())
        return;
    const auto c = d_queue.counters();
    const uint64_t played = c.played - d_played_at_arm;
    const double now = monotonic_s();
    const bool moved = played != d_reported_played;
    const bool due = moved && (played - d_reported_played >= d_queue.capacity() / 4 ||
                               now - d_reported_at >= PROGRESS_EVERY_S);
    if (!(when == progress::now || (when == progress::if_moved && moved) || due))
        return;
    d_reported_played = played;
    d_reported_at = now;
    if (auto t = transport())
        t->send_control({ { "type", "tx_progress" },
                          { "app_id", d_app_id },
                          { "received", c.received - d_received_at_arm },
                          { "played", played },
                          { "queued", c.queued } });
}

void websocket_source_impl::resume_if_room()
{
    if (d_queue.take_resume())
        if (auto t = transport())
            t->resume_reading();
}

// ------------------------------------------------------------------ stream (block thread)

void websocket_source_impl::tag_session_start(uint64_t offset)
{
    add_item_tag(0, offset, TX_SOB, pmt::PMT_T);
    if (d_rate_known)
        add_item_tag(0, offset, pmt::mp("tx_rate"), pmt::from_double(d_rate));
    if (d_freq_known)
        add_item_tag(0, offset, pmt::mp("tx_freq"), pmt::from_double(d_freq));
    if (d_gain_known)
        add_item_tag(0, offset, pmt::mp("tx_gain"), pmt::from_double(d_gain));
}

int websocket_source_impl::fill(float* out, int noutput)
{
    // The queue ran dry while the session played.
    if (!d_in_underrun) {
        d_in_underrun = true;
        d_underruns++;
    }
    size_t n = std::min<size_t>(noutput, d_last_piece.empty() ? DEFAULT_FILL : d_last_piece.size() / d_values);
    if (d_policy == "repeat" && !d_last_piece.empty())
        std::memcpy(out, d_last_piece.data(), n * d_values * sizeof(float));
    else
        std::memset(out, 0, n * d_values * sizeof(float));
    return static_cast<int>(n);
}

int websocket_source_impl::silence(float* out, int noutput)
{
    std::memset(out, 0, static_cast<size_t>(noutput) * d_values * sizeof(float));
    return noutput;
}

void websocket_source_impl::apply_volume(float* out, size_t n) const
{
    if (d_volume != 1.0f)
        for (size_t i = 0; i < n; i++)
            out[i] *= d_volume;
}

int websocket_source_impl::conceal(float* out, int noutput)
{
    if (!d_in_underrun) {
        d_in_underrun = true;
        d_underruns++;
        d_conceal_run = 0;
    }
    if (d_conceal_pos >= d_conceal.size()) {
        // The next 20 ms: Opus PLC (silence for f32/s16) while the underrun is young, then silence.
        const auto frame = static_cast<size_t>(std::max(1.0, std::round(d_rate * FRAME_S)));
        d_conceal.clear();
        d_conceal_pos = 0;
        const bool young = d_conceal_run < static_cast<uint64_t>(std::round(d_rate * CONCEAL_S));
        if (young && d_play_decoder) {
            std::lock_guard<std::mutex> lk(d_codec_mutex);
            try {
                d_play_decoder->conceal(d_conceal);
            } catch (const std::exception& e) {
                d_logger->warn("opus concealment: {}", e.what());
            }
        }
        d_conceal.resize(frame, 0.0f); // silence, or PLC of exactly one frame
        if (young)
            d_audio_concealed++;
        d_conceal_run += frame;
    }
    const size_t n = std::min<size_t>(noutput, d_conceal.size() - d_conceal_pos);
    std::memcpy(out, d_conceal.data() + d_conceal_pos, n * sizeof(float));
    d_conceal_pos += n;
    apply_volume(out, n);
    return static_cast<int>(n);
}

int websocket_source_impl::work(int noutput_items, gr_vector_const_void_star&, gr_vector_void_star& output_items)
{
    float* out = static_cast<float*>(output_items[0]);
    const uint64_t offset = nitems_written(0);
    if (d_eob_due) {
        std::memset(out, 0, d_values * sizeof(float));
        add_item_tag(0, offset, TX_EOB, pmt::PMT_T);
        d_eob_due = false;
        return 1;
    }
    if (!d_queue.active()) {
        if (d_idle_silence)
            return silence(out, noutput_items);
        d_queue.wait(WAIT_S);
        return 0;
    }
    if (d_queue.take_lost()) {
        // No hub, no transmission: a radio left on "zero" or "repeat" must not go on by itself, and
        // a hub that comes back may not know of the session (however soon it is back).
        end_session("ended", "hub connection lost");
        return 0;
    }
    uint64_t first = 0;
    std::vector<tx_tag> tags;
    const double asked_at = monotonic_s();
    size_t n = d_queue.pop(out, noutput_items, first, tags);
    if (n == 0 && d_transmitting)
        send_progress(progress::if_moved); // all the hub sent has played (its end?): say so before waiting
    const double patience = d_transmitting ? std::min(WAIT_S, d_underrun_timeout) : d_idle_silence ? 0.0 : WAIT_S;
    if (n == 0 && patience > 0 && d_queue.wait(patience))
        n = d_queue.pop(out, noutput_items, first, tags);
    resume_if_room();
    if (n == 0) {
        send_progress(progress::when_due);
        if (!d_transmitting) // armed: the hub has not sent anything yet
            return d_idle_silence ? silence(out, noutput_items) : 0;
        const double now = monotonic_s();
        if (d_empty_since < 0)
            d_empty_since = asked_at; // (the wait above counts)
        if (now - d_empty_since < d_underrun_timeout)
            return 0;
        if (d_policy == "pause") {
            d_underruns++;
            end_session("underrun", "underrun");
            return 0; // the tx_eob zero goes out on the next call
        }
        return d_audio ? conceal(out, noutput_items) : fill(out, noutput_items);
    }
    d_empty_since = -1;
    d_in_underrun = false;
    d_conceal_run = 0;
    d_conceal.clear(); // the rest of a concealment frame gives way to the hub's samples
    d_conceal_pos = 0;
    if (d_audio)
        apply_volume(out, n);
    if (d_sob_due) {
        tag_session_start(offset);
        d_sob_due = false;
        d_transmitting = true;
        set_state("transmitting");
        publish({ { "event", "transmitting" }, { "app_id", d_app_id } });
    }
    for (const auto& t : tags)
        add_item_tag(0, offset + (t.hub_index - first), pmt::mp(t.key), pmt::from_double(t.value));
    const size_t keep = std::min(n, MAX_REPEAT);
    d_last_piece.assign(out + (n - keep) * d_values, out + n * d_values);
    send_progress(progress::when_due);
    return static_cast<int>(n);
}

} // namespace ria
} // namespace gr
