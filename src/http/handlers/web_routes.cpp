// The page at / and Swagger UI at /docs, served from the files embedded at build time.
#include <boost/json.hpp>

#include "core/json_text.h"
#include "http/conditional.h"
#include "http/handlers/handlers.h"
#include "http/web_assets.h"
#include "storage/s3/s3_xml.h"

namespace songd::http {

namespace json = boost::json;

namespace {

const WebAsset* FindAsset(std::string_view name) {
    for (const WebAsset& a : WebAssets()) {
        if (a.name == name) return &a;
    }
    return nullptr;
}

void ReplaceAll(std::string& text, std::string_view from, std::string_view to) {
    for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at)) {
        text.replace(at, from.size(), to);
        at += to.size();
    }
}

/// What the page needs to know of the configuration (nothing secret).
std::string PageConfig(const core::Config& config) {
    json::object doc{{"api_prefix", config.api_prefix},
                     {"payments", config.require_payment},
                     {"publishable_key", config.stripe_publishable_key},
                     {"stripe_js_url", config.require_payment ? config.stripe_js_url : ""},
                     {"api_key_required", !config.api_key.empty()},
                     {"default_audio_length", config.default_audio_length},
                     {"max_audio_length", config.max_audio_length},
                     {"preview_seconds", config.preview_seconds},
                     {"version", SONGD_VERSION}};
    return core::JsonText(doc);
}

/// A response for fixed bytes with its ETag: 304 when the client has them.
Response Fixed(const Request& request, std::string_view bytes, std::string_view type,
               const std::string& etag, const char* cache_control) {
    Response r = NotModified(request, Validators{etag, -1})
                     ? Response::Empty(304)
                     : Response::Text(200, std::string(bytes), std::string(type));
    r.SetHeader("ETag", etag);
    r.SetHeader("Cache-Control", cache_control);
    return r;
}

}  // namespace

std::string UrlOrigin(const std::string& url) {
    auto scheme = url.find("://");
    if (scheme == std::string::npos) return "";
    auto end = url.find_first_of("/?#", scheme + 3);
    return url.substr(0, end);
}

std::string PageContentSecurityPolicy(const core::Config& config) {
    std::string script = "'self'";
    std::string frame;
    std::string connect = "'self'";
    std::string img = "'self' data:";
    if (config.require_payment) {
        const std::string origin = UrlOrigin(config.stripe_js_url);
        script += " " + origin;
        frame = origin;
        connect += " " + origin;
        if (origin == "https://js.stripe.com") {
            // Stripe's own list for Stripe.js and the Payment Element.
            script += " https://*.js.stripe.com";
            frame += " https://*.js.stripe.com https://hooks.stripe.com";
            connect += " https://api.stripe.com";
            img += " https://*.stripe.com";
        }
    }
    std::string media = "'self' blob:";
    if (config.s3_enabled) {
        // A preview not on this node is a redirect to the bucket; the page plays and draws it.
        const std::string bucket =
            config.s3_endpoint.empty() ? "https://*.amazonaws.com" : UrlOrigin(config.s3_endpoint);
        media += " " + bucket;
        connect += " " + bucket;
    }
    std::string csp = "default-src 'self'; script-src " + script + "; style-src 'self'; img-src " +
                      img + "; media-src " + media + "; connect-src " + connect + "; frame-src " +
                      (frame.empty() ? "'none'" : frame) +
                      "; object-src 'none'; base-uri 'none'; form-action 'self'; "
                      "frame-ancestors 'none'";
    return csp;
}

void RegisterWebRoutes(Api& api) {
    auto& config = api.context().config;
    auto& router = api.router();
    // Swagger UI is the API's documentation: served even when the page is off.
    for (const WebAsset& asset : WebAssets()) {
        const bool page_file =
            asset.name.rfind("swagger", 0) != 0 && asset.name.rfind("docs", 0) != 0;
        if (page_file && !config.web_enabled) continue;
        if (asset.name == "index.html" || asset.name == "docs.html") continue;
        const WebAsset a = asset;
        router.Add(
            "GET", "/static/" + std::string(a.name),
            [a](Request& request) {
                // Referenced as /static/NAME?v=VERSION, so a new build is fetched at once.
                return Fixed(request, a.bytes, a.content_type, std::string(a.etag),
                             "public, max-age=86400");
            },
            Run::kInline);
    }
    std::string version;
    for (const WebAsset& a : WebAssets()) version += a.etag;
    version = BodyEtag(version).substr(1, 12);

    if (const WebAsset* docs = FindAsset("docs.html")) {
        std::string page(docs->bytes);
        ReplaceAll(page, "%VERSION%", version);
        const std::string etag = BodyEtag(page);
        router.Add(
            "GET", "/docs",
            [page, etag](Request& request) {
                Response r = Fixed(request, page, "text/html; charset=utf-8", etag, "no-cache");
                // Swagger UI's own styles and the data: images of its icons.
                r.SetHeader("Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; style-src 'self' "
                            "'unsafe-inline'; object-src 'none'; base-uri 'none'; "
                            "frame-ancestors 'none'");
                return r;
            },
            Run::kInline);
    }
    if (!config.web_enabled) return;
    const WebAsset* index = FindAsset("index.html");
    if (!index) return;
    std::string page(index->bytes);
    // The configuration goes into an attribute value: XML's escaping is HTML's there.
    ReplaceAll(page, "%CONFIG%", storage::s3::XmlEscape(PageConfig(config)));
    ReplaceAll(page, "%VERSION%", version);
    const std::string etag = BodyEtag(page);
    const std::string csp = PageContentSecurityPolicy(config);
    router.Add(
        "GET", "/",
        [page, etag, csp](Request& request) {
            Response r = Fixed(request, page, "text/html; charset=utf-8", etag, "no-cache");
            r.SetHeader("Content-Security-Policy", csp);
            r.SetHeader("Referrer-Policy", "same-origin");
            return r;
        },
        Run::kInline);
}

}  // namespace songd::http
