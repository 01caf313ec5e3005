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
constexpr double max_ppm = 1000.0;

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
      d_pace(parse_bool(arg_string(args, "pace", "true"))),
      d_path_loss_db(arg_double(args, "path_loss", default_path_loss_db)),
      d_air(air_path(arg_string(args, "air", "")), d_path_loss_db),
      d_tx(d_serial, air_path(arg_string(args, "air", "")), parse_bool(arg_string(args, "tx_pace", d_pace ? "true" : "false")))
{
    d_freq = arg_double(args, "freq", d_freq);
    d_rate = arg_double(args, "rate", d_rate);
    d_gain = arg_double(args, "gain", d_gain);
    d_xtal_ppm = arg_double(args, "xtal_ppm", 0.0);
    d_has_correction = parse_bool(arg_string(args, "freq_correction", "true"));
    check_in_range("xtal_ppm", d_xtal_ppm, -max_ppm, max_ppm);
    check_in_range("freq", d_freq, min_freq_hz, max_freq_hz);
    check_in_range("rate", d_rate, min_rate_hz, max_rate_hz);
    check_in_range("gain", d_gain, min_gain_db, max_gain_db);
    if (!std::isfinite(d_path_loss_db))
        throw std::invalid_argument("riasim: device argument path_loss must be a finite number of dB");
    retune_locked();
}

SoapySDR::Kwargs device::getHardwareInfo() const
{
    return { { "serial", d_serial },
             { "origin", "gr-ria riasim" },
             { "pace", d_pace ? "true" : "false" },
             { "tx_pace", d_tx.pace() ? "true" : "false" },
             { "air", d_tx.air_file() },
             { "control_file", control_file_path(d_serial) } };
}

size_t device::getNumChannels(int direction) const
{
    return direction == SOAPY_SDR_RX || direction == SOAPY_SDR_TX ? 1 : 0;
}

void device::check_channel(int direction, size_t channel) const
{
    if ((direction != SOAPY_SDR_RX && direction != SOAPY_SDR_TX) || channel != 0)
        throw std::invalid_argument("riasim has one RX and one TX channel (0)");
}

bool device::is_tx(SoapySDR::Stream* stream) const
{
    return stream == reinterpret_cast<const SoapySDR::Stream*>(&d_tx_handle);
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
    if (direction != SOAPY_SDR_RX && direction != SOAPY_SDR_TX)
        throw std::invalid_argument("riasim: a stream is RX or TX");
    if (channels.size() > 1 || (channels.size() == 1 && channels[0] != 0))
        throw std::invalid_argument("riasim: one channel (0)");
    if (format != SOAPY_SDR_CF32 && format != SOAPY_SDR_CS16)
        throw std::invalid_argument("riasim: stream format " + format + " is not CF32 or CS16");
    std::lock_guard<std::mutex> lock(d_mutex);
    if (direction == SOAPY_SDR_TX) {
        if (d_tx.open)
            throw std::runtime_error("riasim: the TX stream is already open");
        d_tx.open = true;
        d_tx.cs16 = format == SOAPY_SDR_CS16;
        return reinterpret_cast<SoapySDR::Stream*>(&d_tx_handle);
    }
    if (d_stream_open)
        throw std::runtime_error("riasim: the RX stream is already open");
    d_stream_open = true;
    d_cs16 = format == SOAPY_SDR_CS16;
    return reinterpret_cast<SoapySDR::Stream*>(&d_rx_handle);
}

void device::closeStream(SoapySDR::Stream* stream)
{
    std::lock_guard<std::mutex> lock(d_mutex);
    if (is_tx(stream)) {
        d_tx.deactivate();
        d_tx.open = false;
        return;
    }
    d_stream_open = false;
    d_active = false;
}

size_t device::getStreamMTU(SoapySDR::Stream* stream) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    if (is_tx(stream))
        return d_tx.mtu();
    return d_pace ? paced_chunk(d_rate) : unpaced_mtu;
}

int device::activateStream(SoapySDR::Stream* stream, int, long long, size_t)
{
    std::lock_guard<std::mutex> lock(d_mutex);
    if (is_tx(stream)) {
        d_tx.activate();
        return 0;
    }
    d_active = true;
    restart_pacing_locked();
    return 0;
}

int device::deactivateStream(SoapySDR::Stream* stream, int, long long)
{
    std::lock_guard<std::mutex> lock(d_mutex);
    if (is_tx(stream)) {
        d_tx.deactivate();
        return 0;
    }
    d_active = false;
    return 0;
}

void device::restart_pacing_locked()
{
    d_pace_start = clock::now();
    d_rx_air_start_ns = air_now_ns();
    d_paced_delivered = 0;
}

int64_t device::rx_air_ns_locked() const
{
    return d_rx_air_start_ns + int64_t(std::llround(1e9 * double(d_paced_delivered) / d_rate));
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

int device::readStream(SoapySDR::Stream* stream,
                       void* const* buffs,
                       size_t num_elems,
                       int& flags,
                       long long& time_ns,
                       long timeout_us)
{
    flags = 0;
    if (is_tx(stream))
        return SOAPY_SDR_NOT_SUPPORTED;
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
    }

    auto* samples = static_cast<std::complex<float>*>(buffs[0]);
    if (d_cs16) {
        d_scratch.resize(n);
        samples = d_scratch.data();
    }
    const int64_t air_ns = rx_air_ns_locked();
    d_world.generate(samples, n);
    d_air.mix(samples, n, air_ns, d_rate, lo_hz_locked(), d_bandwidth, d_gain);
    saturate(samples, n);
    if (d_cs16) {
        auto* out = static_cast<int16_t*>(buffs[0]);
        const float* in = reinterpret_cast<const float*>(d_scratch.data());
        for (size_t k = 0; k < 2 * n; k++)
            out[k] = static_cast<int16_t>(std::lrintf(in[k] * 32767.0f));
    }
    d_paced_delivered += n;
    time_ns = air_ns + d_hw_offset_ns;
    flags |= SOAPY_SDR_HAS_TIME;
    return static_cast<int>(n);
}

int device::writeStream(SoapySDR::Stream* stream,
                        const void* const* buffs,
                        size_t num_elems,
                        int& flags,
                        long long time_ns,
                        long timeout_us)
{
    if (!is_tx(stream))
        return SOAPY_SDR_NOT_SUPPORTED;
    const fault_snapshot faults = d_faults->poll(false); // overflows are the receiver's
    if (!faults.present || faults.stall_remaining_s > 0) {
        int ret = SOAPY_SDR_STREAM_ERROR;
        try {
            if (!faults.present) {
                ret = fail_unplugged(faults.style, timeout_us);
            } else {
                std::this_thread::sleep_for(
                    std::chrono::duration<double>(std::min(faults.stall_remaining_s, timeout_us / 1e6)));
                ret = SOAPY_SDR_TIMEOUT;
            }
        } catch (...) {
            std::lock_guard<std::mutex> lock(d_mutex);
            d_tx.log().add({ flags, time_ns, num_elems, SOAPY_SDR_STREAM_ERROR, d_tx.freq, d_tx.rate, d_tx.gain, false });
            throw;
        }
        std::lock_guard<std::mutex> lock(d_mutex);
        d_tx.log().add({ flags, time_ns, num_elems, ret, d_tx.freq, d_tx.rate, d_tx.gain, false });
        return ret;
    }
    std::unique_lock<std::mutex> lock(d_mutex);
    return d_tx.write(lock, buffs[0], num_elems, flags, time_ns, timeout_us, d_hw_offset_ns);
}

int device::readStreamStatus(SoapySDR::Stream* stream, size_t& chan_mask, int& flags, long long& time_ns, long timeout_us)
{
    if (!is_tx(stream))
        return SOAPY_SDR_NOT_SUPPORTED;
    std::unique_lock<std::mutex> lock(d_mutex);
    chan_mask = 1;
    return d_tx.read_status(lock, flags, time_ns, timeout_us, d_hw_offset_ns);
}

std::vector<std::string> device::listAntennas(int direction, size_t channel) const
{
    check_channel(direction, channel);
    if (direction == SOAPY_SDR_TX)
        return { "TX" };
    return { "RX", "CAL" };
}

void device::setAntenna(int direction, size_t channel, const std::string& name)
{
    auto names = listAntennas(direction, channel);
    if (std::find(names.begin(), names.end(), name) == names.end())
        throw std::invalid_argument(direction == SOAPY_SDR_TX ? "riasim: TX antenna '" + name + "' is not TX"
                                                              : "riasim: antenna '" + name + "' is not RX or CAL");
    std::lock_guard<std::mutex> lock(d_mutex);
    (direction == SOAPY_SDR_TX ? d_tx.antenna : d_antenna) = name;
}

std::string device::getAntenna(int direction, size_t) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return direction == SOAPY_SDR_TX ? d_tx.antenna : d_antenna;
}

std::vector<std::string> device::listGains(int, size_t) const { return { "RF" }; }

void device::setGainMode(int direction, size_t channel, bool automatic)
{
    check_channel(direction, channel);
    if (direction == SOAPY_SDR_TX) {
        if (automatic)
            throw std::invalid_argument("riasim: the TX side has no automatic gain");
        return;
    }
    std::lock_guard<std::mutex> lock(d_mutex);
    d_agc = automatic;
    retune_locked();
}

bool device::getGainMode(int direction, size_t) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return direction == SOAPY_SDR_TX ? false : d_agc;
}

void device::setGain(int direction, size_t channel, double value)
{
    check_channel(direction, channel);
    const auto r = getGainRange(direction, channel);
    check_in_range("gain", value, r.minimum(), r.maximum());
    std::lock_guard<std::mutex> lock(d_mutex);
    if (direction == SOAPY_SDR_TX) {
        d_tx.gain = value;
        d_tx.settings_changed();
        return;
    }
    d_gain = value;
    retune_locked();
}

void device::setGain(int direction, size_t channel, const std::string&, double value)
{
    setGain(direction, channel, value);
}

double device::getGain(int direction, size_t) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return direction == SOAPY_SDR_TX ? d_tx.gain : d_gain;
}

double device::getGain(int direction, size_t channel, const std::string&) const
{
    return getGain(direction, channel);
}

SoapySDR::Range device::getGainRange(int direction, size_t) const
{
    if (direction == SOAPY_SDR_TX)
        return SoapySDR::Range(tx_min_gain_db, tx_max_gain_db, 1.0);
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
    if (direction == SOAPY_SDR_TX) {
        d_tx.freq = frequency;
        d_tx.settings_changed();
        return;
    }
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

double device::getFrequency(int direction, size_t) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return direction == SOAPY_SDR_TX ? d_tx.freq : d_freq;
}

double device::getFrequency(int direction, size_t channel, const std::string&) const
{
    return getFrequency(direction, channel);
}

std::vector<std::string> device::listFrequencies(int, size_t) const { return { "RF" }; }

bool device::hasFrequencyCorrection(int direction, size_t) const
{
    return direction == SOAPY_SDR_RX && d_has_correction;
}

void device::setFrequencyCorrection(int direction, size_t channel, double ppm)
{
    check_channel(direction, channel);
    if (!hasFrequencyCorrection(direction, channel))
        throw std::runtime_error("riasim: this device has no frequency correction (freq_correction=false)");
    check_in_range("frequency correction (ppm)", ppm, -max_ppm, max_ppm);
    std::lock_guard<std::mutex> lock(d_mutex);
    d_correction_ppm = ppm;
    retune_locked();
}

double device::getFrequencyCorrection(int direction, size_t) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return direction == SOAPY_SDR_RX ? d_correction_ppm : 0.0;
}

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
    if (direction == SOAPY_SDR_TX) {
        d_tx.rate = rate;
        d_tx.settings_changed();
        return;
    }
    d_rate = rate;
    retune_locked();
    restart_pacing_locked();
}

double device::getSampleRate(int direction, size_t) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return direction == SOAPY_SDR_TX ? d_tx.rate : d_rate;
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
    if (direction == SOAPY_SDR_TX) {
        d_tx.bandwidth = bw;
        return;
    }
    d_bandwidth = bw;
    retune_locked();
}

double device::getBandwidth(int direction, size_t) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    const double bw = direction == SOAPY_SDR_TX ? d_tx.bandwidth : d_bandwidth;
    const double rate = direction == SOAPY_SDR_TX ? d_tx.rate : d_rate;
    return bw > 0 ? bw : std::min(rate, max_bandwidth_hz);
}

SoapySDR::RangeList device::getBandwidthRange(int, size_t) const
{
    return { SoapySDR::Range(min_bandwidth_hz, max_bandwidth_hz) };
}

bool device::hasHardwareTime(const std::string& what) const { return what.empty(); }

long long device::getHardwareTime(const std::string&) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    return air_now_ns() + d_hw_offset_ns;
}

void device::setHardwareTime(long long time_ns, const std::string&)
{
    std::lock_guard<std::mutex> lock(d_mutex);
    d_hw_offset_ns = time_ns - air_now_ns();
}

SoapySDR::ArgInfoList device::getSettingInfo() const
{
    auto info = [](const char* key, const char* name, const char* description, SoapySDR::ArgInfo::Type type,
                   const std::string& value) {
        SoapySDR::ArgInfo a;
        a.key = key;
        a.name = name;
        a.description = description;
        a.type = type;
        a.value = value;
        return a;
    };
    return {
        info("pace", "Real-time pacing",
             "Deliver and take samples at the sample rate (true) or as fast as possible (false); RX and TX",
             SoapySDR::ArgInfo::BOOL, "true"),
        info("tx_pace", "TX real-time pacing", "Pacing of the TX side alone", SoapySDR::ArgInfo::BOOL, "true"),
        info("tx_log", "TX log",
             "Read: every writeStream as JSON [{flags, time_ns, count, asked, freq, rate, gain, aired}]; "
             "write 'clear' to empty it",
             SoapySDR::ArgInfo::STRING, ""),
        info("path_loss", "Path loss (dB)", "Loss from any riasim transmitter to this receiver",
             SoapySDR::ArgInfo::FLOAT, std::to_string(default_path_loss_db)),
        info("biastee", "Bias tee", "Power on the antenna port (simulated: no effect on the samples)",
             SoapySDR::ArgInfo::BOOL, "false"),
        [&] {
            auto a = info("direct_samp", "Direct sampling", "0: off, 1: I branch, 2: Q branch (simulated: no effect)",
                          SoapySDR::ArgInfo::INT, "0");
            a.options = { "0", "1", "2" };
            a.optionNames = { "Off", "I-ADC", "Q-ADC" };
            return a;
        }(),
        info("air", "Air file", "Read only: the shared file of the simulated air ('' when off)",
             SoapySDR::ArgInfo::STRING, ""),
        info("air_slots", "Transmitters on the air", "Read only: the claimed slots of the air file as JSON",
             SoapySDR::ArgInfo::STRING, ""),
    };
}

void device::writeSetting(const std::string& key, const std::string& value)
{
    std::lock_guard<std::mutex> lock(d_mutex);
    if (key == "pace") {
        d_pace = parse_bool(value);
        d_tx.set_pace(d_pace);
        restart_pacing_locked();
    } else if (key == "tx_pace") {
        d_tx.set_pace(parse_bool(value));
    } else if (key == "biastee") {
        if (value != "true" && value != "false")
            throw std::invalid_argument("riasim: setting biastee takes true or false, not '" + value + "'");
        d_biastee = value == "true";
    } else if (key == "direct_samp") {
        if (value != "0" && value != "1" && value != "2")
            throw std::invalid_argument("riasim: setting direct_samp takes 0, 1 or 2, not '" + value + "'");
        d_direct_samp = value[0] - '0';
    } else if (key == "tx_log") {
        if (value != "clear")
            throw std::invalid_argument("riasim: setting tx_log takes 'clear', not '" + value + "'");
        d_tx.log().clear();
    } else if (key == "path_loss") {
        const double loss = arg_double({ { key, value } }, key, default_path_loss_db);
        if (!std::isfinite(loss))
            throw std::invalid_argument("riasim: path_loss must be a finite number of dB");
        d_path_loss_db = loss;
        d_air.set_path_loss(loss);
    } else {
        throw std::invalid_argument("riasim: unknown setting '" + key + "'");
    }
}

std::string device::readSetting(const std::string& key) const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    if (key == "pace")
        return d_pace ? "true" : "false";
    if (key == "tx_pace")
        return d_tx.pace() ? "true" : "false";
    if (key == "tx_log")
        return d_tx.log().json();
    if (key == "biastee")
        return d_biastee ? "true" : "false";
    if (key == "direct_samp")
        return std::to_string(d_direct_samp);
    if (key == "path_loss")
        return std::to_string(d_path_loss_db);
    if (key == "air")
        return d_tx.air_file();
    if (key == "air_slots")
        return air_slots_json(d_tx.air_file());
    return "";
}

double device::lo_hz_locked() const { return d_freq * (1.0 + (d_xtal_ppm - d_correction_ppm) * 1e-6); }

void device::retune_locked()
{
    const double lo_hz = lo_hz_locked();
    d_world.tune(lo_hz, d_rate, d_bandwidth, d_gain);
    if (d_agc) {
        // Bring the strongest in-band signal to about -12 dBFS.
        d_gain = std::clamp(-12.0 - d_world.strongest_in_band_dbm(), min_gain_db, max_gain_db);
        d_world.tune(lo_hz, d_rate, d_bandwidth, d_gain);
    }
}

} // namespace riasim
