#include "riasim_world.h"
#include "riasim_spec.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

namespace riasim {

namespace {
constexpr size_t noise_table_size = 1 << 17;
constexpr double two_pi = 6.283185307179586476925286766559;

double db_to_amplitude(double db) { return std::pow(10.0, db / 20.0); }
} // namespace

std::vector<emitter> default_emitters()
{
    return {
        { 100.1e6, -50.0 },  // FM broadcast carrier
        { 433.92e6, -60.0 }, // ISM remote control
        { 915.0e6, -65.0 },  // ISM 915
        { 1090.0e6, -70.0 }, // ADS-B
        { 2.45e9, -55.0 },   // Wi-Fi channel 9 area
    };
}

std::vector<emitter> parse_emitters(const std::string& spec)
{
    std::vector<emitter> out;
    for (const std::string& entry : split_entries(spec)) {
        const auto colon = entry.find(':');
        try {
            emitter e{};
            e.freq_hz = std::stod(entry.substr(0, colon));
            e.power_dbm = colon == std::string::npos ? -60.0 : std::stod(entry.substr(colon + 1));
            if (!std::isfinite(e.freq_hz) || !std::isfinite(e.power_dbm) || e.freq_hz <= 0)
                throw std::invalid_argument("not finite");
            out.push_back(e);
        } catch (const std::exception&) {
            throw std::invalid_argument("riasim: emitters entry '" + entry +
                                        "' is not FREQ_HZ[:POWER_DBM]");
        }
    }
    return out;
}

world::world(std::vector<emitter> emitters, double noise_dbm, uint32_t seed)
    : d_emitters(std::move(emitters)),
      d_tones(d_emitters.size()),
      d_noise_table(noise_table_size),
      d_rng(seed ? seed : 1),
      d_noise_dbm(noise_dbm)
{
    // Gaussian noise is costly per sample; a long precomputed table read from random
    // offsets looks the same to a spectrum and keeps the unpaced mode fast.
    std::mt19937 gen(seed);
    std::normal_distribution<float> normal(0.0f, std::sqrt(0.5f));
    for (auto& s : d_noise_table)
        s = { normal(gen), normal(gen) };
}

void world::tune(double center_hz, double rate_hz, double bandwidth_hz, double gain_db)
{
    d_center = center_hz;
    d_rate = rate_hz;
    d_bandwidth = bandwidth_hz > 0 ? std::min(bandwidth_hz, rate_hz) : rate_hz;
    d_noise_amplitude = db_to_amplitude(d_noise_dbm + gain_db);
    for (size_t i = 0; i < d_emitters.size(); i++) {
        const double offset = d_emitters[i].freq_hz - center_hz;
        tone& t = d_tones[i];
        if (std::abs(offset) >= d_bandwidth / 2) {
            t.amplitude = 0.0;
            continue;
        }
        t.amplitude = db_to_amplitude(d_emitters[i].power_dbm + gain_db);
        t.step = std::polar(1.0, two_pi * offset / rate_hz);
        if (std::abs(t.phasor) < 0.5)
            t.phasor = 1.0;
    }
}

double world::strongest_in_band_dbm() const
{
    double best = d_noise_dbm;
    for (size_t i = 0; i < d_emitters.size(); i++)
        if (d_tones[i].amplitude > 0)
            best = std::max(best, d_emitters[i].power_dbm);
    return best;
}

void world::generate(std::complex<float>* out, size_t n)
{
    // Noise: copy a run of the table from a pseudo-random start.
    size_t done = 0;
    d_rng = d_rng * 1664525u + 1013904223u;
    d_noise_pos = (d_noise_pos + (d_rng >> 8)) % noise_table_size;
    const float noise_amp = static_cast<float>(d_noise_amplitude);
    while (done < n) {
        const size_t run = std::min(n - done, noise_table_size - d_noise_pos);
        const std::complex<float>* src = &d_noise_table[d_noise_pos];
        for (size_t k = 0; k < run; k++)
            out[done + k] = src[k] * noise_amp;
        done += run;
        d_noise_pos = (d_noise_pos + run) % noise_table_size;
    }

    for (auto& t : d_tones) {
        if (t.amplitude == 0.0)
            continue;
        std::complex<double> ph = t.phasor;
        const std::complex<double> step = t.step;
        const double amp = t.amplitude;
        for (size_t k = 0; k < n; k++) {
            out[k] += std::complex<float>(static_cast<float>(ph.real() * amp),
                                          static_cast<float>(ph.imag() * amp));
            ph *= step;
        }
        t.phasor = ph / std::abs(ph); // keeps the magnitude from drifting over long runs
    }
}

void saturate(std::complex<float>* out, size_t n)
{
    float* iq = reinterpret_cast<float*>(out);
    for (size_t k = 0; k < 2 * n; k++)
        iq[k] = std::clamp(iq[k], -1.0f, 1.0f);
}

} // namespace riasim
