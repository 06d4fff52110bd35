#pragma once
/// @file
/// The page's files (web/), embedded at build time by web/embed.cmake from web/assets.txt.
///
///   for (const http::WebAsset& a : http::WebAssets()) router.Add("GET", "/static/" + a.name, ...);

#include <string_view>
#include <vector>

namespace songd::http {

/// @brief One embedded file: its URL name, content type, strong ETag (quoted) and bytes.
struct WebAsset {
    std::string_view name;
    std::string_view content_type;
    std::string_view etag;
    std::string_view bytes;
};

/// Every embedded file, in the order of web/assets.txt.
const std::vector<WebAsset>& WebAssets();

}  // namespace songd::http
