/* -*- c++ -*- */
/*
 * gr-ria: the hub -> flowgraph stream (TX IQ, speaker audio) on the agent's WebSocket.
 */
#ifndef INCLUDED_RIA_WEBSOCKET_SOURCE_H
#define INCLUDED_RIA_WEBSOCKET_SOURCE_H

#include <gnuradio/ria/api.h>
#include <gnuradio/sync_block.h>
#include <string>

namespace gr {
namespace ria {

/*!
 * \brief Plays what a hub sends in a TX session (docs/protocol.md §6) into the flowgraph.
 * \ingroup ria
 *
 * \details
 * Rides on the agent's one connection: a ria.websocket_iq_sink with the same URL, token and TLS
 * settings shares it (a source alone makes its own). Binary frames of a session go into a queue of
 * \p queue_seconds of signal; when it is full the block stops reading the connection (TCP
 * back-pressure), and it reports its progress to the hub (`tx_progress`) so that a hub that
 * listens never fills it.
 *
 * Sessions are driven through `cmd` by the agent's control handler: `arm` {seq, app_id,
 * sample_rate, center_frequency, gain, underrun_policy}, `refuse` {seq}, `stop`, `configure`
 * {seq, tags: {tx_freq, tx_rate, tx_gain}} or {seq, refused: true}, where seq is the "_seq" the
 * transport gave the tx_* message. The first sample of a session is tagged `tx_sob` (and
 * `tx_freq`, `tx_rate`, `tx_gain` when known); a tx_configure's tags land on the first sample the
 * hub sent after it; the last sample of a burst (stop, underrun with policy pause) is a zero
 * tagged `tx_eob`. With an empty queue for \p underrun_timeout after the session began: policy
 * "pause" ends the session, "zero" plays zeros, "repeat" the last frame, one frame at a time.
 *
 * Float output (a speaker, docs/protocol.md §8): a session's `arm` also carries sample_format
 * (f32, s16 or opus: as the tx_start's radio_config says, which the block reads to decode the
 * frames as they come) and volume (dB). Opus packets are decoded one per binary frame; one libopus
 * cannot decode is dropped, counted and reported (an `error` to the hub at most once a second).
 * With underrun_policy "zero" an empty queue is concealed (Opus PLC, silence for f32/s16) for
 * 100 ms, then silence, and the session goes on.
 *
 * \p idle_output "silence": with no session playing (idle, armed, between and after sessions)
 * the block outputs zeros as fast as its downstream takes them (a sound card, a throttle), so a
 * speaker and an echo canceller's reference fed from it never stop and stay sample-aligned.
 * "nothing": it outputs nothing then (a radio's TX stops). "auto": silence for float output,
 * nothing for complex.
 *
 * Message output `status`: dicts with an "event": armed, stale (an arm for a session that was
 * stopped or replaced), transmitting, underrun, ended.
 */
class RIA_API websocket_source : virtual public gr::sync_block
{
public:
    typedef std::shared_ptr<websocket_source> sptr;

    /*!
     * \param url ws:// or wss:// URL of the hub's agent endpoint
     * \param token the agent's bearer token (never logged)
     * \param output_type "complex" (IQ, 8 bytes a sample on the wire) or "float" (audio, 4)
     * \param queue_seconds seconds of signal the queue holds (at the session's rate)
     * \param sample_rate the rate for the queue before a session names one (0: 1 MS/s)
     * \param underrun_timeout seconds without a sample, once a session plays, that make an underrun
     * \param heartbeat_interval seconds between heartbeats (as the sink's, to share its connection)
     * \param ca_file CA certificate for a wss:// hub; empty: the system's trust store
     * \param insecure skip TLS verification (testing only)
     * \param token_in_query send the token as ?token= instead of the Authorization header
     * \param idle_output "auto", "silence" or "nothing": what plays with no session
     */
    static sptr make(const std::string& url,
                     const std::string& token,
                     const std::string& output_type,
                     double queue_seconds,
                     double sample_rate,
                     double underrun_timeout,
                     double heartbeat_interval,
                     const std::string& ca_file,
                     bool insecure,
                     bool token_in_query,
                     const std::string& idle_output = "auto");

    virtual bool connected() const = 0;
    //! "idle", "armed", "transmitting"
    virtual std::string state() const = 0;
    //! JSON: received, played, underruns, late_frames, bad_frames, queued, queue_samples; float
    //! output adds audio_frames_received, audio_frames_played, audio_frames_concealed,
    //! audio_frames_bad, speaker_queue_ms, speaker_latency_ms
    virtual std::string stats_json() const = 0;
};

} // namespace ria
} // namespace gr

#endif
