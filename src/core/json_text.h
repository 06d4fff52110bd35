#pragma once
/// @file
/// JsonText: a JSON document as text, the way clients expect numbers to look.
///
///   std::string body = core::JsonText(json::object{{"duration_seconds", 95.1}});
///   // {"duration_seconds":95.1}
///
/// Boost.JSON 1.81's serializer writes every double in exponent form (95.1 as `9.51E1`,
/// 285.0 as `2.85E2`): valid JSON, but not what the backend songd replaces answered, and
/// awkward for anyone reading or grepping a document. Doubles here are written in the
/// shortest form that reads back to the same value, always with a fraction or exponent so
/// they stay floats (285.0); everything else is Boost.JSON's own output.

#include <boost/json/value.hpp>
#include <string>

namespace songd::core {

std::string JsonText(const boost::json::value& value);

}  // namespace songd::core
