#include "pmt_json.h"

#include "hub_json.h"
#include <complex>

namespace gr {
namespace ria {

using nlohmann::json;

pmt::pmt_t json_to_pmt(const json& value)
{
    switch (value.type()) {
    case json::value_t::object: {
        pmt::pmt_t d = pmt::make_dict();
        for (const auto& item : value.items())
            d = pmt::dict_add(d, pmt::string_to_symbol(item.key()), json_to_pmt(item.value()));
        return d;
    }
    case json::value_t::array: {
        pmt::pmt_t v = pmt::make_vector(value.size(), pmt::PMT_NIL);
        for (size_t i = 0; i < value.size(); i++)
            pmt::vector_set(v, i, json_to_pmt(value[i]));
        return v;
    }
    case json::value_t::string:
        return pmt::string_to_symbol(value.get<std::string>());
    case json::value_t::boolean:
        return pmt::from_bool(value.get<bool>());
    case json::value_t::number_integer:
        return pmt::from_long(value.get<int64_t>());
    case json::value_t::number_unsigned: {
        const uint64_t u = value.get<uint64_t>();
        if (u <= static_cast<uint64_t>(INT64_MAX))
            return pmt::from_long(static_cast<int64_t>(u));
        return pmt::from_uint64(u);
    }
    case json::value_t::number_float:
        return pmt::from_double(value.get<double>());
    case json::value_t::binary: // JSON text has none; hub_json marks a value it could not read this way
        if (hub_json::is_unreadable(value))
            return pmt::make_tuple(pmt::string_to_symbol(UNREADABLE_TAG),
                                   pmt::string_to_symbol(hub_json::unreadable_text(value)));
        return pmt::PMT_NIL;
    default:
        return pmt::PMT_NIL;
    }
}

namespace {

template <typename T>
json uniform_to_json(const std::vector<T>& v)
{
    return json(v);
}

json complex_to_json(std::complex<double> c) { return json::array({ c.real(), c.imag() }); }

// PMT dicts are lists of (key . value) pairs, so pmt::is_dict() holds for any pair.
bool is_pair_list(pmt::pmt_t p)
{
    for (; pmt::is_pair(p); p = pmt::cdr(p))
        if (!pmt::is_pair(pmt::car(p)))
            return false;
    return pmt::is_null(p);
}

} // namespace

json pmt_to_json(const pmt::pmt_t& value) { return pmt_to_json(value, 0); }

json pmt_to_json(const pmt::pmt_t& value, int depth)
{
    if (depth > 64)
        throw std::invalid_argument("the message nests deeper than 64 levels");
    if (pmt::is_null(value))
        return nullptr;
    if (pmt::is_bool(value))
        return pmt::to_bool(value);
    if (pmt::is_symbol(value))
        return pmt::symbol_to_string(value);
    if (pmt::is_integer(value))
        return static_cast<int64_t>(pmt::to_long(value));
    if (pmt::is_uint64(value))
        return pmt::to_uint64(value);
    if (pmt::is_real(value))
        return pmt::to_double(value);
    if (pmt::is_complex(value))
        return complex_to_json(pmt::to_complex(value));
    if (pmt::is_pair(value) && is_pair_list(value)) {
        json obj = json::object();
        for (pmt::pmt_t p = value; pmt::is_pair(p); p = pmt::cdr(p)) {
            pmt::pmt_t key = pmt::car(pmt::car(p));
            std::string name = pmt::is_symbol(key) ? pmt::symbol_to_string(key) : pmt::write_string(key);
            if (!obj.contains(name)) // dict_add puts the newest entry first
                obj[name] = pmt_to_json(pmt::cdr(pmt::car(p)), depth + 1);
        }
        return obj;
    }
    if (pmt::is_vector(value)) {
        json arr = json::array();
        for (size_t i = 0; i < pmt::length(value); i++)
            arr.push_back(pmt_to_json(pmt::vector_ref(value, i), depth + 1));
        return arr;
    }
    if (pmt::is_tuple(value)) {
        json arr = json::array();
        for (size_t i = 0; i < pmt::length(value); i++)
            arr.push_back(pmt_to_json(pmt::tuple_ref(value, i), depth + 1));
        return arr;
    }
    if (pmt::is_f64vector(value))
        return uniform_to_json(pmt::f64vector_elements(value));
    if (pmt::is_f32vector(value))
        return uniform_to_json(pmt::f32vector_elements(value));
    if (pmt::is_s64vector(value))
        return uniform_to_json(pmt::s64vector_elements(value));
    if (pmt::is_s32vector(value))
        return uniform_to_json(pmt::s32vector_elements(value));
    if (pmt::is_u8vector(value))
        return uniform_to_json(pmt::u8vector_elements(value));
    if (pmt::is_pair(value))
        return json::array({ pmt_to_json(pmt::car(value), depth + 1), pmt_to_json(pmt::cdr(value), depth + 1) });
    return pmt::write_string(value);
}

} // namespace ria
} // namespace gr
