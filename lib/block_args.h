/* Checks of what a block is given, a constructor argument or a cmd value: each failure is a
 * std::invalid_argument that names the argument and what it should be. */
#ifndef INCLUDED_RIA_BLOCK_ARGS_H
#define INCLUDED_RIA_BLOCK_ARGS_H

#include <nlohmann/json.hpp>
#include <initializer_list>
#include <string>

namespace gr {
namespace ria {

//! `value` if it is one of `ok`.
std::string require_choice(const std::string& name, const std::string& value, std::initializer_list<const char*> ok);
//! `value` if it is finite and `ok`; "NAME must be RULE, got VALUE" if not.
double require_number(const std::string& name, double value, bool ok, const char* rule);
//! cmd[key] as a finite number.
double finite_number(const nlohmann::json& cmd, const char* key);

} // namespace ria
} // namespace gr

#endif
