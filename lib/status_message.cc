#include "status_message.h"

namespace gr {
namespace ria {

pmt::pmt_t status_dict(const std::string& event, std::initializer_list<status_field> fields)
{
    pmt::pmt_t d = pmt::make_dict();
    d = pmt::dict_add(d, pmt::mp("event"), pmt::mp(event));
    for (const auto& f : fields)
        d = pmt::dict_add(d, pmt::mp(f.first), f.second);
    return d;
}

pmt::pmt_t error_status(const std::string& key, const pmt::pmt_t& value, const std::string& message)
{
    return status_dict("error", { { "key", pmt::mp(key) }, { "value", value }, { "message", pmt::mp(message) } });
}

pmt::pmt_t with_field(pmt::pmt_t dict, const char* key, pmt::pmt_t value)
{
    return pmt::dict_add(dict, pmt::mp(key), value);
}

pmt::pmt_t range_pmt(double lo, double hi)
{
    return pmt::init_f64vector(2, std::vector<double>{ lo, hi });
}

} // namespace ria
} // namespace gr
