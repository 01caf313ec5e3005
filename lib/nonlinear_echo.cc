#include "nonlinear_echo.h"
#include <algorithm>
#include <cmath>

namespace gr {
namespace ria {

namespace {
constexpr double EARLY_S = 0.03;         // W is applied to the terms over this much of its start
constexpr double FIRST_PROBE_S = 3.0;    // the first test, once the filter may cancel
// A first test that finds nothing is tried once more this soon: at 3 s a filter still converging can hide the
// distortion (tanh(3 x) in the 0.5 s room: share 0.044 at 3 s, 0.15 at 5 s; a clip at 0.3: 0.000 and 0.18;
// linear loudspeakers 0.003 to 0.010 at either), and learning from 5 s on rather than 3 s costs tanh(6 x) 7 dB.
constexpr double SECOND_PROBE_AFTER_S = 1.5;
constexpr double PROBE_EVERY_S = 10.0;   // then one test this often while no distortion is found
constexpr double PROBE_S = 0.5;          // usable blocks a test takes
constexpr double PROBE_MAX_S = 3.0;      // and it gives up after this long
// The share of the error the two terms must explain, beyond what a rescaled estimate explains, for the
// curve to be taken on. Measured on the bench: linear loudspeakers 0.000 to 0.028 (every room, drift, music,
// double talk, 48 kHz); tanh(3 x) 0.21 at the first test, tanh(1.5 x) 0.03 then 0.19, a hard clip 0.007 then 0.15.
constexpr double FOUND_SHARE = 0.05;
constexpr double MEMORY_S = 1.0;         // of the statistics while learning
constexpr double LEARN_STEP = 0.3;       // share of the least-squares change taken per block
constexpr double MAX_A3 = 20.0, MAX_A5 = 200.0;
constexpr double MIN_SLOPE = 0.05;       // the curve's slope may not fall below this (a monotone loudspeaker)
constexpr int KNEE_STEPS = 128;
constexpr float QUIET = 1e-3f; // a reference block under this peak has terms of nothing (under -180 dB)
} // namespace

nonlinear_echo::nonlinear_echo(int block, double sample_rate)
    : d_n(block),
      d_k(block + 1),
      d_q(std::max(1, static_cast<int>(std::ceil(EARLY_S * sample_rate / block)))),
      d_probe_blocks(std::max(1, static_cast<int>(std::lround(PROBE_S * sample_rate / block)))),
      d_probe_max_blocks(std::max(1, static_cast<int>(std::lround(PROBE_MAX_S * sample_rate / block)))),
      d_probe_every_blocks(std::max(1, static_cast<int>(std::lround(PROBE_EVERY_S * sample_rate / block)))),
      d_second_probe_blocks(static_cast<int>(std::lround(SECOND_PROBE_AFTER_S * sample_rate / block))),
      d_keep(std::exp(-block / (MEMORY_S * sample_rate))),
      d_fft(2 * block),
      d_time(2 * block),
      d_prev3(block),
      d_prev5(block),
      d_z3(block),
      d_z5(block),
      d_shaped(block),
      d_ring3(static_cast<size_t>(d_q) * d_k),
      d_ring5(static_cast<size_t>(d_q) * d_k),
      d_spec(d_k)
{
    reset();
}

void nonlinear_echo::reset()
{
    d_a[0] = d_a[1] = 0;
    d_range = 0;
    d_active = d_probing = false;
    d_idle = d_probe_every_blocks - static_cast<int>(std::lround(FIRST_PROBE_S / PROBE_EVERY_S * d_probe_every_blocks));
    d_probed = d_probe_age = 0;
    d_tests = 0;
    d_warm = 0;
    std::fill(d_prev3.begin(), d_prev3.end(), 0.0f);
    std::fill(d_prev5.begin(), d_prev5.end(), 0.0f);
    update_curve();
}

int nonlinear_echo::next_test_idle()
{
    return ++d_tests == 1 ? d_probe_every_blocks - d_second_probe_blocks : 0;
}

float nonlinear_echo::curve(float x) const
{
    const float m = std::abs(x);
    if (m <= d_knee) {
        const float x2 = x * x;
        return x * static_cast<float>(1 + x2 * (d_a[0] + x2 * d_a[1]));
    }
    return std::copysign(d_knee_value + d_knee_slope * (m - d_knee), x);
}

// The knee: the first point where the slope falls to MIN_SLOPE, or the loudest sample learned on.
void nonlinear_echo::update_curve()
{
    const double top = d_range > 0 ? std::min(d_range, 1.0) : 1.0;
    double knee = top, last = 1;
    for (int i = 1; i <= KNEE_STEPS; i++) {
        const double v = top * i / KNEE_STEPS, v2 = v * v;
        const double slope = 1 + 3 * d_a[0] * v2 + 5 * d_a[1] * v2 * v2;
        if (slope < MIN_SLOPE || (slope < 1 && slope > last)) {
            knee = top * (i - 1) / KNEE_STEPS;
            break;
        }
        last = slope;
    }
    const double k2 = knee * knee;
    d_knee = static_cast<float>(knee);
    d_knee_value = static_cast<float>(knee * (1 + k2 * (d_a[0] + k2 * d_a[1])));
    d_knee_slope = static_cast<float>(std::max(MIN_SLOPE, 1 + 3 * d_a[0] * k2 + 5 * d_a[1] * k2 * k2));
}

const float* nonlinear_echo::shape(const float* x)
{
    if (!d_active)
        return x;
    for (int i = 0; i < d_n; i++)
        d_shaped[i] = curve(x[i]);
    return d_shaped.data();
}

void nonlinear_echo::shape_in_place(float* x, size_t n) const
{
    if (!d_active)
        return;
    for (size_t i = 0; i < n; i++)
        x[i] = curve(x[i]);
}

// The terms x^3 and x^5 of this block (x held at the knee), into the ring of spectra.
void nonlinear_echo::push_terms(const float* x)
{
    d_head = (d_head + 1) % d_q;
    d_warm = std::min(d_warm + 1, d_q);
    float peak = 0;
    for (int i = 0; i < d_n; i++)
        peak = std::max(peak, std::abs(x[i]));
    if (peak < QUIET) { // spares the transforms in the far end's pauses
        std::fill(d_prev3.begin(), d_prev3.end(), 0.0f);
        std::fill(d_prev5.begin(), d_prev5.end(), 0.0f);
        std::fill_n(&d_ring3[static_cast<size_t>(d_head) * d_k], d_k, cf(0));
        std::fill_n(&d_ring5[static_cast<size_t>(d_head) * d_k], d_k, cf(0));
        return;
    }
    for (int term = 0; term < 2; term++) {
        std::vector<float>& prev = term == 0 ? d_prev3 : d_prev5;
        std::copy(prev.begin(), prev.end(), d_time.begin());
        for (int i = 0; i < d_n; i++) {
            const float v = std::clamp(x[i], -d_knee, d_knee), v3 = v * v * v;
            d_time[d_n + i] = term == 0 ? v3 : v3 * v * v;
        }
        std::copy_n(d_time.begin() + d_n, d_n, prev.begin());
        d_fft.forward(d_time.data(), &(term == 0 ? d_ring3 : d_ring5)[static_cast<size_t>(d_head) * d_k]);
    }
}

// Least squares of e on (y, z3, z5): explained[0] the error energy y alone explains, explained[1] what all
// three do; delta the change of (a3, a5).
void nonlinear_echo::solve(double explained[2], double delta[2]) const
{
    explained[0] = explained[1] = delta[0] = delta[1] = 0;
    double m[3][4];
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++)
            m[i][j] = d_r[i][j];
        m[i][i] += 1e-9 * d_r[i][i] + 1e-30;
        m[i][3] = d_c[i];
    }
    if (d_r[0][0] > 0)
        explained[0] = d_c[0] * d_c[0] / d_r[0][0];
    for (int i = 0; i < 3; i++) { // Gauss-Jordan on a positive definite matrix: no pivoting needed
        if (!(m[i][i] > 0))
            return;
        for (int j = 0; j < 3; j++) {
            if (j == i)
                continue;
            const double f = m[j][i] / m[i][i];
            for (int c = i; c < 4; c++)
                m[j][c] -= f * m[i][c];
        }
    }
    double b[3];
    for (int i = 0; i < 3; i++)
        b[i] = m[i][3] / m[i][i];
    if (!std::isfinite(b[0]) || !std::isfinite(b[1]) || !std::isfinite(b[2]))
        return;
    explained[1] = b[0] * d_c[0] + b[1] * d_c[1] + b[2] * d_c[2];
    delta[0] = b[1];
    delta[1] = b[2];
}

void nonlinear_echo::learn(const float* x, const float* e, const float* y, const std::vector<cf>& w, bool usable)
{
    if (!d_active && !d_probing) {
        d_idle = std::min(d_idle + 1, d_probe_every_blocks);
        if (d_idle < d_probe_every_blocks || !usable) // a test starts where it can learn at once
            return;
        d_probing = true;
        d_probed = d_probe_age = 0;
        d_warm = 0;
        for (auto& row : d_r)
            std::fill(row, row + 3, 0.0);
        std::fill(d_c, d_c + 3, 0.0);
        d_ee = 0;
    }
    push_terms(x);
    if (d_probing && ++d_probe_age > d_probe_max_blocks) {
        d_probing = false; // too little far end alone to tell: the next test
        d_idle = next_test_idle();
        return;
    }
    if (d_warm < d_q || !usable)
        return;
    for (int term = 0; term < 2; term++) {
        const std::vector<cf>& ring = term == 0 ? d_ring3 : d_ring5;
        std::fill(d_spec.begin(), d_spec.end(), cf(0));
        for (int age = 0; age < d_q; age++) {
            const cf* t = &ring[static_cast<size_t>((d_head + d_q - age) % d_q) * d_k];
            const cf* wp = &w[static_cast<size_t>(age) * d_k];
            for (int f = 0; f < d_k; f++) {
                const float wr = wp[f].real(), wi = wp[f].imag(), tr = t[f].real(), ti = t[f].imag();
                d_spec[f] = cf(d_spec[f].real() + (wr * tr - wi * ti), d_spec[f].imag() + (wr * ti + wi * tr));
            }
        }
        d_fft.inverse(d_spec.data(), d_time.data());
        std::copy_n(d_time.begin() + d_n, d_n, (term == 0 ? d_z3 : d_z5).begin());
    }
    double r[3][3] = {}, c[3] = {}, ee = 0;
    float peak = 0;
    for (int i = 0; i < d_n; i++) {
        const double v[3] = { y[i], d_z3[i], d_z5[i] };
        for (int a = 0; a < 3; a++) {
            for (int b = a; b < 3; b++)
                r[a][b] += v[a] * v[b];
            c[a] += v[a] * e[i];
        }
        ee += double(e[i]) * e[i];
        peak = std::max(peak, std::abs(x[i]));
    }
    if (!std::isfinite(ee) || !std::isfinite(r[1][1]) || !std::isfinite(r[2][2]))
        return;
    const double keep = d_active ? d_keep : 1.0;
    for (int a = 0; a < 3; a++) {
        for (int b = a; b < 3; b++)
            d_r[b][a] = d_r[a][b] = keep * d_r[a][b] + r[a][b];
        d_c[a] = keep * d_c[a] + c[a];
    }
    d_ee = keep * d_ee + ee;
    d_range = std::max(d_range, double(peak));

    double explained[2], delta[2];
    if (d_probing) {
        if (++d_probed < d_probe_blocks)
            return;
        d_probing = false;
        d_idle = next_test_idle();
        solve(explained, delta);
        if (!(d_ee > 0) || explained[1] - explained[0] < FOUND_SHARE * d_ee)
            return;
        d_active = true;
    } else {
        solve(explained, delta);
    }
    const double step[2] = { LEARN_STEP * delta[0], LEARN_STEP * delta[1] };
    const double a3 = std::clamp(d_a[0] + step[0], -MAX_A3, MAX_A3);
    const double a5 = std::clamp(d_a[1] + step[1], -MAX_A5, MAX_A5);
    const double taken[2] = { a3 - d_a[0], a5 - d_a[1] };
    // the statistics as if the error had been made with the new curve already (the filter's linear part
    // follows by itself)
    for (int a = 0; a < 3; a++)
        d_c[a] -= d_r[a][1] * taken[0] + d_r[a][2] * taken[1];
    d_a[0] = a3;
    d_a[1] = a5;
    update_curve();
}

} // namespace ria
} // namespace gr
