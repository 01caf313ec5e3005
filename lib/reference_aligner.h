/* Keeps the recent far-end reference and reads it back at a fractional, slowly moving offset behind
 * the microphone: one mechanism for the bulk delay and for the resampling that follows clock drift. */
#ifndef INCLUDED_RIA_REFERENCE_ALIGNER_H
#define INCLUDED_RIA_REFERENCE_ALIGNER_H

#include <cstdint>
#include <vector>

namespace gr {
namespace ria {

class reference_aligner
{
public:
    //! Interpolation reaches this many samples either side of the read position.
    static constexpr int HALF_TAPS = 12;

    //! \p max_offset: the largest offset (samples) that will be read; \p block: samples per push.
    reference_aligner(double max_offset, int block);

    //! Appends n reference samples; the newest has index written() - 1.
    void push(const float* ref, int n);
    uint64_t written() const { return d_written; }
    void reset();

    //! out[i] = reference at position (start + i) - (offset + step * i), for i in [0, n).
    //! Offsets are clamped to max_offset; below min_offset() (which the interpolator needs) the
    //! read is at the nearest whole sample, down to 0.
    void read(uint64_t start, double offset, double step, float* out, int n) const;
    static double min_offset() { return HALF_TAPS + 1; }

private:
    float at(int64_t index) const;

    const double d_max_offset;
    std::vector<float> d_ring;
    uint64_t d_mask;
    uint64_t d_written = 0;
    std::vector<float> d_kernels; // PHASES + 1 rows of 2 * HALF_TAPS taps
};

} // namespace ria
} // namespace gr

#endif
