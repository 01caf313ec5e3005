#include "aec_impl.h"
#include "monotonic_clock.h"
#include "status_message.h"
#include <gnuradio/io_signature.h>
#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace gr {
namespace ria {

namespace {
const pmt::pmt_t port_cmd = pmt::mp("cmd");
const pmt::pmt_t port_status = pmt::mp("status");

// Where the located echo sits in the canceller's filter: this far in, so that an earlier arrival the
// tracker took for a reflection, or its millisecond of error, still fits. Not 5 ms: a room response that starts
// before its direct sound (pyroomacoustics' zero-phase high-pass puts -40 dB of the RT60 0.5 s room's response
// there) capped the filter at 36.7 dB (the least-squares best, bench/aec_ceiling.py), 42-43 dB with 8 ms.
constexpr double MARGIN_S = 0.009;
// How often the filter is asked how far the echo path moved (for the drift), and how well it must
// cancel for the answer to count.
constexpr double DRIFT_INTERVAL_S = 0.1;
constexpr double DRIFT_MIN_ERLE_DB = 3.0;
constexpr double DRIFT_MIN_WEIGHT = 0.3;
// and once the drift is known, the coherence a measurement needs: a near-end talker the suppressor did not
// hear moves the background filter incoherently (0.8 to 0.88 against 0.98 and more), and the fast loop took
// those for 10 ppm of drift
constexpr double KNOWN_DRIFT_MIN_WEIGHT = 0.9;
constexpr double MAX_DRIFT = 1000e-6;
// A filter that cancelled GOOD_DB and within JUMP_WATCH_S falls under LOST_DB has its echo searched
// for nearby (echo_shift_finder) every JUMP_CHECK_S: a delay jump is followed in a few tenths of a
// second instead of the tracker's second and more.
constexpr double GOOD_DB = 15.0;
constexpr double CONFIRM_DB = 3.0; // the filter cancels at the first lock's delay: the lock was right
constexpr double LOST_DB = 6.0;
constexpr double JUMP_WATCH_S = 1.5;
constexpr double JUMP_CHECK_S = 0.04;
// Input beyond full scale is clipped; beyond NOT_AUDIO (18 dB over) it is not audio at all, a
// corrupted sample: it is zeroed like NaN or Inf, for the frame it is in (clipped to full scale it
// would be a full-scale click that the filter adapts to).
constexpr float FULL_SCALE = 1.0f;
constexpr float NOT_AUDIO = 8.0f;
// The suppressor is given the echo power the filter's late partitions send below this (echo_suppressor.h).
constexpr double LATE_HZ = 1000.0;
// While the filter relearns, the suppressor is given the background's estimate when it is this much
// louder than the foreground's (at the first lock the foreground is empty, and an estimate of nothing
// suppresses nothing: the echo went through untouched for the first quarter second).
constexpr double BACKGROUND_LOUDER = 10.0;
// The loudspeaker's curve is learned only from blocks where the filter cancels at least this much (its
// coefficients are the room the curve's terms are sent through).
constexpr double NONLINEAR_MIN_ERLE_DB = 10.0;
constexpr double ERLE_SMOOTHING_S = 1.0;
constexpr double FAR_END_POWER = 1e-6; // -60 dBFS: a quieter reference frame does not count for ERLE
constexpr double MAX_TAIL_S = 2.0;
constexpr double MAX_DELAY_S = 2.0;
const char* const COMMAND_KEYS = "reset, tail, residual_suppression, noise_suppression";

bool has_only_factors_2_3_5(int n)
{
    for (int f : { 2, 3, 5 })
        while (n % f == 0)
            n /= f;
    return n == 1;
}

std::string fft_friendly_neighbours(int frame)
{
    int below = frame, above = frame;
    while (below > 1 && !has_only_factors_2_3_5(2 * below))
        below--;
    while (!has_only_factors_2_3_5(2 * above))
        above++;
    return std::to_string(below) + " or " + std::to_string(above);
}

std::string number(double v)
{
    std::ostringstream s;
    s << v;
    return s.str();
}

std::string check_tail(double tail, int rate, int frame)
{
    const double frame_s = double(frame) / rate;
    if (!std::isfinite(tail) || tail < frame_s || tail > MAX_TAIL_S)
        return "tail_length must be from one frame (" + number(frame_s) + " s) to " + number(MAX_TAIL_S) +
               " s, got " + number(tail);
    return "";
}

void check_parameters(int rate, int frame, double tail, double max_delay)
{
    if (rate < 8000 || rate > 48000)
        throw std::invalid_argument("ria.aec: sample_rate must be 8000 to 48000 Hz, got " +
                                    std::to_string(rate));
    const double frame_ms = 1000.0 * frame / rate;
    if (frame_ms < 5 || frame_ms > 50)
        throw std::invalid_argument("ria.aec: frame_size must be 5 to 50 ms (" + std::to_string(rate / 200) +
                                    " to " + std::to_string(rate / 20) + " samples at " +
                                    std::to_string(rate) + " Hz), got " + std::to_string(frame) + " (" +
                                    number(frame_ms) + " ms)");
    if (!has_only_factors_2_3_5(2 * frame))
        throw std::invalid_argument("ria.aec: frame_size " + std::to_string(frame) +
                                    " is not FFT-friendly (2 x frame_size may only have the prime "
                                    "factors 2, 3 and 5); try " +
                                    fft_friendly_neighbours(frame));
    const std::string tail_error = check_tail(tail, rate, frame);
    if (!tail_error.empty())
        throw std::invalid_argument("ria.aec: " + tail_error);
    if (!std::isfinite(max_delay) || max_delay < 0 || max_delay > MAX_DELAY_S)
        throw std::invalid_argument("ria.aec: max_delay must be 0 to " + number(MAX_DELAY_S) + " s, got " +
                                    number(max_delay));
}
} // namespace

aec::sptr aec::make(int sample_rate,
                    int frame_size,
                    double tail_length,
                    double max_delay,
                    bool residual_suppression,
                    bool noise_suppression)
{
    check_parameters(sample_rate, frame_size, tail_length, max_delay);
    return gnuradio::make_block_sptr<aec_impl>(
        sample_rate, frame_size, tail_length, max_delay, residual_suppression, noise_suppression);
}

aec_impl::aec_impl(int sample_rate,
                   int frame_size,
                   double tail_length,
                   double max_delay,
                   bool residual_suppression,
                   bool noise_suppression)
    : gr::sync_block("aec",
                     gr::io_signature::make(2, 2, sizeof(float)),
                     gr::io_signature::make(1, 1, sizeof(float))),
      d_rate(sample_rate),
      d_frame(frame_size),
      d_max_delay(max_delay),
      d_erle_keep(std::exp(-double(frame_size) / (ERLE_SMOOTHING_S * sample_rate))),
      d_tail(tail_length),
      d_residual_suppression(residual_suppression),
      d_noise_suppression(noise_suppression),
      d_drift(MAX_DRIFT),
      d_out16(frame_size),
      d_mic(frame_size),
      d_ref(frame_size),
      d_aligned(frame_size),
      d_err(frame_size),
      d_echo_estimate(frame_size),
      d_late(std::min(frame_size + 1, static_cast<int>(std::lround(LATE_HZ * 2 * frame_size / sample_rate))))
{
    set_output_multiple(frame_size);
    if (max_delay > 0) {
        d_tracker = std::make_unique<delay_tracker>(sample_rate, max_delay);
        d_shift_finder = std::make_unique<echo_shift_finder>(frame_size, sample_rate);
        // room to read back a whole filter's history at the largest delay (for re-alignment)
        d_aligner = std::make_unique<reference_aligner>(
            max_delay * sample_rate + (std::ceil(MAX_TAIL_S * sample_rate / frame_size) + 2) * frame_size,
            frame_size);
    }
    make_canceller();
    message_port_register_in(port_cmd);
    set_msg_handler(port_cmd, [this](const pmt::pmt_t& msg) { handle_cmd(msg); });
    message_port_register_out(port_status);
}

aec_impl::~aec_impl()
{
    if (d_pre)
        speex_preprocess_state_destroy(d_pre);
}

void aec_impl::make_canceller()
{
    const int partitions = std::max(1, static_cast<int>(std::ceil(d_tail * d_rate / d_frame)));
    d_filter = std::make_unique<echo_filter>(d_frame, partitions, d_rate);
    d_suppressor = std::make_unique<echo_suppressor>(d_frame, d_rate);
    d_nonlinear = std::make_unique<nonlinear_echo>(d_frame, d_rate);
    d_history.assign(static_cast<size_t>(partitions + 1) * d_frame, 0.0f);
    d_drift.interrupt();
    make_preprocessor();
}

void aec_impl::make_preprocessor()
{
    if (d_pre)
        speex_preprocess_state_destroy(d_pre);
    d_pre = nullptr;
    if (!d_noise_suppression)
        return;
    d_pre = speex_preprocess_state_init(d_frame, d_rate);
    int on = 1;
    speex_preprocess_ctl(d_pre, SPEEX_PREPROCESS_SET_DENOISE, &on);
}

void aec_impl::clear()
{
    if (d_tracker)
        d_tracker->reset();
    if (d_aligner)
        d_aligner->reset();
    if (d_shift_finder)
        d_shift_finder->reset();
    d_drift.reset();
    d_offset = d_lead = 0;
    d_frames = 0;
    d_last_good_frame = 0;
    d_talk_heard = false;
    d_filter->reset();
    d_suppressor->reset();
    d_nonlinear->reset();
    make_preprocessor();
    d_mic_power = d_out_power = 0;
}

bool aec_impl::start()
{
    std::lock_guard<std::mutex> lock(d_mutex);
    d_next_status_s = monotonic_s() + 1.0;
    return true;
}

// NaN, Inf and samples far beyond full scale become silence, and louder than full scale is clipped,
// so nothing a bad sample does outlasts its frame.
void aec_impl::sanitize(const float* in, float* out)
{
    for (int i = 0; i < d_frame; i++) {
        const float x = in[i];
        out[i] = std::abs(x) <= NOT_AUDIO ? std::clamp(x, -FULL_SCALE, FULL_SCALE) : 0.0f; // NaN fails <=
    }
}

int aec_impl::work(int noutput_items,
                   gr_vector_const_void_star& input_items,
                   gr_vector_void_star& output_items)
{
    const float* mic = static_cast<const float*>(input_items[0]);
    const float* ref = static_cast<const float*>(input_items[1]);
    float* out = static_cast<float*>(output_items[0]);
    std::lock_guard<std::mutex> lock(d_mutex);
    for (int f = 0; f < noutput_items; f += d_frame) {
        sanitize(mic + f, d_mic.data());
        sanitize(ref + f, d_ref.data());
        const float* far = d_ref.data();
        if (d_tracker) {
            d_tracker->push(d_mic.data(), d_ref.data(), d_frame);
            d_aligner->push(d_ref.data(), d_frame);
            const auto change = d_tracker->take_change();
            if (change != delay_tracker::change::none) {
                if (change != delay_tracker::change::lock && d_filter->erle_db() >= GOOD_DB)
                    d_tracker->refuse(); // the filter cancels well where the echo was: keep that delay
                else
                    realign(change);
            }
            const uint64_t start = d_aligner->written() - d_frame;
            d_aligner->read(start, d_offset, d_drift.step(), d_aligned.data(), d_frame);
            d_offset = std::clamp(d_offset + d_drift.step() * d_frame, 0.0, d_max_delay * d_rate);
            d_tracker->expect(d_offset + d_lead);
            far = d_aligned.data();
        }
        cancel_frame(d_mic.data(), far, out + f);
        d_frames++;
        if (d_tracker)
            find_jump();
        if (d_tracker && d_frames % std::max<uint64_t>(1, std::lround(DRIFT_INTERVAL_S * d_rate / d_frame)) == 0)
            follow_drift();
    }
    maybe_publish_status();
    return noutput_items;
}

// The tracker located the echo (first lock), saw it jump, or relocated it: the reference is read MARGIN_S
// ahead of it from now on. The filter keeps what it learned: at a jump the echo path is the same, only
// later or earlier, and reading the reference by as much puts it back where the filter has it; at the
// first lock and at a relocation the filter had learned the echo where it was (a relocation comes while
// the filter cancels: the delay was wrong, the echo did not move), so its coefficients move with the reference.
void aec_impl::realign(delay_tracker::change change)
{
    const double delay = d_tracker->delay();
    const double old_offset = d_offset;
    const double echo_was = d_offset + d_lead; // where the filter believed the echo to be
    d_offset = std::clamp(std::round(delay - MARGIN_S * d_rate), 0.0, d_max_delay * d_rate);
    d_lead = delay - d_offset;
    const bool first = change == delay_tracker::change::lock;
    const double echo_moved = change == delay_tracker::change::jump ? delay - echo_was : 0.0;
    const int move = static_cast<int>(std::lround((d_offset - old_offset) - echo_moved));
    if (move != 0)
        d_filter->move(move);
    // the filter's reference history, as read at the new offset
    const int blocks = d_filter->partitions() + 1;
    const uint64_t end = d_aligner->written() - d_frame; // this frame is read after
    const uint64_t span = static_cast<uint64_t>(blocks) * d_frame;
    if (end >= span) {
        const double step = d_drift.step();
        d_aligner->read(end - span, d_offset - step * span, step, d_history.data(), static_cast<int>(span));
        d_nonlinear->shape_in_place(d_history.data(), span);
        d_filter->reload(d_history.data());
    }
    if (first)
        d_filter->relearn();
    d_drift.interrupt();
    d_nonlinear->realigned();
    d_shift_finder->reset(); // its window holds estimates made at the old alignment
}

void aec_impl::find_jump()
{
    d_shift_finder->push(d_mic.data(), d_filter->estimate());
    const double erle = d_filter->erle_db();
    if (erle >= CONFIRM_DB && d_tracker->locked())
        d_tracker->confirm();
    // a filter that cancels, or that never cancelled well (nothing learned to keep at the old delay), holds
    // the echo where it is: a change of delay is the tracker's correction, not a move of the echo
    d_tracker->cancelling(erle >= LOST_DB || d_last_good_frame == 0);
    if (erle >= GOOD_DB)
        d_last_good_frame = d_frames;
    const auto frames_of = [this](double s) { return std::max<uint64_t>(1, std::lround(s * d_rate / d_frame)); };
    if (!d_tracker->locked() || erle >= LOST_DB || d_last_good_frame == 0 ||
        d_frames - d_last_good_frame > frames_of(JUMP_WATCH_S) || d_frames % frames_of(JUMP_CHECK_S) != 0)
        return;
    const int moved = d_shift_finder->find();
    if (moved == 0)
        return;
    d_tracker->jump_to(d_offset + d_lead + moved);
    realign(delay_tracker::change::jump);
}

void aec_impl::follow_drift()
{
    double weight = 0;
    const double shift = d_filter->shift(weight);
    const bool talk = d_talk_heard; // the background learns from the talker too: its movement is not the drift's
    d_talk_heard = false;
    if (d_offset < reference_aligner::min_offset()) {
        d_drift.reset(); // an echo this close to its reference is read whole samples apart: not followed
        return;
    }
    if (weight < (d_drift.known() ? KNOWN_DRIFT_MIN_WEIGHT : DRIFT_MIN_WEIGHT) || !d_filter->background_converged(DRIFT_MIN_ERLE_DB) || talk) {
        d_drift.interrupt();
        return;
    }
    d_drift.measure(shift, std::lround(DRIFT_INTERVAL_S * d_rate / d_frame) * double(d_frame));
}

const float* aec_impl::suppressor_estimate() const
{
    const float* fore = d_echo_estimate.data();
    if (!d_filter->relearning())
        return fore;
    const float* back = d_filter->background_estimate();
    double ff = 0, bb = 0;
    for (int i = 0; i < d_frame; i++) {
        ff += double(fore[i]) * fore[i];
        bb += double(back[i]) * back[i];
    }
    return bb > BACKGROUND_LOUDER * ff ? back : fore;
}

void aec_impl::cancel_frame(const float* mic, const float* far, float* out)
{
    d_filter->process(d_nonlinear->shape(far), mic, d_err.data(), d_echo_estimate.data());
    double far_power = 0, mic_power = 0, out_power = 0;
    for (int i = 0; i < d_frame; i++) {
        far_power += double(far[i]) * far[i];
        mic_power += double(mic[i]) * mic[i];
    }
    const bool far_active = far_power > FAR_END_POWER * d_frame;
    if (d_residual_suppression) {
        // the late residual only once the filter has learned the path (while it relearns its coefficients are not it)
        const bool late = !d_filter->relearning();
        if (late)
            d_filter->late_echo(static_cast<int>(d_late.size()), d_late.data());
        d_suppressor->process(d_err.data(), suppressor_estimate(), far_active, d_filter->relearning(), out,
                              d_filter->tail_power(d_suppressor->low_bins()), late ? d_late.data() : nullptr,
                              late ? static_cast<int>(d_late.size()) : 0);
        d_talk_heard = d_talk_heard || d_suppressor->near_talking();
    }
    // the curve learns while the filter cancels (its coefficients are the room the curve's terms go through) and
    // no near-end talker is heard. Not only outside relearning: the foreground of a loudspeaker that saturates hard
    // never cancels the 15 dB that ends it, and the curve was learned only from 16 s on (tanh(6 x): 25 dB, not 33).
    const bool usable = far_active && !(d_residual_suppression && d_suppressor->near_talking()) &&
                        d_filter->erle_db() >= NONLINEAR_MIN_ERLE_DB;
    d_nonlinear->learn(far, d_err.data(), d_filter->estimate(), d_filter->foreground(), usable);
    if (!d_residual_suppression)
        std::copy(d_err.begin(), d_err.end(), out);
    if (d_pre) {
        for (int i = 0; i < d_frame; i++)
            d_out16[i] = static_cast<int16_t>(std::lround(std::clamp(out[i] * 32768.0f, -32768.0f, 32767.0f)));
        speex_preprocess_run(d_pre, d_out16.data());
        for (int i = 0; i < d_frame; i++)
            out[i] = d_out16[i] / 32768.0f;
    }
    for (int i = 0; i < d_frame; i++)
        out_power += double(out[i]) * out[i];
    if (far_active) {
        d_mic_power = d_erle_keep * d_mic_power + (1 - d_erle_keep) * mic_power;
        d_out_power = d_erle_keep * d_out_power + (1 - d_erle_keep) * out_power;
    }
}

void aec_impl::maybe_publish_status()
{
    const double now = monotonic_s();
    if (now < d_next_status_s)
        return;
    d_next_status_s = now + 1.0;
    const bool locked = d_tracker && d_tracker->locked();
    pmt::pmt_t msg = status_dict("aec",
                                 { { "locked", pmt::from_bool(locked) },
                                   { "drift_ppm", pmt::from_double(drift_ppm_unlocked()) },
                                   { "erle_db", pmt::from_double(erle_db_unlocked()) },
                                   { "jumps", pmt::from_uint64(d_tracker ? d_tracker->jumps() : 0) },
                                   { "nonlinear", pmt::from_bool(d_nonlinear->active()) } });
    if (locked)
        msg = with_field(msg, "delay", pmt::from_double(delay_unlocked()));
    message_port_pub(port_status, msg);
}

double aec_impl::delay_unlocked() const
{
    if (!d_tracker || !d_tracker->locked())
        return 0.0;
    return (d_offset + d_lead) / d_rate;
}

double aec_impl::drift_ppm_unlocked() const
{
    return d_tracker && d_drift.known() ? -d_drift.step() * 1e6 : 0.0;
}

double aec_impl::erle_db_unlocked() const
{
    return d_out_power > 0 ? 10.0 * std::log10(d_mic_power / d_out_power) : 0.0;
}

bool aec_impl::delay_locked() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_tracker && d_tracker->locked();
}

double aec_impl::delay() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return delay_unlocked();
}

double aec_impl::drift_ppm() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return drift_ppm_unlocked();
}

double aec_impl::erle_db() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return erle_db_unlocked();
}

bool aec_impl::loudspeaker_nonlinear() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_nonlinear->active();
}

uint64_t aec_impl::delay_jumps() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_tracker ? d_tracker->jumps() : 0;
}

void aec_impl::post_cmd(const char* key, const pmt::pmt_t& value)
{
    _post(port_cmd, pmt::dict_add(pmt::make_dict(), pmt::mp(key), value));
}

void aec_impl::set_tail_length(double seconds) { post_cmd("tail", pmt::from_double(seconds)); }
void aec_impl::set_residual_suppression(bool on) { post_cmd("residual_suppression", pmt::from_bool(on)); }
void aec_impl::set_noise_suppression(bool on) { post_cmd("noise_suppression", pmt::from_bool(on)); }
void aec_impl::reset() { post_cmd("reset", pmt::PMT_T); }

void aec_impl::report_error(const std::string& key, const pmt::pmt_t& value, const std::string& message)
{
    d_logger->warn("{}", message);
    message_port_pub(port_status, error_status(key, value, message));
}

void aec_impl::handle_cmd(const pmt::pmt_t& msg)
{
    if (!pmt::is_dict(msg) || pmt::is_null(msg)) {
        report_error("cmd", msg, "cmd: expected a dict with any of " + std::string(COMMAND_KEYS) + ", got " +
                                     pmt::write_string(msg));
        return;
    }
    std::lock_guard<std::mutex> lock(d_mutex);
    for (pmt::pmt_t items = pmt::dict_items(msg); pmt::is_pair(items); items = pmt::cdr(items)) {
        const pmt::pmt_t item = pmt::car(items);
        const std::string key = pmt::is_symbol(pmt::car(item)) ? pmt::symbol_to_string(pmt::car(item))
                                                               : pmt::write_string(pmt::car(item));
        apply(key, pmt::cdr(item));
    }
}

bool aec_impl::apply(const std::string& key, const pmt::pmt_t& value)
{
    if (key == "reset") {
        clear();
        return true;
    }
    if (key == "tail") {
        if (!pmt::is_number(value) || pmt::is_complex(value)) {
            report_error(key, value, "cmd tail: expected seconds as a number, got " + pmt::write_string(value));
            return false;
        }
        const std::string error = check_tail(pmt::to_double(value), d_rate, d_frame);
        if (!error.empty()) {
            report_error(key, value, "cmd tail: " + error.substr(error.find("must")));
            return false;
        }
        d_tail = pmt::to_double(value);
        make_canceller();
        if (d_tracker && d_tracker->locked())
            d_filter->reload(d_history.data()); // zeros: the new filter starts from nothing
        return true;
    }
    if (key == "residual_suppression" || key == "noise_suppression") {
        if (!pmt::is_bool(value)) {
            report_error(key, value, "cmd " + key + ": expected true or false, got " + pmt::write_string(value));
            return false;
        }
        (key == "residual_suppression" ? d_residual_suppression : d_noise_suppression) = pmt::to_bool(value);
        make_preprocessor();
        return true;
    }
    report_error(key, value, "cmd: unknown key '" + key + "'; known: " + COMMAND_KEYS);
    return false;
}

} // namespace ria
} // namespace gr
