#include "riasim_device.h"

#include <SoapySDR/Formats.hpp>
#include <SoapySDR/Logger.hpp>
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <thread>

namespace riasim {

namespace {
// A real radio hands over samples in USB-transfer-sized pieces; ~10 ms keeps latency low.
size_t paced_chunk(double rate) { return std::clamp<size_t>(size_t(rate * 0.01), 256, 65536); }
constexpr size_t unpaced_mtu = 65536;
// Host-side buffering before the simulated hardware overflows, as on a real radio.
constexpr double overflow_after_s = 0.5;

bool parse_bool(const std::string& s)
{
    return !(s == "false" || s == "0" || s == "no" || s == "off");
}

double arg_double(const SoapySDR::Kwargs& args, const std::string& key, double fallback)
{
    auto it = args.find(key);
    if (it == args.end() || it->second.empty())
        return fallback;
    try {
        return std::stod(it->second);
    } catch (const std::exception&) {
        throw std::invalid_argument("riasim: device argument " + key + "='" + it->second +
                                    "' is not a number");
    }
}

std::string arg_string(const SoapySDR::Kwargs& args, const std::string& key, const std::string& fallback)
{
    auto it = args.find(key);
    return it == args.end() ? fallback : it->second;
}

void check_in_range(const char* what, double value, double lo, double hi)
{
    if (!std::isfinite(value) || value < lo || value > hi)
        throw std::out_of_range(std::string("riasim: ") + what + " " + std::to_string(value) +
                                " is outside [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "]");
}
} // namespace

device::device(const SoapySDR::Kwargs& args)
    : d_driver(arg_string(args, "driver", "riasim")),
      d_serial(arg_string(args, "serial", "sim0")),
      d_faults(faults_for(d_serial, arg_string(args, "faults", ""))),
      d_world(args.count("emitters") ? parse_emitters(args.at("emitters")) : default_emitters(),
              arg_double(args, "noise", -100.0),
              static_cast<uint32_t>(arg_double(args, "seed", 1))),
      d_pace(parse_bool(arg_string(args, "pace", "true")))
{
    d_freq = arg_double(args, "freq", d_freq);
    d_rate = arg_double(args, "rate", d_rate);
    d_gain = arg_double(args, "gain", d_gain);
    check_in_range("freq", d_freq, min_freq_hz, max_freq_hz);
    check_in_range("rate", d_rate, min_rate_hz, max_rate_hz);
    check_in_range("gain", d_gain, min_gain_db, max_gain_db);
    retune_locked();
}

SoapySDR::Kwargs device::getHardwareInfo() const
{
    return { { "serial", d_serial },
             { "origin", "gr-ria riasim" },
             { "pace", d_pace ? "true" : "false" },
             { "control_file", control_file_path(d_serial) } };
}

size_t device::getNumChannels(int direction) const { return direction == SOAPY_SDR_RX ? 1 : 0; }

void device::check_channel(int direction, size_t channel) const
{
    if (direction != SOAPY_SDR_RX || channel != 0)
        throw std::invalid_argument("riasim has one RX channel (0)");
}

std::vector<std::string> device::getStreamFormats(int, size_t) const
{
    return { SOAPY_SDR_CF32, SOAPY_SDR_CS16 };
}

std::string device::getNativeStreamFormat(int, size_t, double& full_scale) const
{
    full_scale = 32767;
    return SOAPY_SDR_CS16;
}

SoapySDR::Stream* device::setupStream(int direction,
                                      const std::string& format,
                                      const std::vector<size_t>& channels,
                                      const SoapySDR::Kwargs&)
{
    if (direction != SOAPY_SDR_RX)
        throw std::invalid_argument("riasim: only RX streams");
    if (channels.size() > 1 || (channels.size() == 1 && channels[0] != 0))
        throw std::invalid_argument("riasim: one channel (0)");
    if (format != SOAPY_SDR_CF32 && format != SOAPY_SDR_CS16)
        throw std::invalid_argument("riasim: stream format " + format + " is not CF32 or CS16");
    std::lock_guard<std::mutex> lock(d_mutex);
    if (d_stream_open)
        throw std::runtime_error("riasim: the RX stream is already open");
    d_stream_open = true;
    d_cs16 = format == SOAPY_SDR_CS16;
    return reinterpret_cast<SoapySDR::Stream*>(this);
}

void device::closeStream(SoapySDR::Stream*)
{
    std::lock_guard<std::mutex> lock(d_mutex);
    d_stream_open = false;
    d_active = false;
}

size_t device::getStreamMTU(SoapySDR::Stream*) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_pace ? paced_chunk(d_rate) : unpaced_mtu;
}

int device::activateStream(SoapySDR::Stream*, int, long long, size_t)
{
    std::lock_guard<std::mutex> lock(d_mutex);
    d_active = true;
    restart_pacing_locked();
    return 0;
}

int device::deactivateStream(SoapySDR::Stream*, int, long long)
{
    std::lock_guard<std::mutex> lock(d_mutex);
    d_active = false;
    return 0;
}

void device::restart_pacing_locked()
{
    d_pace_start = clock::now();
    d_paced_delivered = 0;
}

int device::fail_unplugged(unplug_style style, long timeout_us)
{
    switch (style) {
    case unplug_style::error:
        return SOAPY_SDR_STREAM_ERROR;
    case unplug_style::nodev:
        throw std::runtime_error("riasim: LIBUSB_ERROR_NO_DEVICE: No such device (errno 19)");
    case unplug_style::eio:
        throw std::runtime_error("riasim: read failed: Input/output error (errno 5)");
    case unplug_style::timeout:
        std::this_thread::sleep_for(std::chrono::microseconds(timeout_us));
        return SOAPY_SDR_TIMEOUT;
    }
    return SOAPY_SDR_STREAM_ERROR;
}

int device::readStream(SoapySDR::Stream*,
                       void* const* buffs,
                       size_t num_elems,
                       int& flags,
                       long long& time_ns,
                       long timeout_us)
{
    flags = 0;
    const fault_snapshot faults = d_faults->poll();
    if (!faults.present)
        return fail_unplugged(faults.style, timeout_us);
    if (faults.stall_remaining_s > 0) {
        const double wait_s = std::min(faults.stall_remaining_s, timeout_us / 1e6);
        std::this_thread::sleep_for(std::chrono::duration<double>(wait_s));
        return SOAPY_SDR_TIMEOUT;
    }

    std::unique_lock<std::mutex> lock(d_mutex);
    if (!d_active)
        return SOAPY_SDR_STREAM_ERROR;
    if (faults.new_overflows > 0) {
        // The injected burst: report one overflow and lose what was buffered, like hardware.
        restart_pacing_locked();
        return SOAPY_SDR_OVERFLOW;
    }

    size_t n = std::min(num_elems, d_pace ? paced_chunk(d_rate) : unpaced_mtu);
    if (d_pace) {
        const auto deadline = clock::now() + std::chrono::microseconds(timeout_us);
        while (true) {
            const double elapsed = std::chrono::duration<double>(clock::now() - d_pace_start).count();
            const double available = elapsed * d_rate - double(d_paced_delivered);
            if (available > overflow_after_s * d_rate) {
                restart_pacing_locked();
                return SOAPY_SDR_OVERFLOW;
            }
            if (available >= double(n))
                break;
            const double missing_s = (double(n) - available) / d_rate;
            const auto wake = std::min(deadline,
                                       clock::now() + std::chrono::duration_cast<clock::duration>(
                                                          std::chrono::duration<double>(missing_s)));
            if (clock::now() >= deadline)
                return SOAPY_SDR_TIMEOUT;
            lock.unlock();
            std::this_thread::sleep_until(wake);
            lock.lock();
            if (!d_active)
                return SOAPY_SDR_STREAM_ERROR;
        }
        d_paced_delivered += n;
    }

    if (d_cs16) {
        d_scratch.resize(n);
        d_world.generate(d_scratch.data(), n);
        auto* out = static_cast<int16_t*>(buffs[0]);
        const float* in = reinterpret_cast<const float*>(d_scratch.data());
        for (size_t k = 0; k < 2 * n; k++)
            out[k] = static_cast<int16_t>(std::lrintf(in[k] * 32767.0f));
    } else {
        d_world.generate(static_cast<std::complex<float>*>(buffs[0]), n);
    }
    time_ns = static_cast<long long>(d_hw_time_ns);
    flags |= SOAPY_SDR_HAS_TIME;
    d_hw_time_ns += 1e9 * double(n) / d_rate;
    return static_cast<int>(n);
}

std::vector<std::string> device::listAntennas(int direction, size_t channel) const
{
    check_channel(direction, channel);
    return { "RX", "CAL" };
}

void device::setAntenna(int direction, size_t channel, const std::string& name)
{
    auto names = listAntennas(direction, channel);
    if (std::find(names.begin(), names.end(), name) == names.end())
        throw std::invalid_argument("riasim: antenna '" + name + "' is not RX or CAL");
    std::lock_guard<std::mutex> lock(d_mutex);
    d_antenna = name;
}

std::string device::getAntenna(int, size_t) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_antenna;
}

std::vector<std::string> device::listGains(int, size_t) const { return { "RF" }; }

void device::setGainMode(int direction, size_t channel, bool automatic)
{
    check_channel(direction, channel);
    std::lock_guard<std::mutex> lock(d_mutex);
    d_agc = automatic;
    retune_locked();
}

bool device::getGainMode(int, size_t) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_agc;
}

void device::setGain(int direction, size_t channel, double value)
{
    check_channel(direction, channel);
    check_in_range("gain", value, min_gain_db, max_gain_db);
    std::lock_guard<std::mutex> lock(d_mutex);
    d_gain = value;
    retune_locked();
}

void device::setGain(int direction, size_t channel, const std::string&, double value)
{
    setGain(direction, channel, value);
}

double device::getGain(int, size_t) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_gain;
}

double device::getGain(int direction, size_t channel, const std::string&) const
{
    return getGain(direction, channel);
}

SoapySDR::Range device::getGainRange(int, size_t) const
{
    return SoapySDR::Range(min_gain_db, max_gain_db, 1.0);
}

SoapySDR::Range device::getGainRange(int direction, size_t channel, const std::string&) const
{
    return getGainRange(direction, channel);
}

void device::setFrequency(int direction, size_t channel, double frequency, const SoapySDR::Kwargs&)
{
    check_channel(direction, channel);
    check_in_range("frequency", frequency, min_freq_hz, max_freq_hz);
    std::lock_guard<std::mutex> lock(d_mutex);
    d_freq = frequency;
    retune_locked();
}

void device::setFrequency(int direction,
                          size_t channel,
                          const std::string&,
                          double frequency,
                          const SoapySDR::Kwargs& args)
{
    setFrequency(direction, channel, frequency, args);
}

double device::getFrequency(int, size_t) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_freq;
}

double device::getFrequency(int direction, size_t channel, const std::string&) const
{
    return getFrequency(direction, channel);
}

std::vector<std::string> device::listFrequencies(int, size_t) const { return { "RF" }; }

SoapySDR::RangeList device::getFrequencyRange(int, size_t) const
{
    return { SoapySDR::Range(min_freq_hz, max_freq_hz) };
}

SoapySDR::RangeList device::getFrequencyRange(int direction, size_t channel, const std::string&) const
{
    return getFrequencyRange(direction, channel);
}

void device::setSampleRate(int direction, size_t channel, double rate)
{
    check_channel(direction, channel);
    check_in_range("sample rate", rate, min_rate_hz, max_rate_hz);
    std::lock_guard<std::mutex> lock(d_mutex);
    d_rate = rate;
    retune_locked();
    restart_pacing_locked();
}

double device::getSampleRate(int, size_t) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_rate;
}

std::vector<double> device::listSampleRates(int, size_t) const
{
    return { 250e3, 1.024e6, 2.048e6, 2.4e6, 5e6, 10e6, 20e6, 30.72e6, 61.44e6 };
}

SoapySDR::RangeList device::getSampleRateRange(int, size_t) const
{
    return { SoapySDR::Range(min_rate_hz, max_rate_hz) };
}

void device::setBandwidth(int direction, size_t channel, double bw)
{
    check_channel(direction, channel);
    if (bw != 0.0)
        check_in_range("bandwidth", bw, min_bandwidth_hz, max_bandwidth_hz);
    std::lock_guard<std::mutex> lock(d_mutex);
    d_bandwidth = bw;
    retune_locked();
}

double device::getBandwidth(int, size_t) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return d_bandwidth > 0 ? d_bandwidth : std::min(d_rate, max_bandwidth_hz);
}

SoapySDR::RangeList device::getBandwidthRange(int, size_t) const
{
    return { SoapySDR::Range(min_bandwidth_hz, max_bandwidth_hz) };
}

bool device::hasHardwareTime(const std::string& what) const { return what.empty(); }

long long device::getHardwareTime(const std::string&) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return static_cast<long long>(d_hw_time_ns);
}

void device::setHardwareTime(long long time_ns, const std::string&)
{
    std::lock_guard<std::mutex> lock(d_mutex);
    d_hw_time_ns = double(time_ns);
}

SoapySDR::ArgInfoList device::getSettingInfo() const
{
    SoapySDR::ArgInfo pace;
    pace.key = "pace";
    pace.name = "Real-time pacing";
    pace.description = "Deliver samples at the sample rate (true) or as fast as possible (false)";
    pace.type = SoapySDR::ArgInfo::BOOL;
    pace.value = "true";
    return { pace };
}

void device::writeSetting(const std::string& key, const std::string& value)
{
    if (key != "pace")
        throw std::invalid_argument("riasim: unknown setting '" + key + "'");
    std::lock_guard<std::mutex> lock(d_mutex);
    d_pace = parse_bool(value);
    restart_pacing_locked();
}

std::string device::readSetting(const std::string& key) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return key == "pace" ? (d_pace ? "true" : "false") : "";
}

void device::retune_locked()
{
    d_world.tune(d_freq, d_rate, d_bandwidth, d_gain);
    if (d_agc) {
        // Bring the strongest in-band signal to about -12 dBFS.
        d_gain = std::clamp(-12.0 - d_world.strongest_in_band_dbm(), min_gain_db, max_gain_db);
        d_world.tune(d_freq, d_rate, d_bandwidth, d_gain);
    }
}

} // namespace riasim
