/* A radio's driver settings as a person writes them ("biastee=true, direct_samp=2"), checked against
 * what the driver says it has (SoapySDR getSettingInfo). */
#ifndef INCLUDED_RIA_DEVICE_SETTINGS_H
#define INCLUDED_RIA_DEVICE_SETTINGS_H

#include <SoapySDR/Types.hpp>
#include <string>
#include <utility>
#include <vector>

namespace gr {
namespace ria {

using device_settings = std::vector<std::pair<std::string, std::string>>;

//! "key=value, key=value" in order; empty: none. Throws std::invalid_argument naming the bad entry.
device_settings parse_device_settings(const std::string& text);

//! Why `key`=`value` should not be written to a driver that lists `info` (an empty list: the driver
//! lists nothing, so anything goes); empty when it may be.
std::string setting_problem(const std::string& key, const std::string& value, const SoapySDR::ArgInfoList& info);

} // namespace ria
} // namespace gr

#endif
