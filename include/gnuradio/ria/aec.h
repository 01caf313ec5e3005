/* -*- c++ -*- */
/*
 * gr-ria: acoustic echo cancellation that finds the echo's delay and follows clock drift.
 */
#ifndef INCLUDED_RIA_AEC_H
#define INCLUDED_RIA_AEC_H

#include <gnuradio/ria/api.h>
#include <gnuradio/sync_block.h>

namespace gr {
namespace ria {

/*!
 * \brief Removes the echo of a far-end reference (what the speaker plays) from a microphone signal.
 * \ingroup ria
 *
 * \details
 * Input 0 is the microphone, input 1 the reference, both float in -1..1 at \p sample_rate; the
 * output is the microphone with the echo removed. The canceller is a partitioned frequency-domain
 * adaptive filter (foreground/background, proportionate steps), fed in frames of \p frame_size samples
 * with a filter \p tail_length seconds long, followed by a residual echo suppressor.
 *
 * In front of it the block aligns the reference: it finds the delay from reference to microphone
 * (0 to \p max_delay seconds) with GCC-PHAT while the far end is talking, and reads the reference
 * through a windowed-sinc interpolator at that delay, resampled at the clock drift measured from how
 * fast the learned echo path moves. A delay that jumps (a buffer under- or overrun) is found again and
 * the reference moves by as much, so the filter keeps what it learned. With \p max_delay = 0 there is
 * no alignment.
 *
 * \p residual_suppression turns the residual echo suppressor on, \p noise_suppression the speexdsp
 * preprocessor on stationary noise.
 *
 * Message input `cmd`: a dict with any of `reset` (any value), `tail` (seconds),
 * `residual_suppression` and `noise_suppression` (bool). Bad values are reported on `status`.
 *
 * Message output `status`, at most once a second: {event: "aec", locked, delay (s, when locked),
 * drift_ppm, erle_db (microphone over output power while the far end talks), jumps, nonlinear (a saturating
 * loudspeaker's curve shapes the reference)}; and
 * {event: "error", key, value, message} for a bad command.
 */
class RIA_API aec : virtual public gr::sync_block
{
public:
    typedef std::shared_ptr<aec> sptr;

    /*!
     * \param sample_rate Hz, 8000 to 48000
     * \param frame_size samples per canceller frame, 5 to 50 ms, 2 * frame_size made of factors 2, 3, 5
     * \param tail_length seconds of echo the filter covers (a frame to 2 s)
     * \param max_delay seconds of reference-to-microphone delay searched (0 to 2; 0: no alignment)
     * \param residual_suppression speexdsp preprocessor on the residual echo
     * \param noise_suppression speexdsp preprocessor on stationary noise
     */
    static sptr make(int sample_rate,
                     int frame_size,
                     double tail_length,
                     double max_delay,
                     bool residual_suppression,
                     bool noise_suppression);

    //! GRC callbacks: each posts the matching `cmd` message, so it is checked like a command.
    virtual void set_tail_length(double seconds) = 0;
    virtual void set_residual_suppression(bool on) = 0;
    virtual void set_noise_suppression(bool on) = 0;
    virtual void reset() = 0;

    virtual bool delay_locked() const = 0;
    //! Estimated reference-to-microphone delay in seconds (0 until locked).
    virtual double delay() const = 0;
    //! How much faster the reference clock runs than the microphone clock, in ppm.
    virtual double drift_ppm() const = 0;
    //! Microphone over output power, in dB, over the last status interval with far-end sound.
    virtual double erle_db() const = 0;
    virtual uint64_t delay_jumps() const = 0;
    //! Whether the loudspeaker was found to saturate, so the reference is shaped by its learned curve.
    virtual bool loudspeaker_nonlinear() const = 0;
};

} // namespace ria
} // namespace gr

#endif
