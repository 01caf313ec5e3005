/* -*- c++ -*- */
/*
 * gr-ria: turns what a SoapySDR driver did on one readStream call into a verdict.
 */
#ifndef INCLUDED_RIA_DISCONNECT_CLASSIFIER_H
#define INCLUDED_RIA_DISCONNECT_CLASSIFIER_H

#include <gnuradio/ria/api.h>
#include <string>

namespace gr {
namespace ria {

enum class read_verdict {
    samples,      //!< samples arrived
    transient,    //!< nothing this time, keep reading (timeout, one-off error)
    overflow,     //!< samples were lost on the way from the radio
    disconnected, //!< the radio is gone: close it and reopen or stop
};

RIA_API const char* read_verdict_name(read_verdict v);

/*!
 * \brief Decides when read failures mean the radio is gone.
 *
 * Drivers say "unplugged" in different ways: libusb and the kernel raise errors such as
 * "No such device" (ENODEV, errno 19) or "Input/output error" (EIO, errno 5), some return
 * SOAPY_SDR_STREAM_ERROR on every call, and some just time out forever. The first two
 * count at once (an exception by its text, a hard error code after a short streak); any
 * run of reads without samples longer than \p no_samples_timeout_s counts too.
 * Time comes in as an argument so the rules can be tested without waiting.
 */
class RIA_API disconnect_classifier
{
public:
    explicit disconnect_classifier(double no_samples_timeout_s);

    read_verdict on_samples(double now_s);
    read_verdict on_code(int code, double now_s);
    read_verdict on_exception(const std::string& what, double now_s);
    //! Start counting afresh, e.g. after (re)opening the device.
    void reset(double now_s);

    //! Why the last disconnected verdict was given (human-readable).
    const std::string& reason() const { return d_reason; }

    //! True when an error text means the device is gone (ENODEV, EIO, libusb NO_DEVICE...).
    static bool text_means_gone(const std::string& what);

    static constexpr int hard_error_streak = 3;

private:
    read_verdict check_silence(double now_s, const std::string& what);

    double d_timeout_s;
    double d_last_samples_s = 0.0;
    int d_hard_errors = 0;
    std::string d_reason;
};

} // namespace ria
} // namespace gr

#endif
