// Reference songs: POST {p}/uploads takes an audio file (multipart/form-data field `file`, or
// the raw file with an audio/* Content-Type); generate names it by `ref_audio_id`.
#include <boost/json.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "core/json_text.h"
#include "core/text.h"
#include "http/handlers/handlers.h"
#include "http/multipart.h"

namespace songd::http {

namespace json = boost::json;
using core::Error;
using core::ErrorCode;

namespace {

/// Multipart framing (boundaries, part headers) on top of the file itself.
constexpr uint64_t kUploadBodyLimit = kMaxUploadBytes + uint64_t{64} * 1024;

std::string UploadDocument(const jobs::Upload& u) {
    json::object doc;
    doc["upload_id"] = u.id;
    doc["duration_seconds"] = u.duration_seconds;
    doc["format"] = u.format;
    doc["sample_rate"] = u.sample_rate;
    doc["channels"] = u.channels;
    doc["size_bytes"] = u.size_bytes;
    doc["tempo_bpm"] = u.tempo_bpm > 0 ? json::value(u.tempo_bpm) : json::value(nullptr);
    doc["key"] = u.key;
    doc["created_at"] = core::FormatIso8601(u.created_at);
    doc["expires_at"] = core::FormatIso8601(u.expires_at);
    return core::JsonText(doc);
}

/// The uploaded file's bytes inside the request body.
std::string_view UploadedFile(const Request& request) {
    const std::string type(request.Header("Content-Type").value_or(""));
    if (auto boundary = MultipartBoundary(type)) {
        std::optional<std::string_view> file;
        for (const auto& part : ParseMultipart(request.body, *boundary)) {
            if (part.name != "file") continue;
            if (file) {
                throw Error::Invalid(
                    {{{"body", "file"}, "the form has more than one field \"file\"; send one"}});
            }
            file = part.body;
        }
        if (!file) {
            throw Error::Invalid(
                {{{"body", "file"}, "the form has no field \"file\" holding the audio file"}});
        }
        return *file;
    }
    const std::string lower = core::ToLower(core::Trim(type.substr(0, type.find(';'))));
    if (lower.rfind("audio/", 0) != 0) {
        throw Error(ErrorCode::kUnsupportedMediaType,
                    "send multipart/form-data with the file in the field \"file\", or the file "
                    "itself with an audio/* Content-Type, not " +
                        (type.empty() ? std::string("no Content-Type") : type));
    }
    return request.body;
}

Response Upload(ApiContext& ctx, Request& request) {
    if (!ctx.references) throw Error(ErrorCode::kInternal, "uploads are not set up");
    std::string_view file = UploadedFile(request);
    if (file.size() > kMaxUploadBytes) {
        throw Error(ErrorCode::kPayloadTooLarge,
                    "the file has " + std::to_string(file.size()) + " bytes; at most " +
                        std::to_string(kMaxUploadBytes) + " (20 MB) are taken");
    }
    if (file.empty()) throw Error::Invalid({{{"body", "file"}, "the file is empty"}});
    jobs::Upload upload = ctx.references->Save(file, core::NowMillis());
    Response r = Response::Json(201, UploadDocument(upload));
    r.SetHeader("Location", ctx.config.api_prefix + "/uploads/" + upload.id);
    return r;
}

Response GetUpload(ApiContext& ctx, Request& request) {
    if (!ctx.references) throw Error(ErrorCode::kInternal, "uploads are not set up");
    const auto& id = request.params.at("upload_id");
    auto upload = ctx.references->Find(id, core::NowMillis());
    if (!upload) throw Error(ErrorCode::kNotFound, "upload " + id + " not found or expired");
    return Response::Json(200, UploadDocument(*upload));
}

}  // namespace

void RegisterUploadRoutes(Api& api) {
    auto& ctx = api.context();
    const std::string& p = ctx.config.api_prefix;
    // Decoding and S3 block: the remote pool, never an I/O thread.
    api.router().Add(
        "POST", p + "/uploads", [&ctx](Request& r) { return Upload(ctx, r); }, Run::kRemote,
        kUploadBodyLimit);
    api.router().Add(
        "GET", p + "/uploads/{upload_id}", [&ctx](Request& r) { return GetUpload(ctx, r); },
        Run::kBlocking);
}

}  // namespace songd::http
