#include "storage/s3/s3_xml.h"

#include <cstdint>

namespace songd::storage::s3 {
namespace {

void AppendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x110000) {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

bool IsNameEnd(char c) {
    return c == '>' || c == '/' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

}  // namespace

std::string XmlRootName(std::string_view xml) {
    size_t pos = 0;
    while ((pos = xml.find('<', pos)) != std::string_view::npos) {
        if (pos + 1 < xml.size() && (xml[pos + 1] == '?' || xml[pos + 1] == '!')) {
            pos = xml.find('>', pos);
            if (pos == std::string_view::npos) return "";
            continue;
        }
        size_t end = pos + 1;
        while (end < xml.size() && !IsNameEnd(xml[end])) ++end;
        return std::string(xml.substr(pos + 1, end - pos - 1));
    }
    return "";
}

std::vector<std::string_view> XmlElements(std::string_view xml, std::string_view name) {
    std::vector<std::string_view> out;
    const std::string open = "<" + std::string(name);
    const std::string close = "</" + std::string(name) + ">";
    size_t pos = 0;
    while ((pos = xml.find(open, pos)) != std::string_view::npos) {
        size_t after = pos + open.size();
        if (after >= xml.size() || !IsNameEnd(xml[after])) {  // <KeyCount> is not <Key>
            pos = after;
            continue;
        }
        size_t tag_end = xml.find('>', after);
        if (tag_end == std::string_view::npos) break;
        if (xml[tag_end - 1] == '/') {
            out.emplace_back();
            pos = tag_end + 1;
            continue;
        }
        size_t end = xml.find(close, tag_end + 1);
        if (end == std::string_view::npos) break;
        out.push_back(xml.substr(tag_end + 1, end - tag_end - 1));
        pos = end + close.size();
    }
    return out;
}

std::optional<std::string> XmlText(std::string_view xml, std::string_view name) {
    auto elements = XmlElements(xml, name);
    if (elements.empty()) return std::nullopt;
    return XmlDecode(elements.front());
}

std::string XmlDecode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '&') {
            out += text[i];
            continue;
        }
        size_t semi = text.find(';', i);
        if (semi == std::string_view::npos || semi - i > 10) {
            out += text[i];
            continue;
        }
        std::string_view entity = text.substr(i + 1, semi - i - 1);
        if (entity == "amp")
            out += '&';
        else if (entity == "lt")
            out += '<';
        else if (entity == "gt")
            out += '>';
        else if (entity == "quot")
            out += '"';
        else if (entity == "apos")
            out += '\'';
        else if (entity.size() > 1 && entity[0] == '#') {
            bool hex = entity[1] == 'x' || entity[1] == 'X';
            try {
                uint32_t cp = static_cast<uint32_t>(
                    std::stoul(std::string(entity.substr(hex ? 2 : 1)), nullptr, hex ? 16 : 10));
                AppendUtf8(out, cp);
            } catch (const std::exception&) {
                out.append(text.substr(i, semi - i + 1));
            }
        } else {
            out.append(text.substr(i, semi - i + 1));
        }
        i = semi;
    }
    return out;
}

std::string XmlEscape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&apos;";
                break;
            case '\r':
                out += "&#13;";
                break;  // kept exactly: XML would normalise a raw CR
            default:
                out += c;
        }
    }
    return out;
}

}  // namespace songd::storage::s3
