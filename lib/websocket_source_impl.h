#ifndef INCLUDED_RIA_WEBSOCKET_SOURCE_IMPL_H
#define INCLUDED_RIA_WEBSOCKET_SOURCE_IMPL_H

#include "agent_transport.h"
#include "opus_codec.h"
#include "tx_queue.h"
#include "wire.h"
#include <optional>
#include <gnuradio/ria/websocket_source.h>
#include <nlohmann/json.hpp>
#include <atomic>
#include <memory>
#include <mutex>

namespace gr {
namespace ria {

class websocket_source_impl : public websocket_source
{
public:
    using json = nlohmann::json;

    websocket_source_impl(const transport_settings& transport,
                          bool complex_output,
                          double queue_seconds,
                          double sample_rate,
                          double underrun_timeout,
                          bool idle_silence);
    ~websocket_source_impl() override;

    bool start() override;
    bool stop() override;
    int work(int noutput_items, gr_vector_const_void_star& input_items, gr_vector_void_star& output_items) override;

    bool connected() const override;
    std::string state() const override;
    std::string stats_json() const override { return stats().dump(); }

private:
    // io thread (transport callbacks)
    void on_hub(const json& msg);
    bool on_binary(const void* data, size_t bytes);
    void annotate(json& heartbeat) const;
    void tell_hub(const std::string& message, double& last_said);
    //! A tx_start: how the frames of its session are decoded (float output).
    void on_audio_start(const json& msg);
    //! One binary frame of an audio session: decoded into the queue; false pauses reading.
    //! A decoded session's frame: whether it was taken; nullopt when the frame is not one to decode.
    std::optional<bool> on_audio_binary(const void* data, size_t bytes);

    // block thread
    void handle_cmd(const pmt::pmt_t& msg);
    void apply_cmd(const json& cmd);
    void arm(const json& cmd);
    void end_session(const std::string& event, const std::string& reason);
    int fill(float* out, int noutput);
    //! An audio session's queue ran dry: PLC (opus) or silence for CONCEAL_S, then silence.
    int conceal(float* out, int noutput);
    int silence(float* out, int noutput);
    void apply_volume(float* out, size_t n) const;
    void tag_session_start(uint64_t offset);
    void publish(json event);
    enum class progress { when_due, if_moved, now };
    void send_progress(progress when);
    void resume_if_room();
    void set_state(const std::string& state);

    json stats() const;
    std::shared_ptr<agent_transport> transport() const;

    const transport_settings d_settings;
    const unsigned d_values;
    const double d_queue_seconds;
    const double d_default_rate;
    const double d_underrun_timeout;
    const bool d_audio;        // float output: a speaker
    const bool d_idle_silence; // zeros while no session plays
    const pmt::pmt_t d_status_port;
    tx_queue d_queue;

    // block thread only
    json d_app_id;
    std::string d_policy = "pause";
    double d_rate = 0, d_freq = 0, d_gain = 0;
    bool d_rate_known = false, d_freq_known = false, d_gain_known = false;
    bool d_sob_due = false, d_eob_due = false, d_transmitting = false, d_in_underrun = false;
    double d_empty_since = -1;
    std::vector<float> d_last_piece; // what "repeat" plays
    uint64_t d_played_at_arm = 0, d_received_at_arm = 0;
    uint64_t d_reported_played = 0;
    double d_reported_at = 0;
    // audio (block thread)
    std::shared_ptr<opus::decoder> d_play_decoder; // the active session's, for PLC
    float d_volume = 1.0f;
    uint64_t d_conceal_run = 0;    // samples concealed in this underrun
    std::vector<float> d_conceal;  // the rest of a concealment frame
    size_t d_conceal_pos = 0;

    // audio intake (io thread; the decoder also under d_codec_mutex for the block thread's PLC)
    std::mutex d_codec_mutex;
    uint64_t d_codec_seq = 0;
    wire::sample_format d_intake_format = wire::sample_format::f32;
    std::shared_ptr<opus::decoder> d_intake_decoder;
    std::vector<float> d_decoded;
    double d_opus_said = -1e9;
    std::atomic<uint64_t> d_audio_bad{ 0 }, d_audio_concealed{ 0 };
    std::atomic<double> d_play_rate{ 0 };

    mutable std::mutex d_mutex; // d_transport, d_state, d_state_app; read by the io thread
    std::shared_ptr<agent_transport> d_transport;
    int d_transport_handle = -1;
    std::string d_state = "idle";
    json d_state_app;
    std::atomic<uint64_t> d_underruns{ 0 };
    double d_bad_said = -1e9, d_late_said = -1e9; // io thread
};

} // namespace ria
} // namespace gr

#endif
