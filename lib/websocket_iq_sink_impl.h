#ifndef INCLUDED_RIA_WEBSOCKET_IQ_SINK_IMPL_H
#define INCLUDED_RIA_WEBSOCKET_IQ_SINK_IMPL_H

#include "agent_transport.h"
#include "frame_assembler.h"
#include <gnuradio/ria/websocket_iq_sink.h>
#include <nlohmann/json.hpp>
#include <atomic>
#include <memory>
#include <mutex>

namespace gr {
namespace ria {

class websocket_iq_sink_impl : public websocket_iq_sink
{
public:
    using json = nlohmann::json;

    websocket_iq_sink_impl(const transport_settings& transport,
                           bool complex_input,
                           int64_t buffer_size,
                           wire::sample_format format,
                           bool drop,
                           double queue_seconds,
                           double sample_rate,
                           const json& autostart_app,
                           const std::vector<std::string>& hardware_names,
                           const std::string& agent_name,
                           int bitrate);
    ~websocket_iq_sink_impl() override;

    bool start() override;
    bool stop() override;
    int work(int noutput_items, gr_vector_const_void_star& input_items, gr_vector_void_star& output_items) override;

    bool connected() const override;
    bool streaming() const override { return d_streaming.load(); }
    std::string app_id() const override;
    std::string last_error() const override;
    uint64_t reconnects() const override { return counters().reconnects(); }
    size_t queue_depth() const override;
    uint64_t queue_samples() const override;
    uint64_t samples_produced() const override { return d_samples_produced.load(); }
    uint64_t samples_sent() const override { return counters().samples_sent; }
    uint64_t samples_dropped() const override { return counters().samples_dropped; }
    uint64_t frames_sent() const override { return counters().frames_sent; }
    uint64_t frames_dropped() const override { return counters().frames_dropped; }
    std::string stats_json() const override { return stats().dump(); }

private:
    // messages (block thread)
    void handle_cmd(const pmt::pmt_t& msg);
    void apply_cmd(const json& cmd);
    void handle_to_hub(const pmt::pmt_t& msg);
    void report(const std::string& message);
    void set_heartbeat_fields(const json& fields);

    // stream (block thread)
    void begin(const json& app_id);
    //! The assembler for a format, size and rate (float input: audio formats; opus: its frame)
    std::unique_ptr<frame_assembler> make_assembler(wire::sample_format f, int64_t size, double rate) const;
    //! A new rate, frequency or gain: cut the frame, announce the new stream before the next one.
    void change_stream(double rate, double freq, double gain);
    void set_app_id(const json& app_id);
    void end();
    void flush();
    void cut();
    void update_queue_limit();

    // io thread
    json heartbeat() const;
    json stats() const;

    std::shared_ptr<agent_transport> transport() const;
    transport_counters counters() const;

    const transport_settings d_settings;
    const unsigned d_values;
    const int d_bitrate;
    const bool d_drop;
    const double d_queue_seconds;
    const json d_autostart_app;
    const std::vector<std::string> d_hardware;
    const json d_agent;
    const pmt::pmt_t d_ctrl_port;

    std::unique_ptr<frame_assembler> d_assembler;
    std::vector<frame> d_batch; // frames completed since the last flush(), handed over together
    uint64_t d_sample_index = 0;
    double d_rate = 0, d_freq = 0, d_gain = 0;
    bool d_info_due = false;

    mutable std::mutex d_mutex; // d_transport and d_app_id, read from other threads
    std::shared_ptr<agent_transport> d_transport;
    int d_transport_handle = -1;
    json d_app_id;
    json d_heartbeat_fields; // set by other blocks through cmd "heartbeat"
    std::atomic<bool> d_streaming{ false };
    std::atomic<uint64_t> d_samples_produced{ 0 };
    std::atomic<int64_t> d_sdr_overflows{ 0 };
    std::atomic<double> d_started_at;
    std::atomic<double> d_audio_rate{ 0 }; // d_rate, for stats() on other threads
};

} // namespace ria
} // namespace gr

#endif
