#include "echo_shift_finder.h"
#include <algorithm>
#include <cmath>

namespace gr {
namespace ria {

namespace {
constexpr double SHIFT_WINDOW_S = 0.2;   // the shift finder correlates this much microphone
constexpr double SHIFT_REACH_S = 0.04;   // for moves up to this far either way
constexpr double SHIFT_MIN_CORR = 0.6;   // normalised correlation the moved echo must reach
constexpr double SHIFT_MIN_GAIN = 0.3;   // over the correlation where the echo was
constexpr int HISTORY_SPANS = 3;         // the history buffers hold this many spans (see the header)

int blocks_of(double seconds, double rate, int block)
{
    return std::max(1, static_cast<int>(std::lround(seconds * rate / block)));
}
} // namespace

echo_shift_finder::echo_shift_finder(int block, double sample_rate)
    : d_n(block),
      d_window(blocks_of(SHIFT_WINDOW_S, sample_rate, block) * block),
      d_reach(static_cast<int>(std::lround(SHIFT_REACH_S * sample_rate))),
      d_span(d_window + 2 * d_reach + block),
      d_fft(pow2_at_least(d_window + 2 * d_reach + 1)),
      d_d(static_cast<size_t>(HISTORY_SPANS) * d_span),
      d_y(d_d.size()),
      d_end(d_span),
      d_a(d_fft.size()),
      d_b(d_fft.size()),
      d_c(d_fft.size()),
      d_fa(d_fft.bins()),
      d_fb(d_fft.bins())
{
}

void echo_shift_finder::reset()
{
    std::fill(d_d.begin(), d_d.end(), 0.0f);
    std::fill(d_y.begin(), d_y.end(), 0.0f);
    d_end = d_span;
    d_filled = 0;
}

void echo_shift_finder::push(const float* d, const float* y)
{
    if (d_end + d_n > static_cast<int>(d_d.size())) {
        std::copy(d_d.begin() + d_end - d_span, d_d.begin() + d_end, d_d.begin());
        std::copy(d_y.begin() + d_end - d_span, d_y.begin() + d_end, d_y.begin());
        d_end = d_span;
    }
    std::copy_n(d, d_n, d_d.begin() + d_end);
    std::copy_n(y, d_n, d_y.begin() + d_end);
    d_end += d_n;
    d_filled = std::min(d_span, d_filled + d_n);
}

int echo_shift_finder::find()
{
    if (d_filled < d_span)
        return 0;
    // b: the microphone over the window ending d_reach ago; a: the estimate d_reach either side of it.
    // The microphone d(t) = y(t - L) peaks c[k] = sum b[t] a[t + k] at k = d_reach - L.
    const int la = d_window + 2 * d_reach;
    std::fill(d_a.begin(), d_a.end(), 0.0f);
    std::fill(d_b.begin(), d_b.end(), 0.0f);
    std::copy_n(d_y.begin() + d_end - la, la, d_a.begin());
    std::copy_n(d_d.begin() + d_end - d_reach - d_window, d_window, d_b.begin());
    d_fft.forward(d_a.data(), d_fa.data());
    d_fft.forward(d_b.data(), d_fb.data());
    for (size_t k = 0; k < d_fa.size(); k++)
        d_fa[k] *= std::conj(d_fb[k]);
    d_fft.inverse(d_fa.data(), d_c.data());

    double bb = 0, aa = 0;
    for (int t = 0; t < d_window; t++) {
        bb += double(d_b[t]) * d_b[t];
        aa += double(d_a[t]) * d_a[t];
    }
    if (!(bb > 0))
        return 0;
    double best = -1, at_zero = 0;
    int best_k = d_reach;
    for (int k = 0; k <= 2 * d_reach; k++) {
        if (k > 0) // aa: the estimate's energy under the window at lag k
            aa += double(d_a[k + d_window - 1]) * d_a[k + d_window - 1] - double(d_a[k - 1]) * d_a[k - 1];
        const double rho = aa > 0 ? d_c[k] / std::sqrt(aa * bb) : 0.0;
        if (k == d_reach)
            at_zero = rho;
        if (rho > best) {
            best = rho;
            best_k = k;
        }
    }
    if (best < SHIFT_MIN_CORR || best < at_zero + SHIFT_MIN_GAIN)
        return 0;
    return d_reach - best_k;
}

} // namespace ria
} // namespace gr
