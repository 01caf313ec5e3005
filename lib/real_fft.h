/* Real FFTs of one size on FFTW with FFTW_ESTIMATE: the plan depends only on the size and the
 * alignment of its own (FFTW-allocated) buffers, never on timing or a wisdom file, so every process computes
 * bit-identical transforms and the canceller's decisions cannot differ between runs. A caller's buffers
 * with the same alignment are transformed directly by that plan; others go through its buffers. */
#ifndef INCLUDED_RIA_REAL_FFT_H
#define INCLUDED_RIA_REAL_FFT_H

#include <complex>
#include <cstddef>

namespace gr {
namespace ria {

class real_fft
{
public:
    explicit real_fft(int size);
    ~real_fft();
    real_fft(const real_fft&) = delete;
    real_fft& operator=(const real_fft&) = delete;

    int size() const { return d_size; }
    int bins() const { return d_size / 2 + 1; }
    //! time[0..size) -> freq[0..bins) (unnormalised)
    void forward(const float* time, std::complex<float>* freq);
    //! freq[0..bins) -> time[0..size), scaled by 1/size so that inverse(forward(x)) == x
    void inverse(const std::complex<float>* freq, float* time);

private:
    const int d_size;
    float* d_time;
    std::complex<float>* d_freq;
    void* d_fwd;
    void* d_inv;
};

//! The smallest power of two >= n: a size FFTW transforms fastest, for a correlation of n samples or more.
inline int pow2_at_least(int n)
{
    int p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

//! |z|^2 as re^2 + im^2 (std::norm goes through abs(), a hypot, unless built with -ffast-math).
inline float power(std::complex<float> z) { return z.real() * z.real() + z.imag() * z.imag(); }

} // namespace ria
} // namespace gr

#endif
