#ifndef INCLUDED_RIA_AEC_IMPL_H
#define INCLUDED_RIA_AEC_IMPL_H

#include "delay_tracker.h"
#include "drift_follower.h"
#include "echo_filter.h"
#include "echo_shift_finder.h"
#include "echo_suppressor.h"
#include "nonlinear_echo.h"
#include "reference_aligner.h"
#include <gnuradio/ria/aec.h>
#include <speex/speex_preprocess.h>
#include <memory>
#include <mutex>

namespace gr {
namespace ria {

class aec_impl : public aec
{
public:
    aec_impl(int sample_rate,
             int frame_size,
             double tail_length,
             double max_delay,
             bool residual_suppression,
             bool noise_suppression);
    ~aec_impl() override;

    bool start() override;
    int work(int noutput_items,
             gr_vector_const_void_star& input_items,
             gr_vector_void_star& output_items) override;

    void set_tail_length(double seconds) override;
    void set_residual_suppression(bool on) override;
    void set_noise_suppression(bool on) override;
    void reset() override;

    bool delay_locked() const override;
    double delay() const override;
    double drift_ppm() const override;
    double erle_db() const override;
    uint64_t delay_jumps() const override;
    bool loudspeaker_nonlinear() const override;

private:
    void handle_cmd(const pmt::pmt_t& msg);
    bool apply(const std::string& key, const pmt::pmt_t& value);
    void report_error(const std::string& key, const pmt::pmt_t& value, const std::string& message);
    void post_cmd(const char* key, const pmt::pmt_t& value);

    void make_canceller();
    void make_preprocessor();
    void clear();
    void sanitize(const float* in, float* out);
    void realign(delay_tracker::change change);
    void follow_drift();
    void find_jump();
    void cancel_frame(const float* mic, const float* far, float* out);
    const float* suppressor_estimate() const;
    void maybe_publish_status();
    double delay_unlocked() const;
    double drift_ppm_unlocked() const;
    double erle_db_unlocked() const;

    const int d_rate;
    const int d_frame;
    const double d_max_delay;
    const double d_erle_keep; // per-frame weight of the old power in the ERLE estimate (1 s memory)
    double d_tail;
    bool d_residual_suppression;
    bool d_noise_suppression;

    mutable std::mutex d_mutex;
    SpeexPreprocessState* d_pre = nullptr;
    std::unique_ptr<echo_filter> d_filter;
    std::unique_ptr<echo_suppressor> d_suppressor;
    std::unique_ptr<nonlinear_echo> d_nonlinear; // the saturating loudspeaker's curve, before the filter
    std::unique_ptr<delay_tracker> d_tracker;
    std::unique_ptr<reference_aligner> d_aligner;
    std::unique_ptr<echo_shift_finder> d_shift_finder;
    uint64_t d_last_good_frame = 0; // the last frame the filter cancelled well (for the shift finder)
    drift_follower d_drift;
    bool d_talk_heard = false; // the suppressor heard a near-end talker since the last drift measurement

    uint64_t d_frames = 0; // frames processed since start or reset
    double d_offset = 0;   // reference read offset (samples) at the next frame's first sample
    double d_lead = 0;     // the echo's delay minus d_offset when it was last located

    std::vector<int16_t> d_out16;
    std::vector<float> d_mic, d_ref, d_aligned, d_err, d_echo_estimate, d_history;
    std::vector<float> d_late; // per bin below LATE_HZ, echo_filter::late_echo()
    double d_mic_power = 0, d_out_power = 0;
    double d_next_status_s = 0;
};

} // namespace ria
} // namespace gr

#endif
