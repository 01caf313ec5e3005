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

// Where the tracked echo sits in the canceller's filter. Moving the reference makes the canceller
// learn the echo path again, so it moves only when the echo leaves [MIN_LEAD_S, MAX_LEAD_S] (it is
// about to fall before the filter starts, or wastes its tail), and then puts it MARGIN_S in, so that an
// arrival the tracker took for a reflection still fits. Measurements that take turns between two arrivals
// of one echo stay inside the window. Once the drift is known the reference follows it.
constexpr double MARGIN_S = 0.005;
constexpr double MIN_LEAD_S = 0.001;
constexpr double MAX_LEAD_S = 0.02;
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

// Sum of squares of 16-bit samples, on the -1..1 scale. Summed as integers, which (unlike a float sum)
// the compiler may reorder into SIMD lanes.
double energy(const int16_t* x, int n)
{
    int64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += int32_t(x[i]) * x[i];
    return static_cast<double>(sum) / (32768.0 * 32768.0);
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
      d_offset(reference_aligner::min_offset()),
      d_mic16(frame_size),
      d_ref16(frame_size),
      d_out16(frame_size),
      d_aligned(frame_size)
{
    set_output_multiple(frame_size);
    if (max_delay > 0) {
        d_tracker = std::make_unique<delay_tracker>(sample_rate, max_delay);
        d_aligner = std::make_unique<reference_aligner>(max_delay * sample_rate, frame_size);
    }
    make_canceller();
    message_port_register_in(port_cmd);
    set_msg_handler(port_cmd, [this](const pmt::pmt_t& msg) { handle_cmd(msg); });
    message_port_register_out(port_status);
}

aec_impl::~aec_impl() { free_canceller(); }

void aec_impl::free_canceller()
{
    if (d_pre)
        speex_preprocess_state_destroy(d_pre);
    if (d_echo)
        speex_echo_state_destroy(d_echo);
    d_pre = nullptr;
    d_echo = nullptr;
}

void aec_impl::make_canceller()
{
    free_canceller();
    d_echo = speex_echo_state_init(d_frame, static_cast<int>(std::lround(d_tail * d_rate)));
    int rate = d_rate;
    speex_echo_ctl(d_echo, SPEEX_ECHO_SET_SAMPLING_RATE, &rate);
    make_preprocessor();
}

void aec_impl::make_preprocessor()
{
    if (d_pre)
        speex_preprocess_state_destroy(d_pre);
    d_pre = nullptr;
    if (!d_residual_suppression && !d_noise_suppression)
        return;
    // The preprocessor applies no gain at all unless "denoise" is on, so it is on for both uses;
    // residual echo alone keeps a 0 dB noise floor, so that stationary noise passes untouched.
    d_pre = speex_preprocess_state_init(d_frame, d_rate);
    int on = 1;
    speex_preprocess_ctl(d_pre, SPEEX_PREPROCESS_SET_DENOISE, &on);
    if (!d_noise_suppression) {
        int zero_db = 0;
        speex_preprocess_ctl(d_pre, SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, &zero_db);
    }
    if (d_residual_suppression)
        speex_preprocess_ctl(d_pre, SPEEX_PREPROCESS_SET_ECHO_STATE, d_echo);
}

bool aec_impl::start()
{
    std::lock_guard<std::mutex> lock(d_mutex);
    d_next_status_s = monotonic_s() + 1.0;
    return true;
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
        const float* far = ref + f;
        if (d_tracker) {
            d_tracker->push(mic + f, ref + f, d_frame);
            d_aligner->push(ref + f, d_frame);
            align(d_aligned.data());
            far = d_aligned.data();
        }
        cancel_frame(mic + f, far, out + f);
        d_frames++;
    }
    maybe_publish_status();
    return noutput_items;
}

// Reads this frame's reference at the tracked delay, less a margin, following the delay's slope.
void aec_impl::align(float* aligned)
{
    const uint64_t start = d_aligner->written() - d_frame;
    double step = 0;
    if (d_tracker->locked()) {
        const double lead = d_tracker->delay_at(static_cast<double>(start)) - d_offset;
        // a whole number of samples: until a drift is followed, reading the reference is a copy
        const double moved = std::clamp(std::round(d_offset + lead - MARGIN_S * d_rate),
                                        reference_aligner::min_offset(),
                                        std::floor(d_max_delay * d_rate));
        // (an echo closer than the margin leaves the reference at its smallest offset, where it is)
        if ((lead < MIN_LEAD_S * d_rate || lead > MAX_LEAD_S * d_rate) && std::abs(moved - d_offset) >= 1.0) {
            d_offset = moved;
            speex_echo_state_reset(d_echo); // the learned echo path sits at the old delay
        }
        if (d_tracker->slope_known())
            step = d_tracker->slope();
    }
    d_aligner->read(start, d_offset, step, aligned, d_frame);
    d_offset += step * d_frame;
}

void aec_impl::cancel_frame(const float* mic, const float* far, float* out)
{
    auto to16 = [](float x) { // rounds half away from zero; plain arithmetic, so the loop vectorises
        const float scaled = std::clamp(x * 32768.0f, -32768.0f, 32767.0f);
        return static_cast<int16_t>(scaled + (scaled < 0 ? -0.5f : 0.5f));
    };
    for (int i = 0; i < d_frame; i++) {
        d_mic16[i] = to16(mic[i]);
        d_ref16[i] = to16(far[i]);
    }
    speex_echo_cancellation(d_echo, d_mic16.data(), d_ref16.data(), d_out16.data());
    const double far_power = energy(d_ref16.data(), d_frame);
    const double mic_power = energy(d_mic16.data(), d_frame);
    const double out_power = energy(d_out16.data(), d_frame);
    if (d_pre)
        speex_preprocess_run(d_pre, d_out16.data());
    for (int i = 0; i < d_frame; i++)
        out[i] = d_out16[i] / 32768.0f;

    if (far_power > FAR_END_POWER * d_frame) {
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
                                   { "jumps", pmt::from_uint64(d_tracker ? d_tracker->jumps() : 0) } });
    if (locked)
        msg = with_field(msg, "delay", pmt::from_double(delay_unlocked()));
    message_port_pub(port_status, msg);
}

double aec_impl::delay_unlocked() const
{
    if (!d_tracker || !d_tracker->locked())
        return 0.0;
    return d_tracker->delay_at(static_cast<double>(d_frames) * d_frame) / d_rate;
}

double aec_impl::drift_ppm_unlocked() const
{
    return d_tracker && d_tracker->slope_known() ? -d_tracker->slope() * 1e6 : 0.0;
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
        if (d_tracker)
            d_tracker->reset();
        d_offset = reference_aligner::min_offset();
        speex_echo_state_reset(d_echo);
        d_mic_power = d_out_power = 0;
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
