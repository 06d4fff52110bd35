#pragma once
/// @file
/// Hashes and MACs on OpenSSL, and the comparison secrets need.
///
///   core::Sha256Hex("abc");                          // "ba7816bf…"
///   std::string mac = core::HmacSha256(key, data);   // raw 32 bytes
///   core::HexEncode(mac);                            // (core/text.h) for hex signatures
///   core::ConstantTimeEquals(expected, given);       // never an early exit on a mismatch
///
/// Throws core::Error(kInternal) only if OpenSSL itself fails.

#include <string>
#include <string_view>

namespace songd::core {

/// Raw 32-byte SHA-256 of `data`.
std::string Sha256(std::string_view data);

/// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

/// Raw 32-byte HMAC-SHA256 of `data` with `key`.
std::string HmacSha256(std::string_view key, std::string_view data);

/// Constant-time comparison for secrets and signatures (length may leak, content does not).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace songd::core
