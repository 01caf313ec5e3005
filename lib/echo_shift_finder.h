/* Finds how far the echo moved as a whole (a delay jump: a sound card's buffer under- or overrun),
 * long before the delay tracker's half-second windows can: the microphone is cross-correlated with
 * the echo filter's own echo estimate, which is the reference already shaped by the room, so the echo
 * that moved shows as one sharp peak at the lag it moved by. Asked only when a filter that cancelled
 * well suddenly does not. */
#ifndef INCLUDED_RIA_ECHO_SHIFT_FINDER_H
#define INCLUDED_RIA_ECHO_SHIFT_FINDER_H

#include "real_fft.h"
#include <complex>
#include <vector>

namespace gr {
namespace ria {

class echo_shift_finder
{
public:
    echo_shift_finder(int block, double sample_rate);
    //! A block of microphone and echo estimate, in step.
    void push(const float* d, const float* y);
    void reset();
    //! Samples the echo moved later (negative: earlier) when the last window shows it clearly, else 0.
    int find();

private:
    const int d_n, d_window, d_reach, d_span; // block, correlated samples, largest lag, history kept
    real_fft d_fft;
    // the histories, oldest first, end at d_end: blocks are appended, and the last d_span samples moved
    // back to the start only when the buffer is full (copying the whole history every block cost as much
    // as the echo filter's update)
    std::vector<float> d_d, d_y;
    int d_end;
    std::vector<float> d_a, d_b, d_c; // work buffers
    std::vector<std::complex<float>> d_fa, d_fb;
    int d_filled = 0;
};

} // namespace ria
} // namespace gr

#endif
