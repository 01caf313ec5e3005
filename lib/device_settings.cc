#include "device_settings.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <stdexcept>

namespace gr {
namespace ria {

namespace {
constexpr size_t max_text = 4096;
constexpr size_t max_settings = 64;

std::string trim(const std::string& s)
{
    const auto first = s.find_first_not_of(" \t");
    if (first == std::string::npos)
        return "";
    return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

bool key_char(char c)
{
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == ':';
}

std::string join(const std::vector<std::string>& items)
{
    std::string all;
    for (const auto& i : items)
        all += (all.empty() ? "" : ", ") + i;
    return all;
}

bool is_number(const std::string& s, bool integer)
{
    if (s.empty())
        return false;
    try {
        size_t used = 0;
        const double v = std::stod(s, &used);
        return used == s.size() && std::isfinite(v) && (!integer || v == std::floor(v));
    } catch (const std::exception&) {
        return false;
    }
}
} // namespace

device_settings parse_device_settings(const std::string& text)
{
    if (text.size() > max_text)
        throw std::invalid_argument("sdr_source: device_settings is longer than " + std::to_string(max_text) +
                                    " characters");
    device_settings out;
    size_t start = 0;
    while (start <= text.size()) {
        const size_t end = std::min(text.find(',', start), text.size());
        const std::string entry = trim(text.substr(start, end - start));
        start = end + 1;
        if (entry.empty())
            continue;
        const size_t eq = entry.find('=');
        if (eq == std::string::npos)
            throw std::invalid_argument("sdr_source: device setting '" + entry +
                                        "' has no '=' (write key=value, e.g. biastee=true)");
        const std::string key = trim(entry.substr(0, eq));
        const std::string value = trim(entry.substr(eq + 1));
        if (key.empty() || !std::all_of(key.begin(), key.end(), key_char))
            throw std::invalid_argument("sdr_source: device setting '" + entry +
                                        "' needs a key of letters, digits, _ - . or : before '='");
        if (std::any_of(out.begin(), out.end(), [&](const auto& kv) { return kv.first == key; }))
            throw std::invalid_argument("sdr_source: device setting '" + key + "' is given twice");
        if (out.size() == max_settings)
            throw std::invalid_argument("sdr_source: more than " + std::to_string(max_settings) +
                                        " device settings");
        out.emplace_back(key, value);
    }
    return out;
}

std::string setting_problem(const std::string& key, const std::string& value, const SoapySDR::ArgInfoList& info)
{
    if (info.empty())
        return "";
    const auto it = std::find_if(info.begin(), info.end(), [&](const auto& a) { return a.key == key; });
    if (it == info.end()) {
        std::vector<std::string> keys;
        for (const auto& a : info)
            keys.push_back(a.key);
        return "device setting '" + key + "' is not one this radio has (it has: " + join(keys) + ")";
    }
    if (!it->options.empty() && std::find(it->options.begin(), it->options.end(), value) == it->options.end())
        return "device setting '" + key + "' takes one of " + join(it->options) + ", not '" + value + "'";
    switch (it->type) {
    case SoapySDR::ArgInfo::BOOL:
        if (value != "true" && value != "false")
            return "device setting '" + key + "' takes true or false, not '" + value + "'";
        break;
    case SoapySDR::ArgInfo::INT:
    case SoapySDR::ArgInfo::FLOAT:
        if (!is_number(value, it->type == SoapySDR::ArgInfo::INT))
            return "device setting '" + key + "' takes " +
                   (it->type == SoapySDR::ArgInfo::INT ? "an integer" : "a number") + ", not '" + value + "'";
        break;
    default:
        break;
    }
    return "";
}

} // namespace ria
} // namespace gr
