#include "riasim_faults.h"
#include "riasim_spec.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

namespace riasim {

namespace {
constexpr auto control_file_poll = std::chrono::milliseconds(20);

double epoch_now_s()
{
    using namespace std::chrono;
    return duration<double>(system_clock::now().time_since_epoch()).count();
}
} // namespace

unplug_style parse_unplug_style(const std::string& name)
{
    if (name == "error")
        return unplug_style::error;
    if (name == "nodev" || name.empty())
        return unplug_style::nodev;
    if (name == "eio")
        return unplug_style::eio;
    if (name == "timeout")
        return unplug_style::timeout;
    throw std::invalid_argument("riasim: unplug style '" + name +
                                "' is not one of error, nodev, eio, timeout");
}

const char* unplug_style_name(unplug_style s)
{
    switch (s) {
    case unplug_style::error:
        return "error";
    case unplug_style::nodev:
        return "nodev";
    case unplug_style::eio:
        return "eio";
    case unplug_style::timeout:
        return "timeout";
    }
    return "nodev";
}

std::string control_file_path(const std::string& serial)
{
    const char* dir = std::getenv("RIASIM_CONTROL_DIR");
    std::string base = dir && *dir ? dir : "/tmp/riasim-" + std::to_string(getuid());
    return base + "/" + serial + ".ctl";
}

// Timeline grammar: "ACTION[:PARAM]@SECONDS;..." with ACTION one of
// unplug[:style], replug, overflow[:count], stall[:seconds].
unit_faults::unit_faults(std::string serial, const std::string& timeline_spec)
    : d_serial(std::move(serial)), d_start(clock::now())
{
    for (const std::string& entry : split_entries(timeline_spec)) {
        const auto at = entry.find('@');
        if (at == std::string::npos)
            throw std::invalid_argument("riasim: faults entry '" + entry +
                                        "' has no @SECONDS (example: unplug:nodev@2)");
        std::string head = entry.substr(0, at);
        const auto colon = head.find(':');
        std::string param = colon == std::string::npos ? "" : head.substr(colon + 1);
        timeline_event ev{ 0.0, head.substr(0, colon), 0.0, unplug_style::nodev };
        if (ev.action == "unplug")
            ev.style = parse_unplug_style(param); // its own message names the styles
        try {
            ev.at_s = std::stod(entry.substr(at + 1));
            if (ev.action == "overflow")
                ev.value = param.empty() ? 1.0 : std::stod(param);
            else if (ev.action == "stall")
                ev.value = param.empty() ? 1.0 : std::stod(param);
            else if (ev.action != "replug" && ev.action != "unplug")
                throw std::invalid_argument("unknown action");
        } catch (const std::exception&) {
            throw std::invalid_argument("riasim: faults entry '" + entry +
                                        "' is not ACTION[:PARAM]@SECONDS with ACTION one of "
                                        "unplug, replug, overflow, stall");
        }
        d_timeline.push_back(ev);
    }
    std::stable_sort(d_timeline.begin(),
                     d_timeline.end(),
                     [](const timeline_event& a, const timeline_event& b) {
                         return a.at_s < b.at_s;
                     });
}

void unit_faults::read_control_file_locked()
{
    const auto now = clock::now();
    if (d_file_seen && now - d_last_file_check < control_file_poll)
        return;
    d_last_file_check = now;
    d_file_seen = true;

    std::ifstream in(control_file_path(d_serial));
    bool present = true;
    unplug_style style = unplug_style::nodev;
    long overflow_total = 0;
    double stall_until = 0.0;
    std::string line;
    while (in && std::getline(in, line)) {
        const auto eq = line.find('=');
        if (eq == std::string::npos)
            continue;
        const std::string key = line.substr(0, eq), value = line.substr(eq + 1);
        try {
            if (key == "present")
                present = value != "0";
            else if (key == "style")
                style = parse_unplug_style(value);
            else if (key == "overflow_total")
                overflow_total = std::stol(value);
            else if (key == "stall_until")
                stall_until = std::stod(value);
        } catch (const std::exception&) {
            // A half-written or hand-edited line: ignore it, the writer replaces the file whole.
        }
    }
    d_file_present = present;
    d_file_style = style;
    if (d_file_overflow_total < 0)
        d_file_overflow_total = overflow_total; // events from before this process don't replay
    else if (overflow_total > d_file_overflow_total) {
        d_pending_overflows += static_cast<int>(overflow_total - d_file_overflow_total);
        d_file_overflow_total = overflow_total;
    }
    d_file_stall_until_epoch = stall_until;
}

fault_snapshot unit_faults::poll(bool consume_overflows)
{
    std::lock_guard<std::mutex> lock(d_mutex);
    const auto now = clock::now();
    const double t = std::chrono::duration<double>(now - d_start).count();
    while (d_next_event < d_timeline.size() && d_timeline[d_next_event].at_s <= t) {
        const timeline_event& ev = d_timeline[d_next_event++];
        if (ev.action == "unplug") {
            d_timeline_present = false;
            d_timeline_style = ev.style;
        } else if (ev.action == "replug") {
            d_timeline_present = true;
        } else if (ev.action == "overflow") {
            d_pending_overflows += static_cast<int>(ev.value);
        } else if (ev.action == "stall") {
            d_stall_until = now + std::chrono::duration_cast<clock::duration>(
                                      std::chrono::duration<double>(ev.value));
        }
    }
    read_control_file_locked();

    fault_snapshot s;
    s.present = d_timeline_present && d_file_present;
    s.style = !d_file_present ? d_file_style : d_timeline_style;
    s.new_overflows = d_pending_overflows;
    if (consume_overflows)
        d_pending_overflows = 0;
    const double timeline_stall = std::chrono::duration<double>(d_stall_until - now).count();
    const double file_stall = d_file_stall_until_epoch - epoch_now_s();
    s.stall_remaining_s = std::max({ 0.0, timeline_stall, file_stall });
    return s;
}

bool unit_faults::present()
{
    fault_snapshot s = poll();
    std::lock_guard<std::mutex> lock(d_mutex);
    d_pending_overflows += s.new_overflows; // only looking: keep them for the stream
    return s.present;
}

namespace {
std::mutex registry_mutex;
std::map<std::string, std::shared_ptr<unit_faults>>& registry()
{
    static std::map<std::string, std::shared_ptr<unit_faults>> units;
    return units;
}
} // namespace

std::shared_ptr<unit_faults> faults_for(const std::string& serial, const std::string& timeline_spec)
{
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto it = registry().find(serial);
    if (it != registry().end())
        return it->second;
    auto unit = std::make_shared<unit_faults>(serial, timeline_spec); // may throw: bad spec
    registry()[serial] = unit;
    return unit;
}

std::shared_ptr<unit_faults> faults_lookup(const std::string& serial)
{
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto it = registry().find(serial);
    if (it != registry().end())
        return it->second;
    return std::make_shared<unit_faults>(serial, "");
}

} // namespace riasim
