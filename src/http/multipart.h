#pragma once
/// @file
/// multipart/form-data (RFC 7578) bodies: the boundary from the Content-Type and the parts
/// of a body already in memory. Parts point into the body; nothing is copied.
///
///   auto boundary = http::MultipartBoundary(request.Header("Content-Type").value_or(""));
///   for (const auto& part : http::ParseMultipart(request.body, *boundary))
///       if (part.name == "file") Save(part.body);
///
/// A body that does not follow the format (no opening boundary line, a part without its
/// header end, no closing boundary) throws core::Error(kMalformedRequest) saying what is wrong.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace songd::http {

/// @brief One part of a multipart/form-data body.
struct MultipartPart {
    std::string name;      ///< Content-Disposition's name
    std::string filename;  ///< Content-Disposition's filename; empty for plain fields
    bool has_filename = false;
    std::string content_type;  ///< the part's Content-Type, empty when absent
    std::string_view body;     ///< into the parsed body
};

/// The boundary of a `multipart/form-data` Content-Type value; nullopt when the type is
/// another one. A multipart type without a valid boundary (1-70 characters) throws
/// core::Error(kMalformedRequest).
std::optional<std::string> MultipartBoundary(std::string_view content_type);

/// Splits a multipart body into its parts (see the file comment).
std::vector<MultipartPart> ParseMultipart(std::string_view body, std::string_view boundary);

}  // namespace songd::http
