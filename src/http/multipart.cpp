#include "http/multipart.h"

#include "core/error.h"
#include "core/text.h"

namespace songd::http {

namespace {

constexpr size_t kMaxPartHeaders = size_t{8} * 1024;

[[noreturn]] void Malformed(const std::string& what) {
    throw core::Error(core::ErrorCode::kMalformedRequest, "malformed multipart/form-data: " + what);
}

/// `a; b=c; d="e"` → the value of each parameter (names lower-cased), after the first item.
std::vector<std::pair<std::string, std::string>> Parameters(std::string_view value) {
    std::vector<std::pair<std::string, std::string>> out;
    size_t pos = value.find(';');
    while (pos != std::string_view::npos && pos < value.size()) {
        ++pos;
        while (pos < value.size() && (value[pos] == ' ' || value[pos] == '\t')) ++pos;
        size_t eq = value.find('=', pos);
        if (eq == std::string_view::npos) break;
        std::string name = core::ToLower(core::Trim(value.substr(pos, eq - pos)));
        pos = eq + 1;
        std::string v;
        if (pos < value.size() && value[pos] == '"') {
            ++pos;
            bool closed = false;
            while (pos < value.size()) {
                char c = value[pos++];
                if (c == '\\' && pos < value.size()) {
                    v += value[pos++];
                } else if (c == '"') {
                    closed = true;
                    break;
                } else {
                    v += c;
                }
            }
            if (!closed) Malformed("an unterminated quoted parameter");
            pos = value.find(';', pos);
        } else {
            size_t end = value.find(';', pos);
            v = core::Trim(value.substr(pos, end == std::string_view::npos ? end : end - pos));
            pos = end;
        }
        out.emplace_back(std::move(name), std::move(v));
    }
    return out;
}

}  // namespace

std::optional<std::string> MultipartBoundary(std::string_view content_type) {
    std::string type = core::ToLower(core::Trim(content_type.substr(0, content_type.find(';'))));
    if (type != "multipart/form-data") return std::nullopt;
    for (auto& [name, value] : Parameters(content_type)) {
        if (name != "boundary") continue;
        if (value.empty() || value.size() > 70 || value.back() == ' ') {
            Malformed("the boundary must be 1-70 characters");
        }
        return value;
    }
    Malformed("the Content-Type has no boundary");
}

std::vector<MultipartPart> ParseMultipart(std::string_view body, std::string_view boundary) {
    if (boundary.empty()) Malformed("empty boundary");
    const std::string delimiter = "--" + std::string(boundary);
    const std::string between = "\r\n" + delimiter;
    // The first delimiter opens the body or ends the preamble's last line.
    size_t pos;
    if (body.substr(0, delimiter.size()) == delimiter) {
        pos = delimiter.size();
    } else {
        size_t found = body.find(between);
        if (found == std::string_view::npos) Malformed("no boundary line " + delimiter);
        pos = found + between.size();
    }
    std::vector<MultipartPart> parts;
    for (;;) {
        if (body.substr(pos, 2) == "--") return parts;  // the closing delimiter
        while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
        if (body.substr(pos, 2) != "\r\n") Malformed("a boundary line does not end in CRLF");
        pos += 2;
        MultipartPart part;
        size_t content;
        if (body.substr(pos, 2) == "\r\n") {
            content = pos + 2;  // a part without headers
        } else {
            size_t end = body.find("\r\n\r\n", pos);
            if (end == std::string_view::npos || end - pos > kMaxPartHeaders) {
                Malformed("a part's headers do not end");
            }
            std::string_view headers = body.substr(pos, end - pos);
            content = end + 4;
            size_t line_start = 0;
            while (line_start <= headers.size()) {
                size_t line_end = headers.find("\r\n", line_start);
                if (line_end == std::string_view::npos) line_end = headers.size();
                std::string_view line = headers.substr(line_start, line_end - line_start);
                line_start = line_end + 2;
                size_t colon = line.find(':');
                if (colon == std::string_view::npos) Malformed("a part header without ':'");
                std::string name = core::ToLower(core::Trim(line.substr(0, colon)));
                std::string_view value = line.substr(colon + 1);
                if (name == "content-disposition") {
                    std::string kind = core::ToLower(core::Trim(value.substr(0, value.find(';'))));
                    if (kind != "form-data") Malformed("a part is not form-data");
                    for (auto& [param, v] : Parameters(value)) {
                        if (param == "name") part.name = v;
                        if (param == "filename") {
                            part.filename = v;
                            part.has_filename = true;
                        }
                    }
                } else if (name == "content-type") {
                    part.content_type = core::Trim(value);
                }
            }
        }
        size_t next = body.find(between, content);
        if (next == std::string_view::npos) Malformed("the body ends before its closing boundary");
        part.body = body.substr(content, next - content);
        parts.push_back(std::move(part));
        pos = next + between.size();
    }
}

}  // namespace songd::http
