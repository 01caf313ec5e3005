#include "real_fft.h"
#include <fftw3.h>
#include <algorithm>
#include <mutex>
#include <stdexcept>

namespace gr {
namespace ria {

namespace {
std::mutex& planner_mutex() // FFTW's planner is not thread-safe; GNU Radio plans from other threads too
{
    static std::mutex m;
    return m;
}
} // namespace

real_fft::real_fft(int size) : d_size(size)
{
    std::lock_guard<std::mutex> lock(planner_mutex());
    d_time = fftwf_alloc_real(size);
    d_freq = reinterpret_cast<std::complex<float>*>(fftwf_alloc_complex(size / 2 + 1));
    auto* freq = reinterpret_cast<fftwf_complex*>(d_freq);
    d_fwd = fftwf_plan_dft_r2c_1d(size, d_time, freq, FFTW_ESTIMATE);
    d_inv = fftwf_plan_dft_c2r_1d(size, freq, d_time, FFTW_ESTIMATE | FFTW_DESTROY_INPUT);
    if (!d_time || !d_freq || !d_fwd || !d_inv)
        throw std::runtime_error("ria.aec: FFTW could not plan a transform of " + std::to_string(size));
}

real_fft::~real_fft()
{
    std::lock_guard<std::mutex> lock(planner_mutex());
    fftwf_destroy_plan(static_cast<fftwf_plan>(d_fwd));
    fftwf_destroy_plan(static_cast<fftwf_plan>(d_inv));
    fftwf_free(d_time);
    fftwf_free(d_freq);
}

// Buffers with the plan's SIMD alignment are transformed in place of the plan's own (the same plan, so
// the same arithmetic); others are copied through it.
void real_fft::forward(const float* time, std::complex<float>* freq)
{
    auto* out = reinterpret_cast<fftwf_complex*>(freq);
    if (fftwf_alignment_of(const_cast<float*>(time)) == fftwf_alignment_of(d_time) &&
        fftwf_alignment_of(reinterpret_cast<float*>(freq)) == fftwf_alignment_of(reinterpret_cast<float*>(d_freq))) {
        // an out-of-place real-to-complex transform leaves its input as it was
        fftwf_execute_dft_r2c(static_cast<fftwf_plan>(d_fwd), const_cast<float*>(time), out);
        return;
    }
    std::copy_n(time, d_size, d_time);
    fftwf_execute(static_cast<fftwf_plan>(d_fwd));
    std::copy_n(d_freq, bins(), freq);
}

void real_fft::inverse(const std::complex<float>* freq, float* time)
{
    std::copy_n(freq, bins(), d_freq); // a complex-to-real transform overwrites its input
    const float scale = 1.0f / d_size;
    if (fftwf_alignment_of(time) == fftwf_alignment_of(d_time)) {
        fftwf_execute_dft_c2r(static_cast<fftwf_plan>(d_inv), reinterpret_cast<fftwf_complex*>(d_freq), time);
        for (int i = 0; i < d_size; i++)
            time[i] *= scale;
        return;
    }
    fftwf_execute(static_cast<fftwf_plan>(d_inv));
    for (int i = 0; i < d_size; i++)
        time[i] = d_time[i] * scale;
}

} // namespace ria
} // namespace gr
