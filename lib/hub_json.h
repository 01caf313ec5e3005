/* Reading the JSON text a hub sends, whatever values it holds.
 *
 * JSON text may hold values that nlohmann::json (and PMT, and Python's UTF-8 strings) cannot:
 * a string with a lone UTF-16 surrogate ("\ud800") or a number beyond the range of a double
 * (1e400, a 400-digit integer). nlohmann refuses the whole text for one such value. Here that
 * value becomes an "unreadable" marker holding its JSON text as sent, and such an object key
 * becomes its JSON text, so whoever acts on the message can refuse that one key by name. */
#ifndef INCLUDED_RIA_HUB_JSON_H
#define INCLUDED_RIA_HUB_JSON_H

#include <nlohmann/json.hpp>
#include <string>

namespace gr {
namespace ria {
namespace hub_json {

using json = nlohmann::json;

//! Parses JSON text. Throws nlohmann::json::exception for text that is not JSON, and
//! std::length_error for objects and arrays nested more than max_depth levels deep.
json parse(const std::string& text, int max_depth);

//! A value the agent cannot represent (see above); its text is the JSON text as sent (at most 64 characters).
json unreadable(const std::string& text);
bool is_unreadable(const json& value);
std::string unreadable_text(const json& value);

//! A short text of a value for an error message: an unreadable value as it was sent, others as JSON.
std::string describe(const json& value);

} // namespace hub_json
} // namespace ria
} // namespace gr

#endif
