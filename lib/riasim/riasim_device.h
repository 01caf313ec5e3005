/* riasim: a simulated wideband receiver and transmitter behind the SoapySDR device API. */
#ifndef INCLUDED_RIASIM_DEVICE_H
#define INCLUDED_RIASIM_DEVICE_H

#include "riasim_air.h"
#include "riasim_faults.h"
#include "riasim_transmitter.h"
#include "riasim_world.h"

#include <SoapySDR/Device.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

namespace riasim {

constexpr double min_freq_hz = 1e6;
constexpr double max_freq_hz = 6e9;
constexpr double min_rate_hz = 48e3;
constexpr double max_rate_hz = 61.44e6;
constexpr double min_gain_db = 0.0;
constexpr double max_gain_db = 70.0;
constexpr double min_bandwidth_hz = 200e3;
constexpr double max_bandwidth_hz = 56e6;

class device : public SoapySDR::Device
{
public:
    explicit device(const SoapySDR::Kwargs& args);

    //! "riasim", or the driver it was opened as (RIASIM_ALIAS, see riasim_registration.cc)
    std::string getDriverKey() const override { return d_driver; }
    std::string getHardwareKey() const override { return "riasim"; }
    SoapySDR::Kwargs getHardwareInfo() const override;

    size_t getNumChannels(int direction) const override;
    bool getFullDuplex(int, size_t) const override { return true; }

    std::vector<std::string> getStreamFormats(int direction, size_t channel) const override;
    std::string getNativeStreamFormat(int direction, size_t channel, double& full_scale) const override;
    SoapySDR::ArgInfoList getStreamArgsInfo(int, size_t) const override { return {}; }
    SoapySDR::Stream* setupStream(int direction,
                                  const std::string& format,
                                  const std::vector<size_t>& channels,
                                  const SoapySDR::Kwargs& args) override;
    void closeStream(SoapySDR::Stream* stream) override;
    size_t getStreamMTU(SoapySDR::Stream* stream) const override;
    int activateStream(SoapySDR::Stream* stream, int flags, long long time_ns, size_t num_elems) override;
    int deactivateStream(SoapySDR::Stream* stream, int flags, long long time_ns) override;
    int readStream(SoapySDR::Stream* stream,
                   void* const* buffs,
                   size_t num_elems,
                   int& flags,
                   long long& time_ns,
                   long timeout_us) override;
    int writeStream(SoapySDR::Stream* stream,
                    const void* const* buffs,
                    size_t num_elems,
                    int& flags,
                    long long time_ns,
                    long timeout_us) override;
    int readStreamStatus(SoapySDR::Stream* stream,
                         size_t& chan_mask,
                         int& flags,
                         long long& time_ns,
                         long timeout_us) override;

    std::vector<std::string> listAntennas(int direction, size_t channel) const override;
    void setAntenna(int direction, size_t channel, const std::string& name) override;
    std::string getAntenna(int direction, size_t channel) const override;

    std::vector<std::string> listGains(int direction, size_t channel) const override;
    bool hasGainMode(int direction, size_t) const override { return direction == SOAPY_SDR_RX; }
    void setGainMode(int direction, size_t channel, bool automatic) override;
    bool getGainMode(int direction, size_t channel) const override;
    //! Like every setting, applies from the first sample of the next readStream (samples are made there),
    //! so a change sits exactly where ria.sdr_source tags it.
    void setGain(int direction, size_t channel, double value) override;
    void setGain(int direction, size_t channel, const std::string& name, double value) override;
    double getGain(int direction, size_t channel) const override;
    double getGain(int direction, size_t channel, const std::string& name) const override;
    SoapySDR::Range getGainRange(int direction, size_t channel) const override;
    SoapySDR::Range getGainRange(int direction, size_t channel, const std::string& name) const override;

    void setFrequency(int direction, size_t channel, double frequency, const SoapySDR::Kwargs& args) override;
    void setFrequency(int direction,
                      size_t channel,
                      const std::string& name,
                      double frequency,
                      const SoapySDR::Kwargs& args) override;
    double getFrequency(int direction, size_t channel) const override;
    double getFrequency(int direction, size_t channel, const std::string& name) const override;
    std::vector<std::string> listFrequencies(int direction, size_t channel) const override;
    //! RX only, and only while the device args do not say freq_correction=false (a driver without it).
    bool hasFrequencyCorrection(int direction, size_t channel) const override;
    void setFrequencyCorrection(int direction, size_t channel, double ppm) override;
    double getFrequencyCorrection(int direction, size_t channel) const override;
    SoapySDR::RangeList getFrequencyRange(int direction, size_t channel) const override;
    SoapySDR::RangeList getFrequencyRange(int direction, size_t channel, const std::string& name) const override;

    void setSampleRate(int direction, size_t channel, double rate) override;
    double getSampleRate(int direction, size_t channel) const override;
    std::vector<double> listSampleRates(int direction, size_t channel) const override;
    SoapySDR::RangeList getSampleRateRange(int direction, size_t channel) const override;

    void setBandwidth(int direction, size_t channel, double bw) override;
    double getBandwidth(int direction, size_t channel) const override;
    SoapySDR::RangeList getBandwidthRange(int direction, size_t channel) const override;

    bool hasHardwareTime(const std::string& what) const override;
    long long getHardwareTime(const std::string& what) const override;
    void setHardwareTime(long long time_ns, const std::string& what) override;

    SoapySDR::ArgInfoList getSettingInfo() const override;
    void writeSetting(const std::string& key, const std::string& value) override;
    std::string readSetting(const std::string& key) const override;

private:
    using clock = std::chrono::steady_clock;
    void check_channel(int direction, size_t channel) const;
    bool is_tx(SoapySDR::Stream* stream) const;
    void retune_locked();
    //! Where the receiver really is: d_freq moved by the crystal's error less the correction.
    double lo_hz_locked() const;
    void restart_pacing_locked();
    int fail_unplugged(unplug_style style, long timeout_us);
    int64_t rx_air_ns_locked() const;

    mutable std::mutex d_mutex;
    std::string d_driver;
    std::string d_serial;
    std::shared_ptr<unit_faults> d_faults;
    world d_world;
    bool d_pace;
    double d_freq = 100e6;
    double d_rate = 2.048e6;
    double d_bandwidth = 0.0; // 0: follows the sample rate
    double d_gain = 30.0;
    bool d_agc = false;
    std::string d_antenna = "RX";
    // The simulated crystal is off by d_xtal_ppm (device arg xtal_ppm): the receiver really sits at
    // d_freq * (1 + (d_xtal_ppm - d_correction_ppm) / 1e6).
    double d_xtal_ppm = 0.0;
    double d_correction_ppm = 0.0;
    bool d_has_correction = true;
    // Driver keys with no effect on the samples, for ria.sdr_source's device settings.
    bool d_biastee = false;
    int d_direct_samp = 0;

    // RX stream (one at a time). Its sample clock runs on air time: paced, it keeps to the real time.
    bool d_stream_open = false;
    bool d_active = false;
    bool d_cs16 = false;
    clock::time_point d_pace_start;
    int64_t d_rx_air_start_ns = 0; // air time of the first sample since the pacing (re)started
    unsigned long long d_paced_delivered = 0;
    std::vector<std::complex<float>> d_scratch;

    // Hardware time = air time (CLOCK_REALTIME ns, as a GPS-disciplined radio) + this (setHardwareTime).
    long long d_hw_offset_ns = 0;
    double d_path_loss_db;
    air_receiver d_air;
    transmitter d_tx;
    char d_rx_handle = 0, d_tx_handle = 0; // their addresses are the two SoapySDR::Stream handles
};

} // namespace riasim

#endif
