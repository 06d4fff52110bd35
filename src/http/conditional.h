#pragma once
/// @file
/// Conditional and range requests (RFC 9110 §8.8, §13, §14) for one representation: entity
/// tags, If-None-Match / If-Modified-Since / If-Range, a single `bytes=` range and its
/// Content-Range. Pure functions over header values: no files, no storage, no sockets.
///
///   http::Validators v{http::FileEtag(st.st_size, mtime_ns), mtime_ms};
///   if (http::NotModified(request, v)) return 304 with ETag and Last-Modified;
///   http::RangePlan plan = http::PlanRange(request, v, size);
///   switch (plan.kind) {
///       case http::RangePlan::kFull:          // 200, the whole file
///       case http::RangePlan::kPartial:       // 206, plan.range, Content-Range:
///       plan.ContentRange() case http::RangePlan::kUnsatisfiable: // 416, Content-Range:
///       plan.ContentRange()
///   }

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/message.h"

namespace songd::http {

/// A strong entity tag for exact bytes: FNV-1a of `body`, quoted ("\"0123456789abcdef\"").
std::string BodyEtag(std::string_view body);

/// A strong entity tag for a file version: size and modification time in nanoseconds,
/// quoted ("\"1f40-17a3...\""). A rewrite of the file (new mtime or size) changes it.
std::string FileEtag(uint64_t size, int64_t mtime_ns);

/// True when `header` (an If-None-Match value: `*` or a comma-separated list of tags, weak
/// or strong) matches `etag` under the weak comparison (RFC 9110 §8.8.3.2).
bool IfNoneMatchMatches(std::string_view header, std::string_view etag);

/// Parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into milliseconds since the
/// epoch; nullopt for anything else (obsolete formats are ignored, as RFC 9110 allows).
std::optional<int64_t> ParseHttpDate(std::string_view text);

/// @brief What identifies the version of a representation.
struct Validators {
    std::string etag;               ///< strong, quoted
    int64_t last_modified_ms = -1;  ///< -1: unknown
};

/// True when a GET/HEAD should answer 304: If-None-Match matches (weak comparison), or, only
/// when there is no If-None-Match, If-Modified-Since is at or after Last-Modified (whole
/// seconds, as HTTP dates carry).
bool NotModified(const Request& request, const Validators& validators);

/// @brief An inclusive byte range `first`..`last` of a representation.
struct ByteRange {
    uint64_t first = 0;
    uint64_t last = 0;
    uint64_t length() const { return last - first + 1; }
};

/// @brief The outcome of a Range header against a representation of `size` bytes.
struct RangePlan {
    enum Kind { kFull, kPartial, kUnsatisfiable };
    Kind kind = kFull;
    ByteRange range;  ///< kPartial only
    uint64_t size = 0;
    /// "bytes first-last/size" for kPartial, "bytes */size" for kUnsatisfiable.
    std::string ContentRange() const;
};

/// Parses one `bytes=` range against `size` (RFC 9110 §14.1.2): `a-b`, `a-`, `-n`. A syntax
/// the server does not support (other units, several ranges, garbage) means "send it all"
/// (kFull), as the RFC allows; a well-formed range outside the file is kUnsatisfiable.
RangePlan ParseRange(std::string_view header, uint64_t size);

/// True when If-Range is absent or names this version: the same strong entity tag, or a
/// date equal to Last-Modified. A weak tag or another version means "send it all".
bool IfRangeHolds(const Request& request, const Validators& validators);

/// Range + If-Range together: kFull without Range or when If-Range names another version.
RangePlan PlanRange(const Request& request, const Validators& validators, uint64_t size);

}  // namespace songd::http
