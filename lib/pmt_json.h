/* PMT <-> JSON at the transport's edge: hub messages become PMT dicts on `ctrl`, `to_hub` dicts become JSON. */
#ifndef INCLUDED_RIA_PMT_JSON_H
#define INCLUDED_RIA_PMT_JSON_H

#include <nlohmann/json.hpp>
#include <pmt/pmt.h>

namespace gr {
namespace ria {

//! First element of the PMT tuple (UNREADABLE_TAG . "JSON text as sent") that stands for a value
//! hub_json could not read (python/ria/pmt_json.py turns it into an Unreadable).
constexpr const char* UNREADABLE_TAG = "ria_unreadable_json";

//! Objects become dicts, arrays vectors, strings symbols; integers stay integers (int64,
//! or uint64 above that), true/false stay booleans, null is PMT_NIL, an unreadable value
//! (hub_json) the tuple above. Recursive: callers pass JSON whose nesting is bounded
//! (wire::decode_hub_message checks it).
pmt::pmt_t json_to_pmt(const nlohmann::json& value);
//! The inverse for the PMT kinds a flowgraph sends (dicts, pairs, vectors, uniform vectors,
//! numbers, symbols, booleans, nil); anything else becomes its PMT text.
nlohmann::json pmt_to_json(const pmt::pmt_t& value);
//! (throws std::invalid_argument past 64 levels of nesting)
nlohmann::json pmt_to_json(const pmt::pmt_t& value, int depth);

} // namespace ria
} // namespace gr

#endif
