#include "core/json_text.h"

#include <boost/json/serialize.hpp>
#include <charconv>
#include <cmath>

namespace songd::core {

namespace {

void Append(std::string& out, const boost::json::value& value) {
    switch (value.kind()) {
        case boost::json::kind::object: {
            out += '{';
            bool first = true;
            for (const auto& [key, item] : value.get_object()) {
                if (!first) out += ',';
                first = false;
                out += boost::json::serialize(boost::json::string_view(key));
                out += ':';
                Append(out, item);
            }
            out += '}';
            return;
        }
        case boost::json::kind::array: {
            out += '[';
            bool first = true;
            for (const auto& item : value.get_array()) {
                if (!first) out += ',';
                first = false;
                Append(out, item);
            }
            out += ']';
            return;
        }
        case boost::json::kind::double_: {
            const double d = value.get_double();
            if (!std::isfinite(d)) {
                out += "null";  // JSON has no NaN or infinity
                return;
            }
            char buf[64];
            auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
            std::string_view text(buf, static_cast<size_t>(end - buf));
            out += text;
            if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
            return;
        }
        default:
            out += boost::json::serialize(value);  // strings, integers, booleans, null
            return;
    }
}

}  // namespace

std::string JsonText(const boost::json::value& value) {
    std::string out;
    Append(out, value);
    return out;
}

}  // namespace songd::core
