#include <gnuradio/ria/disconnect_classifier.h>

#include <SoapySDR/Errors.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <stdexcept>

namespace gr {
namespace ria {

const char* read_verdict_name(read_verdict v)
{
    switch (v) {
    case read_verdict::samples:
        return "samples";
    case read_verdict::transient:
        return "transient";
    case read_verdict::overflow:
        return "overflow";
    case read_verdict::disconnected:
        return "disconnected";
    }
    return "transient";
}

disconnect_classifier::disconnect_classifier(double no_samples_timeout_s)
    : d_timeout_s(no_samples_timeout_s)
{
    if (!(no_samples_timeout_s > 0))
        throw std::invalid_argument("disconnect_classifier: no_samples_timeout_s must be > 0");
}

void disconnect_classifier::reset(double now_s)
{
    d_last_samples_s = now_s;
    d_hard_errors = 0;
    d_reason.clear();
}

read_verdict disconnect_classifier::on_samples(double now_s)
{
    d_last_samples_s = now_s;
    d_hard_errors = 0;
    return read_verdict::samples;
}

read_verdict disconnect_classifier::check_silence(double now_s, const std::string& what)
{
    const double silent = now_s - d_last_samples_s;
    if (silent > d_timeout_s) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "no samples for %.1f s", silent);
        d_reason = std::string(buf) + " (" + what + ")";
        return read_verdict::disconnected;
    }
    return read_verdict::transient;
}

read_verdict disconnect_classifier::on_code(int code, double now_s)
{
    if (code > 0)
        return on_samples(now_s);
    switch (code) {
    case 0:
    case SOAPY_SDR_TIMEOUT:
        d_hard_errors = 0;
        return check_silence(now_s, code == 0 ? "empty reads" : "timeouts");
    case SOAPY_SDR_OVERFLOW:
        // Overflow proves the radio is still producing.
        d_last_samples_s = now_s;
        d_hard_errors = 0;
        return read_verdict::overflow;
    case SOAPY_SDR_CORRUPTION:
    case SOAPY_SDR_TIME_ERROR:
    case SOAPY_SDR_UNDERFLOW:
        return check_silence(now_s, SoapySDR::errToStr(code));
    default: // STREAM_ERROR, NOT_SUPPORTED, codes this SoapySDR does not know
        if (++d_hard_errors >= hard_error_streak) {
            d_reason = std::string("stream error: ") + SoapySDR::errToStr(code) + " (" +
                       std::to_string(code) + ")";
            return read_verdict::disconnected;
        }
        return check_silence(now_s, SoapySDR::errToStr(code));
    }
}

read_verdict disconnect_classifier::on_exception(const std::string& what, double now_s)
{
    if (text_means_gone(what)) {
        d_reason = what;
        return read_verdict::disconnected;
    }
    return check_silence(now_s, what);
}

bool disconnect_classifier::text_means_gone(const std::string& what)
{
    std::string t(what);
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
    static const char* const gone[] = {
        "no such device",        "enodev",       "errno 19",
        "error_no_device",       "no device",    "device not found",
        "input/output error",    "errno 5",     "eio",
        "error_io",              "disconnected", "device removed",
        "not connected",         "broken pipe",  "errno 32",
        "transport endpoint is not connected",
    };
    for (const char* needle : gone) {
        const std::string n(needle);
        auto pos = t.find(n);
        while (pos != std::string::npos) {
            // Whole words only: "eio" inside another word or "errno 50" must not count.
            const bool left_ok = pos == 0 || !std::isalnum(static_cast<unsigned char>(t[pos - 1]));
            const size_t end = pos + n.size();
            const bool right_ok = end >= t.size() || !std::isalnum(static_cast<unsigned char>(t[end]));
            if (left_ok && right_ok)
                return true;
            pos = t.find(n, pos + 1);
        }
    }
    return false;
}

} // namespace ria
} // namespace gr
