// songd_s3_sign_tool: signs the cases of a JSON document on stdin with songd's SigV4 and
// prints the results as JSON, so a script can compare them with another implementation.
//
// Input:  [{"id", "mode": "header"|"query", "scheme", "method", "host", "path" (decoded),
//           "query": [[name, value]...] (decoded), "headers": [[name, value]...],
//           "payload_hash", "access_key", "secret_key", "session_token", "region",
//           "time" (Unix seconds), "expires"}...]
// Output: [{"id", "canonical_request", "string_to_sign", "signature",
//           "authorization" (header mode) | "url" (query mode)}...]

#include <boost/json.hpp>
#include <iostream>
#include <iterator>
#include <string>

#include "core/error.h"
#include "storage/s3/sigv4.h"

namespace json = boost::json;
namespace s3 = songd::storage::s3;

namespace {

s3::NameValues Pairs(const json::value& value) {
    s3::NameValues out;
    for (const json::value& pair : value.as_array()) {
        out.emplace_back(json::value_to<std::string>(pair.as_array().at(0)),
                         json::value_to<std::string>(pair.as_array().at(1)));
    }
    return out;
}

std::string Str(const json::object& o, const char* key) {
    return json::value_to<std::string>(o.at(key));
}

json::object SignCase(const json::object& c) {
    s3::SigningRequest request{.method = Str(c, "method"),
                               .path = Str(c, "path"),
                               .query = Pairs(c.at("query")),
                               .headers = Pairs(c.at("headers")),
                               .payload_hash = Str(c, "payload_hash")};
    request.headers.insert(request.headers.begin(), {"Host", Str(c, "host")});
    s3::SigningContext context{
        .credentials = {Str(c, "access_key"), Str(c, "secret_key"), Str(c, "session_token")},
        .region = Str(c, "region"),
        .service = "s3",
        .time_seconds = c.at("time").to_number<int64_t>()};
    json::object out;
    out["id"] = c.at("id");
    if (Str(c, "mode") == "header") {
        s3::HeaderSignature sig = s3::SignWithHeaders(request, context);
        out["canonical_request"] = sig.canonical_request;
        out["string_to_sign"] = sig.string_to_sign;
        out["signature"] = sig.signature;
        out["authorization"] = sig.authorization;
    } else {
        s3::QuerySignature sig =
            s3::SignWithQuery(request, context, c.at("expires").to_number<int64_t>());
        out["canonical_request"] = sig.canonical_request;
        out["string_to_sign"] = sig.string_to_sign;
        out["signature"] = sig.signature;
        out["url"] =
            Str(c, "scheme") + "://" + Str(c, "host") + sig.canonical_uri + "?" + sig.query;
    }
    return out;
}

}  // namespace

int main() {
    try {
        std::string input((std::istreambuf_iterator<char>(std::cin)),
                          std::istreambuf_iterator<char>());
        // Printed one object at a time: the results never need to be held as one array.
        std::cout << "[";
        bool first = true;
        json::value cases = json::parse(input);
        for (const json::value& c : cases.as_array()) {
            std::cout << (first ? "" : ",\n") << json::serialize(SignCase(c.as_object()));
            first = false;
        }
        std::cout << "]\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "songd_s3_sign_tool: " << e.what() << "\n";
        return 1;
    }
}
