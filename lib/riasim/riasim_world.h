/* The radio world riasim receives: emitters at absolute frequencies over a noise floor. */
#ifndef INCLUDED_RIASIM_WORLD_H
#define INCLUDED_RIASIM_WORLD_H

#include <complex>
#include <cstdint>
#include <string>
#include <vector>

namespace riasim {

struct emitter {
    double freq_hz;
    double power_dbm;
};

// "100.1e6:-50;433.92e6:-60" -> emitters; throws std::invalid_argument naming the bad entry.
std::vector<emitter> parse_emitters(const std::string& spec);
std::vector<emitter> default_emitters();

// Generates what a receiver tuned to (center, rate, bandwidth) with a given gain would see.
// Levels: an emitter of P dBm appears at P + gain dBFS; the ADC clips at full scale 1.0.
class world
{
public:
    world(std::vector<emitter> emitters, double noise_dbm, uint32_t seed);

    void tune(double center_hz, double rate_hz, double bandwidth_hz, double gain_db);
    //! Noise and emitters, before the ADC (see saturate).
    void generate(std::complex<float>* out, size_t n);

    // Strongest emitter inside the current passband, for automatic gain.
    double strongest_in_band_dbm() const;
    double noise_dbm() const { return d_noise_dbm; }

private:
    struct tone {
        std::complex<double> phasor;
        std::complex<double> step;
        double amplitude;
    };
    std::vector<emitter> d_emitters;
    std::vector<tone> d_tones; // parallel to d_emitters; amplitude 0 when out of band
    std::vector<std::complex<float>> d_noise_table;
    size_t d_noise_pos = 0;
    uint32_t d_rng;
    double d_noise_dbm;
    double d_noise_amplitude = 0.0;
    double d_center = 0.0;
    double d_rate = 1.0;
    double d_bandwidth = 0.0;
};

//! The ADC: clips I and Q at full scale 1.0.
void saturate(std::complex<float>* out, size_t n);

} // namespace riasim

#endif
