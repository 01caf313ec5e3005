/* Builders for the PMT dicts the blocks publish on their status ports. */
#ifndef INCLUDED_RIA_STATUS_MESSAGE_H
#define INCLUDED_RIA_STATUS_MESSAGE_H

#include <pmt/pmt.h>
#include <initializer_list>
#include <string>
#include <utility>

namespace gr {
namespace ria {

using status_field = std::pair<const char*, pmt::pmt_t>;

//! {"event": event, fields...}
pmt::pmt_t status_dict(const std::string& event, std::initializer_list<status_field> fields);
//! {"event": "error", "key": key, "value": value, "message": message}: a command that was refused.
pmt::pmt_t error_status(const std::string& key, const pmt::pmt_t& value, const std::string& message);
//! Adds or replaces one field.
pmt::pmt_t with_field(pmt::pmt_t dict, const char* key, pmt::pmt_t value);
//! [min, max] as a PMT f64 vector.
pmt::pmt_t range_pmt(double lo, double hi);

} // namespace ria
} // namespace gr

#endif
