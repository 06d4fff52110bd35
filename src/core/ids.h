#pragma once
/// @file
/// Job identifiers: random UUIDv4 strings, as the old backend issued them.
///
///   std::string id = core::NewJobId();   // "3f2b...-4...-...."
///   core::IsJobId(id);                    // true; false for anything else, e.g. "../etc"

#include <string>
#include <string_view>

namespace songd::core {

std::string NewJobId();

/// True only for a lowercase canonical UUID, so an id is always safe inside a path.
bool IsJobId(std::string_view text);

}  // namespace songd::core
