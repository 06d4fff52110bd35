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
    const auto segments = Split(request.path);
    const std::string& method = request.method == "HEAD" ? std::string("GET") : request.method;
    Match match;
    for (const auto& route : routes_) {
        if (route.segments.size() != segments.size()) continue;
        std::map<std::string, std::string> params;
        bool ok = true;
        for (size_t i = 0; i < segments.size() && ok; ++i) {
            const auto& want = route.segments[i];
            if (want.size() > 2 && want.front() == '{' && want.back() == '}') {
                if (segments[i].empty()) ok = false;
                params[want.substr(1, want.size() - 2)] = segments[i];
            } else {
                ok = want == segments[i];
            }
        }
        if (!ok) continue;
        if (route.method == method) {
            match.route = &route;
            request.params = std::move(params);
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
