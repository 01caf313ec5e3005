/* The agent's one WebSocket to the hub, shared by the blocks of one agent: an io thread, the
 * connection and its reconnects, heartbeats, the outbound queues with their drop accounting,
 * id de-duplication, and the counters the blocks report. */
#ifndef INCLUDED_RIA_AGENT_TRANSPORT_H
#define INCLUDED_RIA_AGENT_TRANSPORT_H

#include "frame_assembler.h"
#include "hub_url.h"
#include <gnuradio/logger.h>
#include <nlohmann/json.hpp>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <map>
#include <unordered_set>

namespace gr {
namespace ria {

struct transport_settings {
    std::string url; //!< one ws(s):// URL, or several separated by spaces or commas (tried in turn)
    std::string token;
    bool token_in_query = false;
    std::string ca_file;
    bool insecure = false;
    double heartbeat_interval = 30.0;
    size_t max_text_bytes = 64 * 1024;

    //! The dead-link timeout: two heartbeat intervals or 15 s, whichever is less.
    double dead_link_timeout() const;

    //! A block's connection arguments, checked (throws std::invalid_argument naming the bad one).
    static transport_settings checked(const std::string& url,
                                      const std::string& token,
                                      bool token_in_query,
                                      const std::string& ca_file,
                                      bool insecure,
                                      double heartbeat_interval);
};

struct transport_counters {
    uint64_t frames_sent = 0, samples_sent = 0, bytes_sent = 0;
    uint64_t frames_dropped = 0, samples_dropped = 0;
    uint64_t connections = 0;
    //! Seconds a frame's samples waited from work() to written on the socket (the midpoint of its
    //! first and last sample's arrival), smoothed over about 20 frames; -1 before the first.
    double write_latency_s = -1;
    uint64_t reconnects() const { return connections > 0 ? connections - 1 : 0; }
};

class agent_transport : public std::enable_shared_from_this<agent_transport>
{
public:
    using json = nlohmann::json;

    //! What a block hands the transport; both are called on the io thread, never after release().
    struct user {
        //! Builds the heartbeat; the first user that has one speaks for the agent.
        std::function<json()> heartbeat;
        //! Every valid hub message that is not a ping or a repeated id. TX messages (tx_start,
        //! tx_stop, tx_configure) carry "_seq": their place among the hub's messages, so a block
        //! that sees them here and a block that is told about them later agree on which is which.
        std::function<void(const json&)> receiver;
        //! Binary messages from the hub go to the first user that has this; false pauses reading
        //! until resume_reading() (the message itself was taken).
        std::function<bool(const void* data, size_t bytes)> binary;
        //! Adds this user's fields to every heartbeat (after the speaking user built it).
        std::function<void(json& heartbeat)> annotate;
        //! A connection that had opened has ended, after every message it brought was delivered.
        std::function<void()> connection_lost;
    };

    //! Checks the settings (throws std::invalid_argument naming the bad one); no network.
    static void validate(const transport_settings& s);
    //! A block begins using a transport: the one another block of this agent (same settings) is
    //! using now, else a new one, which starts its io thread and connects. Never throws for
    //! network trouble. `handle` identifies the user for release().
    static std::shared_ptr<agent_transport> acquire(const transport_settings& s, user u, int& handle);
    ~agent_transport();

    //! A block is done: its callbacks are removed (waiting for one that is running). The last
    //! user waits up to `drain_s` for the queues to empty, closes the connection (bounded), and
    //! stops the io thread. Returns within about drain_s + 0.5 s.
    void release(int handle, double drain_s);

    //! A text message ahead of all data (status, error, ...). Never blocks.
    void send_control(json msg);
    //! A text message behind the data already queued (stream_info).
    void send_in_order(json msg);
    //! Queues frames that follow each other from sample `first_index` on, under one lock; with
    //! `drop` set, a frame that finds the queue full is dropped instead (counted, and a gap goes out
    //! in its place). Empties `frames`; returns the samples they held.
    uint64_t send_frames(std::vector<frame>& frames, uint64_t first_index, const json& app_id, bool drop);
    //! A heartbeat now (something it reports has changed), ahead of all data.
    void send_heartbeat();
    //! Reads the hub's messages again after a `binary` callback paused them. Any thread.
    void resume_reading();
    //! Waits up to timeout_s until the data queue is below its limit (the lossless policy).
    bool wait_for_room(double timeout_s);
    //! True once nothing is queued or being written.
    bool wait_drained(double timeout_s);
    //! Most samples the data queue holds before it counts as full.
    void set_queue_limit(uint64_t samples);

    bool connected() const { return d_connected.load(); }
    std::string last_error() const;
    transport_counters counters() const;
    size_t queue_frames() const;
    uint64_t queue_samples() const;
    const transport_settings& settings() const { return d_settings; }

private:
    struct data_item;
    struct link;
    //! Where the item being written came from, so that a failed write puts it back (or not).
    enum class origin { control, data, generated };

    explicit agent_transport(const transport_settings& s);
    void start();
    void halt_io();
    json build_heartbeat();
    void deliver(const json& msg);
    void tell_connection_lost();

    // io thread
    void connect();
    //! The next attempt, after the backoff (and at least at_least_s).
    void schedule_reconnect(double at_least_s = 0);
    void on_open(const std::shared_ptr<link>& l);
    void on_text(const std::shared_ptr<link>& l, std::string&& text);
    bool on_binary(const std::shared_ptr<link>& l, const void* data, size_t bytes);
    void on_ended(const std::shared_ptr<link>& l, const std::string& why, bool quiet);
    void arm_heartbeat(const std::shared_ptr<link>& l);
    void arm_watchdog(const std::shared_ptr<link>& l);
    void kick();
    void write_text(const std::shared_ptr<link>& l, const json& msg);
    void on_written(const std::shared_ptr<link>& l, bool ok);
    void push_control(json msg);
    void reply_error(const std::string& message);
    void note_error(const std::string& message);
    void finish_close();

    // under d_mutex
    void drop_locked(uint64_t index, uint64_t samples, const json& app_id, const std::string& reason,
                     bool at_front);
    void account_failed_locked(data_item&& item, origin from);
    void write_item(const std::shared_ptr<link>& l, data_item&& item, origin from);

    const transport_settings d_settings;
    const std::vector<std::string> d_urls; // the hub nodes, tried in turn
    bool d_any_tls = false;
    struct io;
    std::unique_ptr<io> d_io; // io_context, TLS context, timers (Asio stays out of this header)
    std::thread d_thread;
    gr::logger d_logger;

    mutable std::mutex d_mutex;
    std::condition_variable d_cond; // connection state, drained
    std::condition_variable d_room; // the data queue fell to half its limit
    std::deque<json> d_control; // a null entry is "a heartbeat, built when sent"
    std::deque<data_item> d_data;
    uint64_t d_queued_samples = 0;
    size_t d_queued_frames = 0;
    uint64_t d_limit_samples = 1 << 20;
    bool d_writing = false;
    std::string d_last_error;
    transport_counters d_counters;
    std::map<int, user> d_users; // by handle
    int d_next_handle = 0;
    uint64_t d_control_dropped = 0;
    std::mutex d_callback_mutex; // held while a user's callback runs, so release() can wait it out

    // io thread only (and finish_close(), after the io thread has ended)
    std::shared_ptr<link> d_link;
    std::unique_ptr<data_item> d_in_flight; // the item being written, whichever link writes it
    origin d_in_flight_origin = origin::generated;
    double d_last_reply_log = -1e9;
    uint64_t d_tx_messages = 0; // the "_seq" of the last TX message delivered
    json d_current_info; // the stream_info that describes the data at the head of the queue
    unsigned d_attempt = 0; // failed rounds through d_urls, for the backoff
    size_t d_url_index = 0; // the URL of d_link, or of the next connection
    bool d_stopping = false;
    std::deque<std::string> d_seen_order;
    std::unordered_set<std::string> d_seen;

    std::atomic<bool> d_connected{ false };
};

} // namespace ria
} // namespace gr

#endif
