#pragma once
/// @file
/// Text helpers every folder uses: ASCII case, trimming, hex and percent encoding.
///
///   core::ToLower("Content-Type");            // "content-type"
///   core::Trim("  v1,abc \r\n");              // "v1,abc"
///   core::CollapseWhitespace(" a \n\t b ");   // "a b"
///   core::HexEncode("\x01\xff");              // "01ff"
///   core::UrlEncode("a b/c");                 // "a%20b%2Fc"
///   core::UrlEncode("a b/c", /*keep_slash=*/true);  // "a%20b/c"
///
/// ASCII only, on purpose: HTTP names, config values and identifiers are ASCII, and a
/// locale-dependent tolower would make behaviour depend on the machine's settings.

#include <string>
#include <string_view>

namespace songd::core {

/// ASCII lowercase copy.
std::string ToLower(std::string_view text);

/// `text` without leading and trailing ASCII white space (space, \t \n \v \f \r).
std::string_view Trim(std::string_view text);

/// `text` trimmed, with every inner run of ASCII white space (CR and LF included) as one space:
/// SigV4's "Trimall", and one-line error messages from multi-line ones.
std::string CollapseWhitespace(std::string_view text);

/// Lowercase hex of raw bytes.
std::string HexEncode(std::string_view bytes);

/// Percent-encodes every byte but RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~), with
/// uppercase hex, as form bodies, query strings and SigV4 want; `/` stays only if `keep_slash`.
std::string UrlEncode(std::string_view bytes, bool keep_slash = false);

/// Decodes %XX escapes and nothing else ('+' stays '+', as S3 reads it). False on a malformed
/// escape, with `out` unspecified.
bool UrlDecode(std::string_view text, std::string& out);

}  // namespace songd::core
