/* -*- c++ -*- */
/*
 * gr-ria: SoapySDR transmitter with interlocks, bursts at exact samples, and recovery from unplugging.
 */
#ifndef INCLUDED_RIA_SDR_SINK_H
#define INCLUDED_RIA_SDR_SINK_H

#include <gnuradio/ria/api.h>
#include <gnuradio/sync_block.h>
#include <string>

namespace gr {
namespace ria {

/*!
 * \brief Transmits a complex stream on a SoapySDR radio (TX channel 0), within interlocks that
 * nothing upstream can lift.
 * \ingroup ria
 *
 * \details
 * The mirror of sdr_source. The interlocks: \p allow_tx (the operator's opt-in: false refuses
 * every open), \p max_gain_db, \p max_duration_s (time on air since the open) and
 * \p allowed_freq_ranges. Every setting (constructor, `cmd`, tags) is checked against them and
 * against the ranges the radio reports.
 *
 * Bursts: the tags tx_sob, tx_eob, tx_time ((uint64 secs, double frac)), tx_freq, tx_rate and
 * tx_gain are read at their exact samples (a write is split there). With \p burst_tags "optional"
 * an untagged stream is transmitted continuously; with "required" only samples inside a
 * tx_sob … tx_eob burst that started after the latest open go out, the rest is dropped.
 *
 * Message input `cmd`: a dict with any of `open` (device args), `close`, `seq`, `freq`, `rate`,
 * `gain`, `bandwidth`, `antenna`, `chan` (0). Message output `status`: one dict per event, `event`
 * being opened, refused, error, settings, closed, disconnected, reconnected, stopped,
 * transmitting, burst_end, tuned, underflow, late, limit.
 */
class RIA_API sdr_sink : virtual public gr::sync_block
{
public:
    typedef std::shared_ptr<sdr_sink> sptr;

    /*!
     * \param device SoapySDR args such as "driver=riasim"; empty: closed until `open`
     * \param sample_rate samples per second
     * \param center_freq Hz
     * \param gain dB
     * \param antenna antenna name; empty leaves the driver's choice
     * \param bandwidth analog filter in Hz; 0 leaves the driver's choice
     * \param allow_tx the operator's opt-in; false: every open is refused
     * \param max_gain_db the highest gain allowed; NaN or infinity: no cap
     * \param max_duration_s the longest time on air after an open; 0: no cap
     * \param allowed_freq_ranges "lo:hi,lo:hi" in Hz (inclusive); empty: no limit
     * \param burst_tags "optional" or "required"
     * \param on_disconnect "reconnect" or "stop"
     * \param reopen_interval seconds between attempts to reopen a lost device (> 0)
     * \param disconnect_timeout seconds of refused writes that count as a disconnect (> 0)
     */
    static sptr make(const std::string& device,
                     double sample_rate,
                     double center_freq,
                     double gain,
                     const std::string& antenna,
                     double bandwidth,
                     bool allow_tx,
                     double max_gain_db,
                     double max_duration_s,
                     const std::string& allowed_freq_ranges,
                     const std::string& burst_tags,
                     const std::string& on_disconnect,
                     double reopen_interval,
                     double disconnect_timeout);

    //! Setters for GRC callbacks; each posts the matching `cmd` message to this block.
    virtual void set_center_freq(double freq) = 0;
    virtual void set_sample_rate(double rate) = 0;
    virtual void set_gain(double gain) = 0;
    virtual void set_bandwidth(double bandwidth) = 0;
    virtual void set_antenna(const std::string& antenna) = 0;

    //! "closed", "opening", "streaming", "disconnected", "stopped".
    virtual std::string state() const = 0;
    //! Samples written to the radio since the latest open.
    virtual uint64_t samples_written() const = 0;
    //! Samples consumed and not transmitted (outside bursts, over an interlock, radio closed).
    virtual uint64_t samples_dropped() const = 0;
    virtual uint64_t underflows() const = 0;
    virtual uint64_t disconnects() const = 0;
};

} // namespace ria
} // namespace gr

#endif
