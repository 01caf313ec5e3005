/* The hub -> flowgraph jitter buffer of ria.websocket_source: the frames of TX sessions in the order
 * the hub sent them, with the place of each tx_configure among them, bounded in samples. The io
 * thread fills it (in the order of the connection), the block thread plays it out. */
#ifndef INCLUDED_RIA_TX_QUEUE_H
#define INCLUDED_RIA_TX_QUEUE_H

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace gr {
namespace ria {

struct tx_tag {
    uint64_t hub_index; //!< the session's hub sample it belongs on
    std::string key;    //!< tx_freq, tx_rate, tx_gain
    double value;
};

struct tx_queue_counters {
    uint64_t received = 0;   //!< samples of armed sessions taken from the hub (all sessions so far)
    uint64_t played = 0;     //!< of those, handed to the flowgraph
    uint64_t late_frames = 0;   //!< frames outside any session (after a stop, an underrun, for a refused start)
    uint64_t bad_frames = 0;    //!< frames whose length is not whole samples
    uint64_t queued = 0;        //!< samples waiting, all sessions
    uint64_t frames_in = 0;     //!< binary frames taken for a session
    uint64_t frames_out = 0;    //!< of those, played to their last sample
    //! Seconds from a frame's arrival to its first sample handed to the flowgraph, smoothed over
    //! about 20 frames; -1 before the first.
    double latency_s = -1;
};

class tx_queue
{
public:
    enum class intake { taken, full, outside_session, bad_length };

    //! values_per_sample: 2 for complex (interleaved float32 I/Q), 1 for float (audio).
    tx_queue(unsigned values_per_sample, uint64_t capacity_samples);

    // ---- io thread, in the connection's order
    //! A tx_start (its "_seq"): the frames that follow belong to that session.
    void on_start(uint64_t seq);
    //! A tx_stop: the frames that follow belong to no session.
    void on_stop();
    //! A tx_configure (its "_seq"): it applies from the intake session's next hub sample.
    void on_configure(uint64_t seq);
    //! The connection that brought the sessions is gone: none takes frames, and the active one
    //! (sent by a hub that may not know of it when it is back) is lost.
    void on_connection_lost();
    //! A binary frame. `full`: taken, but the queue is at its capacity; read no more until
    //! take_resume() says so.
    intake push(const void* data, size_t bytes);
    //! Samples already decoded from one binary frame (audio: s16, opus); the same as push().
    intake push_samples(const float* samples, size_t n);
    //! The session taking frames now (0: none).
    uint64_t intake_session() const;

    // ---- block thread
    //! Session `seq` plays from now on, holding at most `capacity` samples; false when it no longer
    //! takes frames (a tx_stop or another tx_start came after it).
    bool arm(uint64_t seq, uint64_t capacity);
    //! The handler refused session `seq`: its frames go.
    void refuse(uint64_t seq);
    //! The active session is over: its frames go, and it takes no more.
    void end();
    //! Tags for the tx_configure `seq`, at its place; false (and nothing scheduled) when that place
    //! is unknown (not of the active session, or forgotten). Until this or forget() is called for a
    //! tx_configure of the active session, nothing past its place plays (for at most
    //! DECISION_WAIT_S), so its tags can never come too late.
    bool schedule(uint64_t seq, const std::vector<tx_tag>& tags);
    void forget(uint64_t seq);
    static constexpr double DECISION_WAIT_S = 1.0;
    //! Up to `max` samples of the active session into `out`; `first` is the hub index of out[0];
    //! `tags` gets those scheduled in [first, first + n), a late one on out[0].
    size_t pop(float* out, size_t max, uint64_t& first, std::vector<tx_tag>& tags);
    //! Waits up to timeout_s for samples of the active session (or any change); true if there are.
    bool wait(double timeout_s);
    //! True once after the queue went below capacity while the reader was paused.
    bool take_resume();
    //! True once after on_connection_lost() found a session active (cleared by arm() and end()).
    bool take_lost();
    //! Wakes wait() (the block is stopping).
    void interrupt();

    bool active() const;
    tx_queue_counters counters() const;
    uint64_t capacity() const;

private:
    struct chunk {
        uint64_t session;
        uint64_t hub_index;
        std::vector<float> values;
        size_t pos = 0; // samples already played
        double arrived = 0; // monotonic seconds
    };
    intake push_locked(const float* samples, size_t n);
    static constexpr size_t MAX_MARKERS = 256;

    void drop_if_locked(bool (*pred)(const chunk&, uint64_t), uint64_t arg);

    const unsigned d_values;
    mutable std::mutex d_mutex;
    std::condition_variable d_cond;
    std::deque<chunk> d_chunks;
    uint64_t d_capacity;
    uint64_t d_queued = 0;
    bool d_paused = false;

    uint64_t d_intake = 0;          // session taking frames (0: none)
    uint64_t d_intake_received = 0; // its samples so far
    uint64_t d_active = 0;          // session playing (0: none)
    struct marker {
        uint64_t session, hub_index;
        double since; // monotonic seconds
    };
    std::map<uint64_t, marker> d_markers; // configure seq -> its place, until the handler decides
    //! Samples of the active session that may play now (up to the first undecided tx_configure).
    uint64_t playable_locked();
    std::vector<tx_tag> d_scheduled;                               // of the active session, by hub index
    uint64_t d_next_hub = 0;                                       // the active session's next hub index
    tx_queue_counters d_counters;
    bool d_interrupted = false;
    bool d_lost = false;
};

} // namespace ria
} // namespace gr

#endif
