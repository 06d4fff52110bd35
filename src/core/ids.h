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

/// Hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

/// Constant-time comparison for secrets.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace songd::core
