#include "http/router.h"

#include <algorithm>

namespace songd::http {
namespace {

std::vector<std::string> Split(const std::string& path) {
    std::vector<std::string> out;
    size_t start = 1;
    if (path.empty() || path[0] != '/') return {"\x01"};  // never matches
    while (start <= path.size()) {
        size_t slash = path.find('/', start);
        if (slash == std::string::npos) slash = path.size();
        out.push_back(path.substr(start, slash - start));
        start = slash + 1;
    }
    return out;
}

}  // namespace

void Router::Add(std::string method, std::string pattern, Handler handler, Run run,
                 uint64_t body_limit, InlineHandler try_inline) {
    Route route{std::move(method), pattern,    Split(pattern),       std::move(handler), run,
                pattern,           body_limit, std::move(try_inline)};
    routes_.push_back(std::move(route));
}

Router::Match Router::Find(Request& request) const {
    // Called for every request: the path is cut into views, and a route's parameters are
    // copied out only once every segment of it matched (no allocation for the routes tried).
    Match match;
    const std::string_view path = request.path;
    if (path.empty() || path.front() != '/') return match;
    constexpr size_t kMaxSegments = 16;
    std::string_view segments[kMaxSegments];
    size_t count = 0;
    for (size_t start = 1;;) {
        size_t slash = path.find('/', start);
        if (slash == std::string_view::npos) slash = path.size();
        if (count == kMaxSegments) return match;  // deeper than any route
        segments[count++] = path.substr(start, slash - start);
        if (slash == path.size()) break;
        start = slash + 1;
    }
    const std::string_view method =
        request.method == "HEAD" ? std::string_view("GET") : std::string_view(request.method);
    auto is_param = [](const std::string& want) {
        return want.size() > 2 && want.front() == '{' && want.back() == '}';
    };
    for (const auto& route : routes_) {
        if (route.segments.size() != count) continue;
        bool ok = true;
        for (size_t i = 0; i < count && ok; ++i) {
            const auto& want = route.segments[i];
            ok = is_param(want) ? !segments[i].empty() : want == segments[i];
        }
        if (!ok) continue;
        if (route.method == method) {
            match.route = &route;
            request.params.clear();
            for (size_t i = 0; i < count; ++i) {
                const auto& want = route.segments[i];
                if (is_param(want)) {
                    request.params[want.substr(1, want.size() - 2)] = std::string(segments[i]);
                }
            }
            return match;
        }
        if (std::find(match.allowed.begin(), match.allowed.end(), route.method) ==
            match.allowed.end()) {
            match.allowed.push_back(route.method);
        }
    }
    return match;
}

}  // namespace songd::http
