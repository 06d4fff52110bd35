#pragma once
/// @file
/// Just enough XML for S3's answers (flat documents of simple elements) and requests.
///
///   for (std::string_view item : s3::XmlElements(body, "Contents")) {
///       std::string key = s3::XmlText(item, "Key").value_or("");
///   }

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace songd::storage::s3 {

/// Name of the document's first element ("Error", "ListBucketResult"), or "" if none.
std::string XmlRootName(std::string_view xml);

/// Raw (undecoded) contents of every `<name>...</name>` element, in order; `<name/>` gives "".
std::vector<std::string_view> XmlElements(std::string_view xml, std::string_view name);

/// Decoded text of the first `<name>` element, or nullopt.
std::optional<std::string> XmlText(std::string_view xml, std::string_view name);

/// Replaces the five predefined entities and numeric character references.
std::string XmlDecode(std::string_view text);

/// Escapes & < > " ' for element text.
std::string XmlEscape(std::string_view text);

}  // namespace songd::storage::s3
