/* -*- c++ -*- */
/*
 * gr-ria: SoapySDR receiver that survives unplugging.
 */
#ifndef INCLUDED_RIA_SDR_SOURCE_H
#define INCLUDED_RIA_SDR_SOURCE_H

#include <gnuradio/ria/api.h>
#include <gnuradio/sync_block.h>
#include <string>

namespace gr {
namespace ria {

/*!
 * \brief Streams complex samples from a SoapySDR radio and keeps the flowgraph alive
 * when the radio goes away.
 * \ingroup ria
 *
 * \details
 * Opens the device named by \p device_args (empty: start closed and wait for an `open`
 * command), applies the settings and streams CF32 (or CS16) samples. Every change is tagged on
 * the first sample it affects with `rx_freq`, `rx_rate`, `rx_gain` and `rx_time`. The tags
 * and the status messages carry what the radio reports back, never a value it refused.
 *
 * When the driver reports that the radio is gone (ENODEV/EIO errors, repeated stream
 * errors, or no samples for \p disconnect_timeout seconds) the block publishes one
 * `status` message, closes the device, and then either tries to reopen it every
 * \p reopen_interval seconds and re-applies the current settings (`on_disconnect` =
 * "reconnect") or ends its stream ("stop").
 *
 * Message input `cmd`: a dict with any of `freq`, `rate`, `gain`, `bandwidth` (Hz, dB), `ppm`, `device_settings`,
 * `antenna` (string), `agc` (bool), `open` (device args), `close` (any value), `chan`.
 * Bad values are reported on `status` and leave the stream untouched. A command with `open`
 * is all or nothing: if a setting it carries is refused (a bad value, or one outside the
 * range the opened radio reports), the radio is closed again and `refused` is published.
 * `seq` (any value, with `open`) comes back in the events about that open (opened,
 * streaming, refused, and its errors), so a sender can tell them from those of an earlier one.
 *
 * Message output `status`: one dict per event, `event` being one of opened, streaming,
 * settings, overflow (summary, at most once a second), disconnected, reconnected,
 * closed, stopped, error, refused.
 */
class RIA_API sdr_source : virtual public gr::sync_block
{
public:
    typedef std::shared_ptr<sdr_source> sptr;

    /*!
     * \param device_args SoapySDR args such as "driver=riasim"; empty: closed until `open`
     * \param channel RX channel index
     * \param sample_rate samples per second
     * \param center_freq Hz
     * \param gain dB (ignored while \p agc is on)
     * \param agc automatic gain control
     * \param bandwidth analog filter in Hz; 0 leaves the driver's choice
     * \param antenna antenna name; empty leaves the driver's choice
     * \param on_disconnect "reconnect" or "stop"
     * \param reopen_interval seconds between attempts to reopen a lost device (> 0)
     * \param disconnect_timeout seconds without samples that count as a disconnect (> 0)
     * \param ppm frequency correction in parts per million (|ppm| <= 1000): the driver's own
     *        (setFrequencyCorrection) when it has one, else the tuned frequency is offset
     * \param output_type "fc32" (gr_complex items) or "sc16" (complex int16: two shorts per item)
     * \param device_settings driver settings "key=value, key=value" written after each open
     */
    static sptr make(const std::string& device_args,
                     size_t channel,
                     double sample_rate,
                     double center_freq,
                     double gain,
                     bool agc,
                     double bandwidth,
                     const std::string& antenna,
                     const std::string& on_disconnect,
                     double reopen_interval,
                     double disconnect_timeout,
                     double ppm = 0.0,
                     const std::string& output_type = "fc32",
                     const std::string& device_settings = "");

    //! Setters for GRC callbacks; each posts the matching `cmd` message to this block,
    //! so it is validated and applied exactly like a command from the hub.
    virtual void set_center_freq(double freq) = 0;
    virtual void set_sample_rate(double rate) = 0;
    virtual void set_gain(double gain) = 0;
    virtual void set_agc(bool agc) = 0;
    virtual void set_bandwidth(double bandwidth) = 0;
    virtual void set_antenna(const std::string& antenna) = 0;
    virtual void set_ppm(double ppm) = 0;
    //! "key=value, ..." written now and after every reopen, added to (or replacing) the keys given before.
    virtual void set_device_settings(const std::string& settings) = 0;

    //! The device state: "closed", "opening", "streaming", "disconnected", "stopped".
    virtual std::string state() const = 0;
    virtual uint64_t overflows() const = 0;
    virtual uint64_t disconnects() const = 0;
};

} // namespace ria
} // namespace gr

#endif
