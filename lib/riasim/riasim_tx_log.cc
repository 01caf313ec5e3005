#include "riasim_tx_log.h"

#include <map>
#include <sstream>

namespace riasim {

void tx_log::add(const tx_write& w)
{
    std::lock_guard<std::mutex> lock(d_mutex);
    if (d_writes.size() >= capacity)
        d_writes.pop_front();
    d_writes.push_back(w);
}

void tx_log::clear()
{
    std::lock_guard<std::mutex> lock(d_mutex);
    d_writes.clear();
}

std::string tx_log::json() const
{
    std::lock_guard<std::mutex> lock(d_mutex);
    std::ostringstream js;
    js.precision(17);
    js << "[";
    bool first = true;
    for (const auto& w : d_writes) {
        js << (first ? "" : ",") << "{\"flags\":" << w.flags << ",\"time_ns\":" << w.time_ns
           << ",\"count\":" << w.ret << ",\"asked\":" << w.asked << ",\"freq\":" << w.freq
           << ",\"rate\":" << w.rate << ",\"gain\":" << w.gain << ",\"aired\":" << (w.aired ? "true" : "false")
           << "}";
        first = false;
    }
    js << "]";
    return js.str();
}

std::shared_ptr<tx_log> tx_log_for(const std::string& serial)
{
    static std::mutex registry_mutex;
    static std::map<std::string, std::shared_ptr<tx_log>> logs;
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto& log = logs[serial];
    if (!log)
        log = std::make_shared<tx_log>();
    return log;
}

} // namespace riasim
