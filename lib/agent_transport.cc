#include "agent_transport.h"

#include "backoff.h"
#include "monotonic_clock.h"
#include "wire.h"
#include "ws_connection.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <pthread.h>
#include <random>

namespace gr {
namespace ria {

namespace net = boost::asio;
using json = nlohmann::json;

namespace {

constexpr size_t SEEN_IDS = 4096;
constexpr size_t MAX_CONTROL = 1024; // queued text messages (acks, pongs, status...) before new ones are dropped
constexpr std::chrono::milliseconds CLOSE_LIMIT{ 400 };

constexpr double REPLACED_WAIT_S = 30.0; // after the hub gave this agent's connection to another process

std::chrono::milliseconds ms(double seconds)
{
    return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

std::mutex g_registry_mutex;
std::map<std::string, std::weak_ptr<agent_transport>> g_registry;

} // namespace

double transport_settings::dead_link_timeout() const { return std::min(2.0 * heartbeat_interval, 15.0); }

transport_settings transport_settings::checked(const std::string& url,
                                               const std::string& token,
                                               bool token_in_query,
                                               const std::string& ca_file,
                                               bool insecure,
                                               double heartbeat_interval)
{
    transport_settings ts;
    ts.url = url;
    ts.token = token;
    ts.token_in_query = token_in_query;
    ts.ca_file = ca_file;
    ts.insecure = insecure;
    ts.heartbeat_interval = heartbeat_interval;
    agent_transport::validate(ts);
    return ts;
}

struct agent_transport::data_item {
    enum kind_t { FRAME, TEXT, GAP } kind = TEXT;
    frame fr;
    json text;
    uint64_t index = 0, samples = 0;
    json app_id;
    std::string reason;
};

struct agent_transport::link {
    explicit link(net::io_context& ioc) : heartbeat(ioc), watchdog(ioc) {}
    std::shared_ptr<ws_connection> conn;
    bool open = false, alive = true, writing = false, described = false;
    double opened_at = 0;
    int64_t bytes_acked = -1;  // the peer's TCP acknowledgements at the last liveness tick
    double acked_at = 0;       // when they last grew
    std::string text_buf;
    net::steady_timer heartbeat, watchdog;
};

struct agent_transport::io {
    std::unique_ptr<net::ssl::context> tls; // outlives the io_context and the connections in it
    net::io_context ioc;
    std::optional<net::executor_work_guard<net::io_context::executor_type>> guard;
    net::steady_timer backoff{ ioc };
    std::mt19937_64 rng{ std::random_device{}() };
};

// ------------------------------------------------------------------ construction, registry

void agent_transport::validate(const transport_settings& s)
{
    hub_url::parse_list(s.url);
    if (!(s.heartbeat_interval > 0) || s.heartbeat_interval > 86400)
        throw std::invalid_argument("heartbeat_interval must be > 0 and at most a day, got " +
                                    std::to_string(s.heartbeat_interval));
    if (!s.ca_file.empty()) {
        if (!std::ifstream(s.ca_file).good())
            throw std::invalid_argument("ca_file: cannot read '" + s.ca_file + "'");
        try {
            net::ssl::context probe(net::ssl::context::tls_client);
            probe.load_verify_file(s.ca_file);
        } catch (const std::exception& e) {
            throw std::invalid_argument("ca_file: '" + s.ca_file + "' holds no usable CA certificate (" +
                                        e.what() + ")");
        }
    }
}

agent_transport::agent_transport(const transport_settings& s)
    : d_settings(s), d_urls(hub_url::parse_list(s.url)), d_io(new io), d_logger("ria_agent_transport")
{
    for (const auto& url : d_urls)
        d_any_tls = d_any_tls || hub_url::parse(url).tls;
    if (d_any_tls) {
        auto ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
        if (s.insecure) {
            ctx->set_verify_mode(net::ssl::verify_none);
        } else {
            ctx->set_verify_mode(net::ssl::verify_peer);
            if (s.ca_file.empty())
                ctx->set_default_verify_paths();
            else
                ctx->load_verify_file(s.ca_file);
        }
        d_io->tls = std::move(ctx);
    }
}

agent_transport::~agent_transport() { halt_io(); }

std::shared_ptr<agent_transport> agent_transport::acquire(const transport_settings& s, user u, int& handle)
{
    // Blocks share a connection only when they would have made the same one: a block that
    // verifies TLS never rides on another's insecure connection.
    const std::string key = s.url + '\n' + s.token + '\n' + std::to_string(s.token_in_query) + '\n' + s.ca_file +
                            '\n' + std::to_string(s.insecure) + '\n' + std::to_string(s.heartbeat_interval);
    std::shared_ptr<agent_transport> t;
    std::lock_guard<std::mutex> registry(g_registry_mutex);
    for (auto it = g_registry.begin(); it != g_registry.end();) // forget transports nobody holds
        it = it->second.expired() ? g_registry.erase(it) : std::next(it);
    auto it = g_registry.find(key);
    if (it != g_registry.end())
        t = it->second.lock();
    if (t) {
        std::lock_guard<std::mutex> calls(t->d_callback_mutex);
        std::lock_guard<std::mutex> lk(t->d_mutex);
        if (!t->d_users.empty()) {
            handle = t->d_next_handle++;
            t->d_users.emplace(handle, std::move(u));
            return t;
        }
    }
    t.reset(new agent_transport(s));
    g_registry[key] = t;
    {
        std::lock_guard<std::mutex> lk(t->d_mutex);
        handle = t->d_next_handle++;
        t->d_users.emplace(handle, std::move(u));
    }
    t->start();
    return t;
}

void agent_transport::start()
{
    if (d_any_tls && d_settings.insecure)
        d_logger.warn("TLS verification is off (insecure): use this only for testing");
    d_io->guard.emplace(d_io->ioc.get_executor());
    d_thread = std::thread([this] {
        pthread_setname_np(pthread_self(), "ria_ws_io");
        for (;;) {
            try {
                d_io->ioc.run();
                return;
            } catch (const std::exception& e) { // a bug, not the network: say so, and keep the agent up
                d_logger.error("transport: {}", e.what());
            }
        }
    });
    net::post(d_io->ioc, [this] { connect(); });
}

void agent_transport::release(int handle, double drain_s)
{
    bool last;
    {
        std::lock_guard<std::mutex> lk(d_mutex);
        if (!d_users.count(handle))
            return;
        last = d_users.size() == 1;
    }
    // The last user's tail may still go out (a connection still being made may deliver it in
    // time, led by this user's heartbeat), so its callbacks stay until the drain is over.
    if (last)
        wait_drained(drain_s);
    {
        std::lock_guard<std::mutex> calls(d_callback_mutex); // a callback of this user may be running
        std::lock_guard<std::mutex> lk(d_mutex);
        d_users.erase(handle);
        if (!d_users.empty())
            return;
    }
    net::post(d_io->ioc, [this] {
        d_stopping = true;
        d_io->backoff.cancel();
        if (d_link) {
            d_link->heartbeat.cancel();
            d_link->watchdog.cancel();
            d_link->conn->close(CLOSE_LIMIT);
        }
    });
    {
        std::unique_lock<std::mutex> lk(d_mutex);
        d_cond.wait_for(lk, CLOSE_LIMIT + std::chrono::milliseconds(100), [this] { return !d_connected.load(); });
    }
    halt_io();
    finish_close();
}

void agent_transport::halt_io()
{
    if (d_io->guard)
        d_io->guard.reset();
    d_io->ioc.stop();
    if (d_thread.joinable())
        d_thread.join();
}

void agent_transport::finish_close()
{
    // The io thread has ended: what is still queued never reaches this hub. Count it, so
    // that sent + dropped is every sample a block handed over.
    if (d_link) { // its close did not finish within the limit: the hub sees the socket close now
        d_link->alive = false;
        d_link->conn->drop();
    }
    d_link.reset();
    d_connected = false;
    std::lock_guard<std::mutex> lk(d_mutex);
    if (d_in_flight && d_in_flight->kind == data_item::FRAME) {
        d_counters.frames_dropped++;
        d_counters.samples_dropped += d_in_flight->samples;
    }
    d_in_flight.reset();
    for (const auto& item : d_data)
        if (item.kind == data_item::FRAME) {
            d_counters.frames_dropped++;
            d_counters.samples_dropped += item.samples;
        }
    d_data.clear();
    d_control.clear();
    d_queued_samples = 0;
    d_queued_frames = 0;
    d_writing = false;
    d_cond.notify_all();
    d_room.notify_all();
}

// ------------------------------------------------------------------ producers (block threads)

json agent_transport::build_heartbeat()
{
    std::lock_guard<std::mutex> calls(d_callback_mutex);
    json hb;
    for (auto& [handle, u] : d_users) // d_users changes only under d_callback_mutex too
        if (u.heartbeat) {
            try {
                hb = u.heartbeat();
            } catch (const std::exception& e) {
                d_logger.error("heartbeat: {}", e.what());
            }
            break;
        }
    if (!hb.is_object())
        hb = wire::heartbeat({}, false, nullptr, nullptr, nullptr);
    for (auto& [handle, u] : d_users)
        if (u.annotate) {
            try {
                u.annotate(hb);
            } catch (const std::exception& e) {
                d_logger.error("heartbeat: {}", e.what());
            }
        }
    return hb;
}

void agent_transport::deliver(const json& msg)
{
    // Blocks that take the hub's binary frames see a message first: one that places frames (a
    // tx_configure) must have done so before a block that acts on it (the handler, through the
    // sink's ctrl port) can ask about it.
    std::lock_guard<std::mutex> calls(d_callback_mutex);
    for (const bool takes_frames : { true, false })
        for (auto& [handle, u] : d_users)
            if (u.receiver && static_cast<bool>(u.binary) == takes_frames) {
                try {
                    u.receiver(msg);
                } catch (const std::exception& e) {
                    d_logger.error("a block could not take a hub message: {}", e.what());
                }
            }
}

void agent_transport::tell_connection_lost()
{
    std::lock_guard<std::mutex> calls(d_callback_mutex);
    for (auto& [handle, u] : d_users)
        if (u.connection_lost) {
            try {
                u.connection_lost();
            } catch (const std::exception& e) {
                d_logger.error("a block could not take a lost connection: {}", e.what());
            }
        }
}

void agent_transport::send_heartbeat()
{
    push_control(json()); // built when sent
    net::post(d_io->ioc, [this] { kick(); });
}

void agent_transport::resume_reading()
{
    net::post(d_io->ioc, [this] {
        if (d_link)
            d_link->conn->resume_reading();
    });
}

void agent_transport::push_control(json msg)
{
    std::lock_guard<std::mutex> lk(d_mutex);
    if (d_control.size() >= MAX_CONTROL) {
        // A hub that floods pings, or a flowgraph that floods to_hub while the hub is away:
        // memory stays bounded, and the loss is counted and said once per run of drops.
        if (d_control_dropped++ == 0)
            d_logger.warn("{} text messages wait to be sent; dropping new ones until the hub catches up",
                          MAX_CONTROL);
        return;
    }
    d_control_dropped = 0;
    d_control.push_back(std::move(msg));
}

void agent_transport::send_control(json msg)
{
    push_control(std::move(msg));
    net::post(d_io->ioc, [this] { kick(); });
}

void agent_transport::send_in_order(json msg)
{
    {
        std::lock_guard<std::mutex> lk(d_mutex);
        data_item item;
        item.text = std::move(msg);
        d_data.push_back(std::move(item));
    }
    net::post(d_io->ioc, [this] { kick(); });
}

uint64_t agent_transport::send_frames(std::vector<frame>& frames, uint64_t first_index, const json& app_id, bool drop)
{
    uint64_t index = first_index;
    bool wake = false;
    {
        std::lock_guard<std::mutex> lk(d_mutex);
        for (frame& f : frames) {
            const uint64_t samples = f.samples;
            if (drop && d_queued_samples >= d_limit_samples) {
                drop_locked(index, samples, app_id, d_connected ? "backpressure" : "disconnected", false);
            } else {
                data_item item;
                item.kind = data_item::FRAME;
                item.samples = samples;
                item.index = index;
                item.app_id = app_id;
                item.fr = std::move(f);
                d_queued_samples += samples;
                d_queued_frames++;
                d_data.push_back(std::move(item));
                wake = true;
            }
            index += samples;
        }
        wake = wake && !d_writing; // a busy writer takes the next item itself
    }
    frames.clear();
    if (wake)
        net::post(d_io->ioc, [this] { kick(); });
    return index - first_index;
}

void agent_transport::drop_locked(
    uint64_t index, uint64_t samples, const json& app_id, const std::string& reason, bool at_front)
{
    d_counters.frames_dropped++;
    d_counters.samples_dropped += samples;
    // A run of drops is one gap: extend the neighbouring gap when it ends (or starts) right here.
    if (!d_data.empty()) {
        data_item& near = at_front ? d_data.front() : d_data.back();
        if (near.kind == data_item::GAP && near.app_id == app_id && near.reason == reason) {
            if (!at_front && near.index + near.samples == index) {
                near.samples += samples;
                return;
            }
            if (at_front && index + samples == near.index) {
                near.index = index;
                near.samples += samples;
                return;
            }
        }
    }
    data_item gap;
    gap.kind = data_item::GAP;
    gap.index = index;
    gap.samples = samples;
    gap.app_id = app_id;
    gap.reason = reason;
    if (at_front)
        d_data.push_front(std::move(gap));
    else
        d_data.push_back(std::move(gap));
}

bool agent_transport::wait_for_room(double timeout_s)
{
    // Hysteresis: a full queue lets the producer go on once it is half empty, so the block
    // thread wakes once per half a queue, not once per frame the writer takes.
    std::unique_lock<std::mutex> lk(d_mutex);
    if (d_queued_samples < d_limit_samples)
        return true;
    d_room.wait_for(lk, ms(timeout_s), [this] { return d_queued_samples <= d_limit_samples / 2; });
    return d_queued_samples < d_limit_samples;
}

bool agent_transport::wait_drained(double timeout_s)
{
    std::unique_lock<std::mutex> lk(d_mutex);
    return d_cond.wait_for(lk, ms(timeout_s), [this] { return d_data.empty() && d_control.empty() && !d_writing; });
}

void agent_transport::set_queue_limit(uint64_t samples)
{
    std::lock_guard<std::mutex> lk(d_mutex);
    d_limit_samples = std::max<uint64_t>(samples, 1);
    d_room.notify_all();
}

std::string agent_transport::last_error() const
{
    std::lock_guard<std::mutex> lk(d_mutex);
    return d_last_error;
}

transport_counters agent_transport::counters() const
{
    std::lock_guard<std::mutex> lk(d_mutex);
    return d_counters;
}

size_t agent_transport::queue_frames() const
{
    std::lock_guard<std::mutex> lk(d_mutex);
    return d_queued_frames;
}

uint64_t agent_transport::queue_samples() const
{
    std::lock_guard<std::mutex> lk(d_mutex);
    return d_queued_samples;
}

// ------------------------------------------------------------------ connection (io thread)

void agent_transport::connect()
{
    if (d_stopping)
        return;
    connection_settings cs;
    const std::string& url = d_urls[d_url_index];
    cs.url = hub_url::parse(d_settings.token_in_query && !d_settings.token.empty()
                                ? hub_url::with_token(url, d_settings.token)
                                : url);
    if (!d_settings.token.empty() && !d_settings.token_in_query)
        cs.authorization = "Bearer " + d_settings.token;
    cs.handshake_timeout = ms(std::min(10.0, d_settings.dead_link_timeout()));
    auto l = std::make_shared<link>(d_io->ioc);
    std::weak_ptr<link> weak = l;
    connection_events ev;
    ev.opened = [this, weak] {
        if (auto l = weak.lock())
            on_open(l);
    };
    ev.text = [this, weak](std::string&& text) {
        if (auto l = weak.lock())
            on_text(l, std::move(text));
    };
    ev.binary = [this, weak](const void* data, size_t bytes) {
        auto l = weak.lock();
        return l && l == d_link ? on_binary(l, data, bytes) : true;
    };
    ev.ended = [this, weak](const std::string& why, bool quiet) {
        if (auto l = weak.lock())
            on_ended(l, why, quiet);
    };
    l->conn = ws_connection::create(d_io->ioc, d_io->tls.get(), cs, std::move(ev));
    d_link = l;
    l->conn->run();
}

void agent_transport::schedule_reconnect(double at_least_s)
{
    if (d_stopping)
        return;
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    // With several hub nodes the next one is tried; the backoff grows once per round through them all.
    d_url_index = (d_url_index + 1) % d_urls.size();
    const double delay =
        std::max(at_least_s, backoff_delay(d_url_index == 0 ? d_attempt++ : d_attempt, uniform(d_io->rng)));
    d_io->backoff.expires_after(ms(delay));
    d_io->backoff.async_wait([this](boost::system::error_code ec) {
        if (!ec)
            connect();
    });
}

void agent_transport::on_open(const std::shared_ptr<link>& l)
{
    if (l != d_link)
        return;
    l->open = true;
    l->opened_at = monotonic_s();
    {
        std::lock_guard<std::mutex> lk(d_mutex);
        d_counters.connections++;
        d_last_error.clear();
        d_control.push_front(json()); // the first frame on every connection is a heartbeat
        d_connected = true;
        d_cond.notify_all();
    }
    d_logger.info("connected to hub {}", redact_url(d_urls[d_url_index]));
    arm_heartbeat(l);
    arm_watchdog(l);
    kick();
}

void agent_transport::on_ended(const std::shared_ptr<link>& l, const std::string& why, bool quiet)
{
    if (l != d_link)
        return;
    l->alive = false;
    l->heartbeat.cancel();
    l->watchdog.cancel();
    d_link.reset();
    {
        std::lock_guard<std::mutex> lk(d_mutex);
        d_connected = false;
        if (!l->writing) // else on_written accounts for what was in flight, and clears this
            d_writing = false;
        d_cond.notify_all();
    }
    // Only the current link's end gets here, so a replaced one means another process holds this agent's
    // token: taking the connection back at once would have the two replace each other every second.
    const bool replaced = l->conn->hub_close_code() == wire::REPLACED_CLOSE_CODE;
    if (!quiet)
        note_error(replaced ? why + "; another process uses this agent's token (is the agent running twice?), "
                                    "trying again in " + std::to_string(int(REPLACED_WAIT_S)) + " s"
                            : why);
    if (l->open)
        tell_connection_lost();
    if (l->open && monotonic_s() - l->opened_at >= BACKOFF_RESET_AFTER_S)
        d_attempt = 0;
    schedule_reconnect(replaced ? REPLACED_WAIT_S : 0);
}

void agent_transport::note_error(const std::string& message)
{
    std::lock_guard<std::mutex> lk(d_mutex);
    if (message != d_last_error)
        d_logger.warn("hub {}: {}", redact_url(d_urls[d_url_index]), message);
    d_last_error = message;
    d_cond.notify_all();
}

void agent_transport::arm_heartbeat(const std::shared_ptr<link>& l)
{
    l->heartbeat.expires_after(ms(d_settings.heartbeat_interval));
    l->heartbeat.async_wait([this, weak = std::weak_ptr<link>(l)](boost::system::error_code ec) {
        auto l = weak.lock();
        if (ec || !l || l != d_link)
            return;
        {
            std::lock_guard<std::mutex> lk(d_mutex);
            d_control.push_back(json());
        }
        arm_heartbeat(l);
        kick();
    });
}

void agent_transport::arm_watchdog(const std::shared_ptr<link>& l)
{
    // The link is alive while something arrives from the hub or the hub's TCP acknowledges what
    // was sent. With neither for the dead-link timeout it is dead: a blackholed path, a NAT that
    // forgot the flow, a hub that stopped reading. A ping goes out when the hub has been quiet for
    // half the timeout, so an idle link is checked too.
    const double dead = d_settings.dead_link_timeout();
    l->watchdog.expires_after(ms(std::min(1.0, dead / 4)));
    l->watchdog.async_wait([this, dead, weak = std::weak_ptr<link>(l)](boost::system::error_code ec) {
        auto l = weak.lock();
        if (ec || !l || l != d_link)
            return;
        const double now = monotonic_s();
        const link_health h = l->conn->health();
        if (h.bytes_acked != l->bytes_acked || h.unacked == 0) { // progress, or nothing left to acknowledge
            l->bytes_acked = h.bytes_acked;
            l->acked_at = now;
        }
        const double quiet = now - h.last_received;
        if (quiet > dead && (h.unacked == 0 || now - l->acked_at > dead)) {
            char why[128];
            snprintf(why, sizeof why, "nothing from the hub (not even a pong) and nothing acknowledged for %g s: "
                     "the link is dead", dead);
            l->conn->abort(why);
            return;
        }
        if (quiet > dead / 2)
            l->conn->ping();
        arm_watchdog(l);
    });
}

// ------------------------------------------------------------------ hub -> agent

void agent_transport::on_text(const std::shared_ptr<link>& l, std::string&& text)
{
    if (l != d_link)
        return;
    json msg;
    try {
        msg = wire::decode_hub_message(text, d_settings.max_text_bytes);
    } catch (const wire::protocol_error& e) {
        reply_error(std::string("bad message from hub: ") + e.what());
        return;
    }
    bool repeated = false;
    if (msg.contains("id")) {
        const json& id = msg["id"];
        const std::string key = wire::id_key(id);
        push_control(wire::ack(id));
        repeated = d_seen.count(key) > 0;
        if (!repeated) {
            if (d_seen_order.size() == SEEN_IDS) {
                d_seen.erase(d_seen_order.front());
                d_seen_order.pop_front();
            }
            d_seen_order.push_back(key);
            d_seen.insert(key);
        }
    }
    if (!repeated && msg["type"] == "ping")
        push_control(wire::pong(msg.contains("id") ? msg["id"] : json()));
    kick();
    if (repeated || msg["type"] == "ping")
        return;
    if (wire::is_tx_message(msg))
        msg["_seq"] = ++d_tx_messages;
    deliver(msg);
}

bool agent_transport::on_binary(const std::shared_ptr<link>&, const void* data, size_t bytes)
{
    {
        std::lock_guard<std::mutex> calls(d_callback_mutex);
        for (auto& [handle, u] : d_users)
            if (u.binary) {
                try {
                    return u.binary(data, bytes);
                } catch (const std::exception& e) {
                    d_logger.error("a block could not take a binary message: {}", e.what());
                    return true;
                }
            }
    }
    reply_error("binary frames from the hub are not understood by this agent (it has no TX)");
    return true;
}

void agent_transport::reply_error(const std::string& message)
{
    // The hub hears of every bad message; the log at most once a second (a hub can send many).
    const double now = monotonic_s();
    if (now - d_last_reply_log >= 1.0) {
        d_logger.warn("{}", message);
        d_last_reply_log = now;
    }
    push_control(wire::error(json(), message));
    kick();
}

// ------------------------------------------------------------------ writer (io thread)

void agent_transport::kick()
{
    auto l = d_link;
    if (!l || !l->open || l->writing || d_in_flight) // d_in_flight: a write of a link that ended has not come back
        return;
    std::unique_lock<std::mutex> lk(d_mutex);
    if (!d_control.empty()) {
        data_item item;
        item.text = std::move(d_control.front());
        d_control.pop_front();
        d_writing = true;
        lk.unlock();
        const bool heartbeat = item.text.is_null();
        if (heartbeat)
            item.text = build_heartbeat(); // fresh stats; a lost one is not sent again
        write_item(l, std::move(item), heartbeat ? origin::generated : origin::control);
        return;
    }
    if (d_data.empty()) {
        d_cond.notify_all();
        return;
    }
    data_item& next = d_data.front();
    if (next.kind != data_item::TEXT && !l->described && !d_current_info.is_null()) {
        // A new connection (perhaps to a restarted hub): describe the stream again before
        // the first frame or gap that goes out on it.
        data_item info;
        info.text = d_current_info;
        info.text["sample_index"] = next.index;
        d_writing = true;
        lk.unlock();
        l->described = true;
        write_item(l, std::move(info), origin::generated); // made again for the next link if lost
        return;
    }
    data_item item = std::move(next);
    d_data.pop_front();
    if (item.kind == data_item::FRAME) {
        const bool was_above = d_queued_samples > d_limit_samples / 2;
        d_queued_samples -= item.samples;
        d_queued_frames--;
        if (was_above && d_queued_samples <= d_limit_samples / 2)
            d_room.notify_all();
    }
    d_writing = true;
    lk.unlock();
    write_item(l, std::move(item), origin::data);
}

void agent_transport::write_item(const std::shared_ptr<link>& l, data_item&& item, origin from)
{
    d_in_flight = std::make_unique<data_item>(std::move(item));
    d_in_flight_origin = from;
    data_item& cur = *d_in_flight;
    if (cur.kind == data_item::TEXT) {
        if (from == origin::data && cur.text.is_object() && cur.text.value("type", "") == "stream_info") {
            d_current_info = cur.text;
            l->described = true;
        }
        write_text(l, cur.text);
    } else if (cur.kind == data_item::GAP) {
        write_text(l, wire::gap(cur.app_id, cur.index, cur.samples, cur.reason));
    } else {
        l->writing = true;
        l->conn->write(false, cur.fr.data.get(), cur.fr.bytes,
                       [this, l](boost::system::error_code ec, size_t) { on_written(l, !ec); });
    }
}

void agent_transport::write_text(const std::shared_ptr<link>& l, const json& msg)
{
    l->text_buf = wire::encode(msg);
    l->writing = true;
    l->conn->write(true, l->text_buf.data(), l->text_buf.size(),
                   [this, l](boost::system::error_code ec, size_t) { on_written(l, !ec); });
}

void agent_transport::on_written(const std::shared_ptr<link>& l, bool ok)
{
    // Runs for every write, also after its link ended: a write that completed counts as sent
    // even when the read side failed first.
    l->writing = false;
    {
        std::lock_guard<std::mutex> lk(d_mutex);
        if (d_in_flight) {
            if (!ok)
                account_failed_locked(std::move(*d_in_flight), d_in_flight_origin);
            else if (d_in_flight->kind == data_item::FRAME) {
                d_counters.frames_sent++;
                d_counters.samples_sent += d_in_flight->samples;
                d_counters.bytes_sent += d_in_flight->fr.bytes;
                const frame& fr = d_in_flight->fr;
                if (fr.first_at > 0) {
                    const double waited = monotonic_s() - 0.5 * (fr.first_at + fr.last_at);
                    double& avg = d_counters.write_latency_s;
                    avg = avg < 0 ? waited : avg + 0.05 * (waited - avg);
                }
            }
        }
        d_writing = false;
        d_cond.notify_all();
    }
    d_in_flight.reset();
    kick(); // the writer of the current link, if any (an old link's last write may end after a new link opened)
}

void agent_transport::account_failed_locked(data_item&& item, origin from)
{
    if (item.kind == data_item::FRAME)
        // The hub may never have had this frame: account for it as a gap, in order.
        drop_locked(item.index, item.samples, item.app_id, "disconnected", true);
    else if (from == origin::control)
        d_control.push_front(std::move(item.text)); // text is never lost
    else if (from == origin::data)
        d_data.push_front(std::move(item)); // a gap or a stream_info, in its place
}

} // namespace ria
} // namespace gr
