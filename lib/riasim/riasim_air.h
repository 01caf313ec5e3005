/* The air between riasim radios: what any riasim transmitter on this host sends, every riasim
 * receiver hears, in this process or another.
 *
 * A fixed-size file (memory-mapped; /dev/shm by default) holds a few transmitter slots. A slot is
 * a ring of recent samples plus segments (air start time, rate, frequency, level); a transmitter
 * appends, receivers mix in what overlaps the air time of the samples they make. Air time is
 * CLOCK_REALTIME in nanoseconds, so every process agrees on it. Writers publish with a seqlock
 * and a "reserved" mark ahead of the ring data, so a reader in another process never uses torn
 * samples: it drops a contribution instead. */
#ifndef INCLUDED_RIASIM_AIR_H
#define INCLUDED_RIASIM_AIR_H

#include <complex>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace riasim {

//! Air time: CLOCK_REALTIME in ns.
int64_t air_now_ns();

//! dBm of a full-scale (|x| = 1) transmitted sample at TX gain g dB: g + this.
constexpr double tx_dbm_at_full_scale_0db = -60.0;
//! Default loss between any riasim transmitter and any riasim receiver (device arg path_loss).
constexpr double default_path_loss_db = 40.0;

/*! The air file to use: \p device_arg if given, else $RIASIM_AIR, else /dev/shm/riasim-air-<uid>.
 *  "off" (either way) gives "": no air. */
std::string air_path(const std::string& device_arg);

struct air_map; // the mapping of one air file (riasim_air.cc)

//! What a transmitter puts on the air from its next sample on.
struct air_setting {
    double rate;
    double freq_hz;
    double level_db; //!< dBm of a full-scale sample
};

class air_transmitter
{
public:
    explicit air_transmitter(std::string path);
    ~air_transmitter();

    //! Starts a segment whose first sample is on the air at \p start_ns (claims a slot if needed).
    //! Returns false when there is no air (no file, every slot taken).
    bool begin_segment(int64_t start_ns, const air_setting& setting);
    //! Appends samples to the current segment.
    void append(const std::complex<float>* x, size_t n);
    //! Gives the slot back (its samples stay audible until their air time has passed).
    void release();
    //! Why the last begin_segment failed ("" if it did not).
    const std::string& problem() const { return d_problem; }

private:
    bool claim();

    std::string d_path;
    std::shared_ptr<air_map> d_map;
    int d_slot = -1;
    uint64_t d_token = 0;
    bool d_segment_open = false;
    std::string d_problem;
};

class air_receiver
{
public:
    air_receiver(std::string path, double path_loss_db);
    ~air_receiver();

    /*! Adds to \p out[0..n) what a receiver hears whose sample k is at air time
     *  t0_ns + k / rate, tuned to \p center_hz with \p bandwidth_hz and \p gain_db: each
     *  transmitter whose frequency is inside the band, shifted by its offset, resampled,
     *  at its level − path loss + gain (dBFS, as static emitters). */
    void mix(std::complex<float>* out,
             size_t n,
             int64_t t0_ns,
             double rate,
             double center_hz,
             double bandwidth_hz,
             double gain_db);
    void set_path_loss(double db) { d_path_loss_db = db; }

private:
    bool attached();

    std::string d_path;
    double d_path_loss_db;
    std::shared_ptr<air_map> d_map;
    int64_t d_next_attach_ns = 0;
    std::vector<std::complex<float>> d_scratch;
};

//! For tests and riasim_control: the slots in use, as JSON.
std::string air_slots_json(const std::string& path);

} // namespace riasim

#endif
