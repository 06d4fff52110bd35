#include "http/conditional.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ctime>

#include "core/text.h"

namespace songd::http {

namespace {

bool ParseDecimal(std::string_view s, uint64_t& out) {
    if (s.empty() || s.size() > 19) return false;  // 19 digits never overflow 64 bits
    out = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        out = out * 10 + static_cast<uint64_t>(c - '0');
    }
    return true;
}

}  // namespace

std::string BodyEtag(std::string_view body) {
    uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : body) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    char buf[24];
    std::snprintf(buf, sizeof buf, "\"%016llx\"", static_cast<unsigned long long>(h));
    return buf;
}

std::string FileEtag(uint64_t size, int64_t mtime_ns) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "\"%llx-%llx\"", static_cast<unsigned long long>(size),
                  static_cast<unsigned long long>(mtime_ns));
    return buf;
}

bool IfNoneMatchMatches(std::string_view header, std::string_view etag) {
    header = core::Trim(header);
    if (header == "*") return true;
    size_t pos = 0;
    while (pos <= header.size()) {
        size_t comma = header.find(',', pos);
        if (comma == std::string_view::npos) comma = header.size();
        std::string_view tag = core::Trim(header.substr(pos, comma - pos));
        if (tag.rfind("W/", 0) == 0) tag.remove_prefix(2);  // weak comparison
        if (!tag.empty() && tag == etag) return true;
        pos = comma + 1;
    }
    return false;
}

std::optional<int64_t> ParseHttpDate(std::string_view text) {
    text = core::Trim(text);
    // IMF-fixdate is exactly 29 characters: "Sun, 06 Nov 1994 08:49:37 GMT".
    if (text.size() != 29 || text.substr(3, 2) != ", " || text.substr(25) != " GMT") {
        return std::nullopt;
    }
    static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::string_view month = text.substr(8, 3);
    int mon = -1;
    for (int i = 0; i < 12; ++i) {
        if (month == kMonths[i]) mon = i;
    }
    uint64_t day = 0, year = 0, hour = 0, minute = 0, second = 0;
    if (mon < 0 || text[7] != ' ' || text[11] != ' ' || text[16] != ' ' || text[19] != ':' ||
        text[22] != ':' || !ParseDecimal(text.substr(5, 2), day) ||
        !ParseDecimal(text.substr(12, 4), year) || !ParseDecimal(text.substr(17, 2), hour) ||
        !ParseDecimal(text.substr(20, 2), minute) || !ParseDecimal(text.substr(23, 2), second) ||
        day < 1 || day > 31 || year < 1970 || hour > 23 || minute > 59 || second > 60) {
        return std::nullopt;
    }
    std::tm tm{};
    tm.tm_year = static_cast<int>(year) - 1900;
    tm.tm_mon = mon;
    tm.tm_mday = static_cast<int>(day);
    tm.tm_hour = static_cast<int>(hour);
    tm.tm_min = static_cast<int>(minute);
    tm.tm_sec = static_cast<int>(second);
    const time_t t = ::timegm(&tm);
    if (t < 0) return std::nullopt;
    return static_cast<int64_t>(t) * 1000;
}

bool NotModified(const Request& request, const Validators& validators) {
    if (auto inm = request.Header("If-None-Match")) {
        return IfNoneMatchMatches(*inm, validators.etag);
    }
    auto ims = request.Header("If-Modified-Since");
    if (!ims || validators.last_modified_ms < 0) return false;
    auto since = ParseHttpDate(*ims);
    return since && validators.last_modified_ms / 1000 * 1000 <= *since;
}

std::string RangePlan::ContentRange() const {
    if (kind == kPartial) {
        return "bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) + "/" +
               std::to_string(size);
    }
    return "bytes */" + std::to_string(size);
}

RangePlan ParseRange(std::string_view header, uint64_t size) {
    RangePlan plan;
    plan.size = size;
    header = core::Trim(header);
    if (header.rfind("bytes=", 0) != 0) return plan;
    std::string_view spec = core::Trim(header.substr(6));
    if (spec.find(',') != std::string_view::npos) return plan;  // several ranges: all of it
    auto dash = spec.find('-');
    if (dash == std::string_view::npos) return plan;
    std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
    uint64_t first = 0, last = 0;
    if (a.empty()) {
        uint64_t suffix = 0;
        if (!ParseDecimal(b, suffix)) return plan;
        if (suffix == 0 || size == 0) {
            plan.kind = RangePlan::kUnsatisfiable;
            return plan;
        }
        first = suffix >= size ? 0 : size - suffix;
        last = size - 1;
    } else {
        if (!ParseDecimal(a, first)) return plan;
        if (b.empty()) {
            last = UINT64_MAX;
        } else if (!ParseDecimal(b, last) || last < first) {
            return plan;  // invalid range-spec: ignored
        }
        if (first >= size) {
            plan.kind = RangePlan::kUnsatisfiable;
            return plan;
        }
        last = std::min(last, size - 1);
    }
    plan.kind = RangePlan::kPartial;
    plan.range = {first, last};
    return plan;
}

bool IfRangeHolds(const Request& request, const Validators& validators) {
    auto if_range = request.Header("If-Range");
    if (!if_range) return true;
    std::string_view value = core::Trim(*if_range);
    if (!value.empty() && (value.front() == '"' || value.rfind("W/", 0) == 0)) {
        return value == validators.etag;  // strong comparison: a weak tag never matches
    }
    auto date = ParseHttpDate(value);
    return date && validators.last_modified_ms >= 0 &&
           validators.last_modified_ms / 1000 * 1000 == *date;
}

RangePlan PlanRange(const Request& request, const Validators& validators, uint64_t size) {
    auto range = request.Header("Range");
    if (!range || !IfRangeHolds(request, validators)) {
        RangePlan full;
        full.size = size;
        return full;
    }
    return ParseRange(*range, size);
}

}  // namespace songd::http
