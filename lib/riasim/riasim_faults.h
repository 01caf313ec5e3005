/* Fault injection for riasim: a timeline from device args plus a control file that any
 * process (or another place in this one) can write. State is kept per serial and per
 * process, so a device that is closed and reopened stays on the same timeline. */
#ifndef INCLUDED_RIASIM_FAULTS_H
#define INCLUDED_RIASIM_FAULTS_H

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace riasim {

// How an unplugged device fails in readStream, like real drivers do.
enum class unplug_style {
    error,   // readStream returns SOAPY_SDR_STREAM_ERROR
    nodev,   // readStream throws "No such device" (errno 19, as libusb/kernel say)
    eio,     // readStream throws "Input/output error" (errno 5)
    timeout, // readStream times out forever
};

unplug_style parse_unplug_style(const std::string& name); // throws std::invalid_argument
const char* unplug_style_name(unplug_style s);

struct fault_snapshot {
    bool present = true;
    unplug_style style = unplug_style::nodev;
    int new_overflows = 0;          // overflow events to report now
    double stall_remaining_s = 0.0; // > 0: no samples for this long
};

class unit_faults
{
public:
    using clock = std::chrono::steady_clock;

    unit_faults(std::string serial, const std::string& timeline_spec);

    // Current state; consumes pending overflow events unless asked not to (the TX side only looks:
    // overflows are the receiver's). Cheap enough to call per read.
    fault_snapshot poll(bool consume_overflows = true);
    bool present();

private:
    struct timeline_event {
        double at_s;
        std::string action; // unplug, replug, overflow, stall
        double value;       // overflow count, stall seconds
        unplug_style style;
    };
    void read_control_file_locked();

    std::mutex d_mutex;
    std::string d_serial;
    clock::time_point d_start;
    std::vector<timeline_event> d_timeline;
    size_t d_next_event = 0;

    bool d_timeline_present = true;
    unplug_style d_timeline_style = unplug_style::nodev;
    int d_pending_overflows = 0;
    clock::time_point d_stall_until{};

    // Control file state.
    clock::time_point d_last_file_check{};
    bool d_file_seen = false;
    bool d_file_present = true;
    unplug_style d_file_style = unplug_style::nodev;
    long d_file_overflow_total = -1; // -1: not read yet
    double d_file_stall_until_epoch = 0.0;
};

// Per-process registry: the first call for a serial fixes its timeline.
std::shared_ptr<unit_faults> faults_for(const std::string& serial, const std::string& timeline_spec);
// The unit if this process already has it, else a fresh one without a timeline (for find()).
std::shared_ptr<unit_faults> faults_lookup(const std::string& serial);

std::string control_file_path(const std::string& serial);

} // namespace riasim

#endif
