#include "reference_aligner.h"
#include <algorithm>
#include <cmath>
#include <cstring>

namespace gr {
namespace ria {

namespace {
constexpr int PHASES = 1024; // nearest phase: at most 1/2048 sample off
constexpr double KAISER_BETA = 8.0;
constexpr int LANES = 4;
typedef float lanes __attribute__((vector_size(LANES * sizeof(float))));
static_assert((2 * reference_aligner::HALF_TAPS) % LANES == 0, "taps must fill whole lanes");

double bessel_i0(double x)
{
    double sum = 1, term = 1;
    for (int k = 1; k < 40; k++) {
        term *= (x / (2 * k)) * (x / (2 * k));
        sum += term;
    }
    return sum;
}
} // namespace

reference_aligner::reference_aligner(double max_offset, int block)
    : d_max_offset(std::max(max_offset, min_offset()))
{
    uint64_t size = 1;
    while (size < static_cast<uint64_t>(d_max_offset) + 2 * HALF_TAPS + 2 * block + 2)
        size <<= 1;
    d_ring.assign(size, 0.0f);
    d_mask = size - 1;

    // Row p interpolates at fraction p / PHASES: tap k weighs sample floor(pos) - HALF_TAPS + 1 + k.
    const int taps = 2 * HALF_TAPS;
    d_kernels.resize((PHASES + 1) * taps);
    for (int p = 0; p <= PHASES; p++) {
        const double frac = double(p) / PHASES;
        double sum = 0;
        for (int k = 0; k < taps; k++) {
            const double x = frac - (k - HALF_TAPS + 1);
            const double edge = 1 - (x / HALF_TAPS) * (x / HALF_TAPS);
            const double window = edge > 0 ? bessel_i0(KAISER_BETA * std::sqrt(edge)) / bessel_i0(KAISER_BETA) : 0;
            const double sinc = x == 0 ? 1 : std::sin(M_PI * x) / (M_PI * x);
            d_kernels[p * taps + k] = static_cast<float>(sinc * window);
            sum += sinc * window;
        }
        for (int k = 0; k < taps; k++) // unity gain at DC for every phase
            d_kernels[p * taps + k] = static_cast<float>(d_kernels[p * taps + k] / sum);
    }
}

void reference_aligner::reset()
{
    std::fill(d_ring.begin(), d_ring.end(), 0.0f);
    d_written = 0;
}

void reference_aligner::push(const float* ref, int n)
{
    for (int i = 0; i < n; i++)
        d_ring[(d_written + i) & d_mask] = ref[i];
    d_written += n;
}

float reference_aligner::at(int64_t index) const
{
    return index < 0 ? 0.0f : d_ring[static_cast<uint64_t>(index) & d_mask];
}

void reference_aligner::read(uint64_t start, double offset, double step, float* out, int n) const
{
    const bool whole = step == 0 && offset == std::floor(offset);
    if ((whole || offset < min_offset()) && offset <= d_max_offset) {
        // A whole-sample delay is a copy (the interpolator's phase 0 is a unit impulse). So is one too
        // short for the interpolator to reach the newest samples: an echo at (almost) the same sample
        // as its reference is read at the nearest whole sample, down to 0.
        const int64_t first = static_cast<int64_t>(start) - std::max<int64_t>(0, std::llround(offset));
        for (int i = 0; i < n; i++)
            out[i] = at(first + i);
        return;
    }
    const int taps = 2 * HALF_TAPS;
    for (int i = 0; i < n; i++) {
        const double o = std::clamp(offset + step * i, min_offset(), d_max_offset);
        const double pos = static_cast<double>(start + i) - o;
        const double base = std::floor(pos);
        const int p = static_cast<int>((pos - base) * PHASES + 0.5); // nearest phase (0..PHASES)
        const float* k = &d_kernels[p * taps];
        const int64_t first = static_cast<int64_t>(base) - HALF_TAPS + 1;
        const uint64_t slot = static_cast<uint64_t>(first) & d_mask;
        if (first >= 0 && slot + taps <= d_ring.size()) {
            // Four sums side by side in one SIMD register: the compiler neither reorders nor
            // vectorises a single float sum by itself.
            const float* x = &d_ring[slot];
            lanes acc = {};
            for (int t = 0; t < taps; t += LANES) {
                lanes a, b;
                std::memcpy(&a, k + t, sizeof a);
                std::memcpy(&b, x + t, sizeof b);
                acc += a * b;
            }
            out[i] = acc[0] + acc[1] + acc[2] + acc[3];
        } else {
            float acc = 0;
            for (int t = 0; t < taps; t++)
                acc += k[t] * at(first + t);
            out[i] = acc;
        }
    }
}

} // namespace ria
} // namespace gr
