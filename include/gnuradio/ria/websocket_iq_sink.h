/* -*- c++ -*- */
/*
 * gr-ria: the agent's WebSocket to the hub, as a sink of IQ (or audio) samples.
 */
#ifndef INCLUDED_RIA_WEBSOCKET_IQ_SINK_H
#define INCLUDED_RIA_WEBSOCKET_IQ_SINK_H

#include <gnuradio/ria/api.h>
#include <gnuradio/sync_block.h>
#include <string>
#include <vector>

namespace gr {
namespace ria {

/*!
 * \brief Streams samples to a hub over one WebSocket and hands the hub's messages to the flowgraph.
 * \ingroup ria
 *
 * \details
 * Speaks the agent side of the RIA Hub protocol (docs/protocol.md): Bearer (or ?token=) auth,
 * a heartbeat first on every connection and then every \p heartbeat_interval, WebSocket
 * pings that declare a silent link dead after min(2 heartbeat intervals, 15 s), reconnects
 * with full-jitter backoff, acks and de-duplication of message ids, TLS with verification.
 *
 * While a session streams, every binary frame holds exactly \p buffer_size samples in
 * cf32, cs16 or cs8 (complex input) or f32, s16 (float input: audio, docs/protocol.md §8); with
 * opus (float input) a frame is one Opus packet of 20 ms whatever \p buffer_size, and
 * sample_index counts decoded samples. A frame is cut at an `rx_freq` / `rx_rate` / `rx_gain` tag whose value
 * changes, and a `stream_info` goes before the first frame after every change and after every
 * reconnect.
 *
 * \p overflow "drop": a queue of \p queue_seconds of signal; when full, frames are dropped,
 * counted, and a `gap` goes where they were. "block": the flowgraph waits (lossless).
 *
 * Message inputs: `cmd` (stream, app_id, buffer_size, sample_format, sample_rate,
 * center_frequency, gain, sdr_overflows), `to_hub` (dicts sent to the hub as JSON).
 * Message output: `ctrl` (every valid hub message that is not a ping or a repeat).
 */
class RIA_API websocket_iq_sink : virtual public gr::sync_block
{
public:
    typedef std::shared_ptr<websocket_iq_sink> sptr;

    /*!
     * \param url ws:// or wss:// URL of the hub's agent endpoint
     * \param token the agent's bearer token (never logged)
     * \param input_type "complex" (IQ) or "float" (audio)
     * \param buffer_size samples per binary frame
     * \param sample_format complex input: "cf32", "cs16" or "cs8"; float input: "f32", "s16" or
     *        "opus" (cf32, cs16, cs8 are taken as f32, s16, s16 for .grc files saved before)
     * \param overflow "drop" or "block"
     * \param queue_seconds seconds of signal the send queue holds (at 1 MS/s while the rate is unknown)
     * \param sample_rate the stream's rate for stream_info until an rx_rate tag or a cmd says
     *        otherwise (0: unknown; set it for audio, which carries no tags)
     * \param heartbeat_interval seconds between heartbeats
     * \param autostart stream at once with \p app_id, without waiting for the hub
     * \param app_id session id for \p autostart
     * \param hardware_names device names for the heartbeat
     * \param ca_file CA certificate for a wss:// hub; empty: the system's trust store
     * \param insecure skip TLS verification (testing only)
     * \param token_in_query send the token as ?token= instead of the Authorization header
     * \param agent_name this agent's name in the heartbeat
     * \param bitrate Opus bit rate (bit/s, 6000 to 256000) for sample_format "opus"
     */
    static sptr make(const std::string& url,
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
                     int bitrate = 32000);

    virtual bool connected() const = 0;
    virtual bool streaming() const = 0;
    //! The session's app_id (as JSON text) while streaming, else "".
    virtual std::string app_id() const = 0;
    //! The last connection problem, in words ("" while connected).
    virtual std::string last_error() const = 0;
    virtual uint64_t reconnects() const = 0;
    //! Frames and samples waiting to be sent.
    virtual size_t queue_depth() const = 0;
    virtual uint64_t queue_samples() const = 0;
    //! Samples handed to the sink while streaming; always samples_sent + samples_dropped
    //! once the queue is empty (plus a partial frame not yet cut).
    virtual uint64_t samples_produced() const = 0;
    virtual uint64_t samples_sent() const = 0;
    virtual uint64_t samples_dropped() const = 0;
    virtual uint64_t frames_sent() const = 0;
    virtual uint64_t frames_dropped() const = 0;
    //! The heartbeat's `stats` object as JSON text.
    virtual std::string stats_json() const = 0;
};

} // namespace ria
} // namespace gr

#endif
