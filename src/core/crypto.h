#pragma once
/// @file
/// Hashes and MACs on OpenSSL, and the comparison secrets need.
///
///   core::Sha256Hex("abc");                          // "ba7816bf…"
///   std::string mac = core::HmacSha256(key, data);   // raw 32 bytes
///   core::HexEncode(mac);                            // (core/text.h) for hex signatures
///   core::ConstantTimeEquals(expected, given);       // never an early exit on a mismatch
///   core::Base64Encode(mac);                         // standard alphabet, padded
///   core::Base64Decode("aGk=");                      // "hi"; nullopt when not base64
///
/// Throws core::Error(kInternal) only if OpenSSL itself fails.

#include <optional>
#include <string>
#include <string_view>

namespace songd::core {

/// Raw 32-byte SHA-256 of `data`.
std::string Sha256(std::string_view data);

/// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

/// Raw 32-byte HMAC-SHA256 of `data` with `key`.
std::string HmacSha256(std::string_view key, std::string_view data);

/// Standard base64 (RFC 4648 alphabet, with `=` padding).
std::string Base64Encode(std::string_view bytes);

/// Decodes standard padded base64; nullopt for any other text (wrong length, a character
/// outside the alphabet, misplaced padding).
std::optional<std::string> Base64Decode(std::string_view text);

/// Constant-time comparison for secrets and signatures (length may leak, content does not).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace songd::core
