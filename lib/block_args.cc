#include "block_args.h"

#include "soapy_ranges.h"
#include "wire.h"
#include <cmath>
#include <stdexcept>

namespace gr {
namespace ria {

std::string require_choice(const std::string& name, const std::string& value, std::initializer_list<const char*> ok)
{
    std::string list;
    for (const char* o : ok) {
        if (value == o)
            return value;
        list += (list.empty() ? "'" : ", '") + std::string(o) + "'";
    }
    throw std::invalid_argument(name + " must be one of " + list + ", got '" + value + "'");
}

double require_number(const std::string& name, double value, bool ok, const char* rule)
{
    if (!std::isfinite(value) || !ok)
        throw std::invalid_argument(name + " must be " + rule + ", got " + format_number(value));
    return value;
}

double finite_number(const nlohmann::json& cmd, const char* key)
{
    const auto& v = cmd.at(key);
    if (!v.is_number() || !std::isfinite(v.get<double>()))
        throw std::invalid_argument(std::string(key) + " must be a finite number, got " + wire::encode(v));
    return v.get<double>();
}

} // namespace ria
} // namespace gr
