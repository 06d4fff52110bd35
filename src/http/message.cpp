#include "http/message.h"

#include <cctype>

namespace songd::http {

bool IEquals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i]))) {
            return false;
        }
    }
    return true;
}

std::optional<std::string_view> Request::Header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
        if (IEquals(k, name)) return std::string_view(v);
    }
    return std::nullopt;
}

std::optional<std::string> Request::QueryParam(std::string_view name) const {
    for (const auto& [k, v] : query) {
        if (k == name) return v;
    }
    return std::nullopt;
}

std::string Request::LoggablePath() const {
    std::string out = path;
    char sep = '?';
    for (const auto& [k, v] : query) {
        out += sep;
        out += k;
        if (!v.empty()) out += "=…";
        sep = '&';
    }
    return out;
}

Response Response::Json(int status, std::string json) {
    Response r;
    r.status = status;
    r.body = std::move(json);
    r.headers.reserve(6);  // the handler's few, CORS and the request id: one allocation
    r.headers.emplace_back("Content-Type", "application/json");
    return r;
}

Response Response::Text(int status, std::string text, std::string content_type) {
    Response r;
    r.status = status;
    r.body = std::move(text);
    r.headers.emplace_back("Content-Type", std::move(content_type));
    return r;
}

Response Response::Empty(int status) {
    Response r;
    r.status = status;
    r.headers.reserve(6);
    return r;
}

void Response::SetHeader(std::string name, std::string value) {
    for (auto& [k, v] : headers) {
        if (IEquals(k, name)) {
            v = std::move(value);
            return;
        }
    }
    headers.emplace_back(std::move(name), std::move(value));
}

std::optional<std::string_view> Response::Header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
        if (IEquals(k, name)) return std::string_view(v);
    }
    return std::nullopt;
}

std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '%') {
            auto hex = [](char h) -> int {
                if (h >= '0' && h <= '9') return h - '0';
                if (h >= 'a' && h <= 'f') return h - 'a' + 10;
                if (h >= 'A' && h <= 'F') return h - 'A' + 10;
                return -1;
            };
            if (i + 2 >= text.size()) return std::nullopt;
            int hi = hex(text[i + 1]), lo = hex(text[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            char decoded = static_cast<char>(hi * 16 + lo);
            if (decoded == '\0') return std::nullopt;
            out += decoded;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out += ' ';
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace songd::http
