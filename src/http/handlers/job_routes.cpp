// The job endpoints: generate, status, download, queue and the old backend's health.
#include <openssl/rand.h>

#include <boost/json.hpp>
#include <cmath>

#include "audio/encode.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/error.h"
#include "core/ids.h"
#include "core/json_text.h"
#include "http/conditional.h"
#include "http/handlers/handlers.h"
#include "http/handlers/song_file.h"
#include "http/problem.h"
#include "jobs/layout.h"
#include "jobs/request_json.h"
#include "payment/payment_service.h"
#include "storage/s3/s3_client.h"

namespace songd::http {

namespace json = boost::json;
using core::Error;
using core::ErrorCode;

namespace {

json::value TimeOrNull(int64_t millis) {
    if (millis <= 0) return nullptr;
    return json::value(core::FormatIso8601(millis));
}

json::value StringOrNull(const std::string& s) {
    if (s.empty()) return nullptr;
    return json::value(s);
}

/// Average minutes a job takes on this node, for queue estimates (1 min before any data).
double AverageJobMinutes(const ApiContext& ctx) {
    if (!ctx.workers) return 1.0;
    const auto& s = ctx.workers->stats();
    int64_t done = s.completed + s.failed;
    if (done == 0) return 1.0;
    return std::max(0.05, static_cast<double>(s.render_millis) / done / 60000.0);
}

int64_t EstimatedWaitMinutes(const ApiContext& ctx, int64_t position) {
    if (position <= 0) return 0;
    return static_cast<int64_t>(
        std::ceil(position * AverageJobMinutes(ctx) / std::max(1, ctx.config.workers)));
}

/// The job id from the path, or 404 without touching the store: an id is always a UUID,
/// so nothing else (`../..`, 10 000 characters) ever reaches a query or a path.
std::string JobIdParam(const Request& request) {
    const auto& id = request.params.at("job_id");
    if (!core::IsJobId(id)) {
        throw Error(ErrorCode::kNotFound, "job not found: the id is not a job id");
    }
    return id;
}

jobs::Job LoadJob(ApiContext& ctx, const std::string& id) {
    auto job = ctx.store.Get(id);
    if (!job) throw Error(ErrorCode::kNotFound, "job " + id + " not found");
    return *job;
}

std::string StatusDocument(ApiContext& ctx, const jobs::Job& job) {
    const auto& config = ctx.config;
    const std::string& p = config.api_prefix;
    json::object doc;
    doc["job_id"] = job.id;
    doc["status"] = jobs::JobStatusName(job.status);
    doc["created_at"] = core::FormatIso8601(job.created_at);
    doc["started_at"] = TimeOrNull(job.started_at);
    doc["completed_at"] = TimeOrNull(job.completed_at);
    bool has_file = job.status == jobs::JobStatus::kCompleted;
    doc["output_file"] = has_file ? StringOrNull(job.output_file) : json::value(nullptr);
    doc["s3_url"] = has_file ? StringOrNull(job.s3_url) : json::value(nullptr);
    doc["error"] = StringOrNull(job.error);
    if (!job.error_code.empty()) doc["error_code"] = job.error_code;
    if (job.status == jobs::JobStatus::kQueued) {
        int64_t position = ctx.store.QueuePosition(job.id);
        doc["queue_position"] = position;
        doc["estimated_wait_minutes"] = EstimatedWaitMinutes(ctx, position);
    } else {
        doc["queue_position"] = nullptr;
        doc["estimated_wait_minutes"] = nullptr;
    }
    doc["progress"] = job.status == jobs::JobStatus::kCompleted ? 100 : job.progress;
    doc["expires_at"] = TimeOrNull(job.expires_at);
    doc["seed"] = job.seed;
    // The job's own price, fixed when it was created (older jobs: today's for their length).
    json::object payment;
    payment["required"] = config.require_payment;
    payment["paid"] = job.paid;
    payment["amount"] =
        job.price_cents > 0 ? job.price_cents : config.PriceCentsFor(job.request.audio_length);
    payment["currency"] = config.price_currency;
    payment["paid_at"] = TimeOrNull(job.paid_at);
    doc["payment"] = std::move(payment);
    doc["download_url"] = has_file ? json::value(p + "/download/" + job.id) : json::value(nullptr);
    doc["preview_url"] =
        has_file && job.has_preview ? json::value(p + "/preview/" + job.id) : json::value(nullptr);
    if (has_file) {
        doc["audio"] = json::object{{"duration_seconds", job.audio.duration_seconds},
                                    {"sample_rate", job.audio.sample_rate},
                                    {"channels", job.audio.channels}};
    } else {
        doc["audio"] = nullptr;
    }
    return core::JsonText(doc);
}

uint64_t RandomSeed() {
    uint64_t seed = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof seed) != 1) {
        throw Error(ErrorCode::kInternal, "no randomness for a seed");
    }
    return seed & ((1ULL << 53) - 1);  // exact in a JavaScript number
}

Response Generate(ApiContext& ctx, Request& request) {
    if (auto type = request.Header("Content-Type")) {
        std::string t(*type);
        for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (t.find("json") == std::string::npos) {
            throw Error(ErrorCode::kUnsupportedMediaType,
                        "the body must be JSON (Content-Type: application/json), not " +
                            std::string(*type));
        }
    }
    jobs::GenerateRequest parsed = ParseGenerateBody(request.body, ctx.config);
    jobs::Job job;
    job.id = core::NewJobId();
    job.request = parsed;
    job.seed = parsed.seed ? *parsed.seed : RandomSeed();
    job.created_at = core::NowMillis();
    job.request_hash = core::Sha256Hex(jobs::RequestToJson(parsed));
    job.price_cents = ctx.config.PriceCentsFor(parsed.audio_length);  // fixed from now on
    if (auto key = request.Header("Idempotency-Key")) {
        bool ok = !key->empty() && key->size() <= 255 &&
                  std::all_of(key->begin(), key->end(),
                              [](unsigned char c) { return c > 0x20 && c < 0x7f; });
        if (!ok) {
            throw Error::Invalid({{{"header", "Idempotency-Key"},
                                   "Idempotency-Key must be 1-255 visible ASCII characters"}});
        }
        job.idempotency_key = std::string(*key);
    }
    jobs::CreateResult created = ctx.store.Create(job);
    if (created.created && ctx.workers) ctx.workers->Notify();
    const jobs::Job& stored = created.job;
    int64_t position = ctx.store.QueuePosition(stored.id);
    json::object doc;
    doc["job_id"] = stored.id;
    doc["status"] = jobs::JobStatusName(stored.status);
    doc["queue_position"] = position;
    doc["estimated_wait_minutes"] = EstimatedWaitMinutes(ctx, position);
    doc["message"] = "Job queued successfully. Use /status/{job_id} to check progress.";
    if (!created.created) doc["message"] = "Job already submitted with this Idempotency-Key.";
    Response r = Response::Json(202, core::JsonText(doc));
    r.SetHeader("Location", ctx.config.api_prefix + "/status/" + stored.id);
    if (!created.created) r.SetHeader("Idempotent-Replayed", "true");
    return r;
}

Response StatusAnswer(const Request& request, std::string body, const std::string& etag) {
    Response r;
    if (NotModified(request, Validators{etag, -1})) {
        r = Response::Empty(304);
    } else {
        r = Response::Json(200, std::move(body));
    }
    r.SetHeader("ETag", etag);
    r.SetHeader("Cache-Control", "no-cache");
    return r;
}

Response Status(ApiContext& ctx, Request& request) {
    const std::string id = JobIdParam(request);
    // Taken before the read: a change committed meanwhile keeps this read out of the cache.
    const uint64_t generation = ctx.status_cache ? ctx.status_cache->Generation() : 0;
    jobs::Job job = LoadJob(ctx, id);
    std::string body = StatusDocument(ctx, job);
    std::string etag = BodyEtag(body);
    if (ctx.status_cache) {
        ctx.status_cache->Insert(id, body, etag, job.status == jobs::JobStatus::kQueued,
                                 generation);
    }
    return StatusAnswer(request, std::move(body), etag);
}

/// Status from the cache, on the I/O thread; nullopt sends the request to Status.
std::optional<Response> StatusFromCache(ApiContext& ctx, Request& request) {
    if (!ctx.status_cache) return std::nullopt;
    auto it = request.params.find("job_id");
    if (it == request.params.end() || !core::IsJobId(it->second)) return std::nullopt;
    auto hit = ctx.status_cache->Find(it->second);
    if (!hit) return std::nullopt;
    return StatusAnswer(request, hit->body, hit->etag);
}

/// Where a completed job's song can be delivered from, decided before any payment is bound.
struct SongSource {
    std::optional<std::string> redirect;  ///< presigned S3 URL (wav only)
    std::optional<OpenedFile> wav;        ///< the local WAV, held open
};

/// Runs an S3 call for a download; any failure but "not there" is the service's problem, never
/// the client's: 503 (whose details Finish keeps for the log), not S3's own 403 or 400.
template <class F>
auto AskStorage(F&& f) {
    try {
        return f();
    } catch (const Error& e) {
        if (e.code() == ErrorCode::kNotFound) throw;
        throw Error(ErrorCode::kUpstreamUnavailable, e.what()).WithRetryAfter(5);
    }
}

/// Finds the song: the S3 copy for a WAV download (checked with a HEAD when a payment is about
/// to be bound), else the local file, restored from S3 when it is missing here. Throws 404
/// when neither is there and 503 when S3 cannot be asked: never charge for a song we cannot
/// deliver.
SongSource LocateSong(ApiContext& ctx, const jobs::Job& job, const std::string& format,
                      bool binds_payment) {
    SongSource source;
    const bool in_s3 = ctx.storage && ctx.storage->s3_enabled() && !job.s3_url.empty();
    if (in_s3 && format == "wav") {
        bool there = true;
        if (binds_payment) {
            auto* client = ctx.storage->client();
            there = AskStorage([&] {
                return client->HeadObject(client->JobObjectKey(job.id, jobs::kSongFile))
                    .has_value();
            });
        }
        if (there) {
            source.redirect = ctx.storage->PresignedDownload(job);
            if (source.redirect) return source;
        }
    }
    const std::filesystem::path wav = jobs::LocalSong(ctx.config, job.id);
    if (!job.output_file.empty()) source.wav = OpenRegularFile(wav);
    if (!source.wav && !job.output_file.empty() && in_s3) {
        // Another node made it or the disk was replaced: bring the S3 copy back first.
        try {
            AskStorage([&] { return ctx.storage->RestoreLocal(job); });
        } catch (const Error& e) {
            if (e.code() != ErrorCode::kNotFound) throw;
        }
        source.wav = OpenRegularFile(wav);
    }
    if (!source.wav) {
        throw Error(ErrorCode::kNotFound,
                    "the file of job " + job.id + " is missing on this server");
    }
    return source;
}

Response Download(ApiContext& ctx, Request& request) {
    const std::string id = JobIdParam(request);
    jobs::Job job = LoadJob(ctx, id);
    const std::string format = request.QueryParam("format").value_or("wav");
    if (format != "wav" && format != "flac" && format != "mp3") {
        throw Error::Invalid({{{"query", "format"}, "format must be one of: wav, flac, mp3"}});
    }
    switch (job.status) {
        case jobs::JobStatus::kCompleted:
            break;
        case jobs::JobStatus::kExpired:
            throw Error(ErrorCode::kGone, "job " + id + " expired: its files were deleted after " +
                                              std::to_string(ctx.config.file_retention_days) +
                                              " days");
        case jobs::JobStatus::kFailed:
            throw Error(ErrorCode::kConflict,
                        "job " + id + " failed and has no file: " + job.error);
        default:
            throw Error(ErrorCode::kConflict, std::string("job ") + id + " is " +
                                                  jobs::JobStatusName(job.status) +
                                                  "; only completed jobs can be downloaded");
    }
    // First where the song is, then the payment: a missing file answers without binding.
    SongSource source = LocateSong(ctx, job, format, ctx.config.require_payment && !job.paid);
    if (ctx.config.require_payment) {
        // Paid jobs never reach Stripe; otherwise the given (or stored) PaymentIntent is
        // verified and bound to this job, or this throws 402 / 503.
        ctx.payments->AuthorizeDownload(job, request.QueryParam("payment_intent_id").value_or(""),
                                        core::NowMillis(), request.client_address);
    }
    if (source.redirect) {
        // In S3: a redirect to a presigned URL, so the bytes never pass through this node.
        Response redirect = Response::Empty(302);
        redirect.SetHeader("Location", *source.redirect);
        redirect.SetHeader("Cache-Control", "no-store");
        return redirect;
    }
    const audio::Format parsed_format = audio::ParseFormat(format);
    OpenedFile file = *source.wav;
    if (parsed_format != audio::Format::kWav) {
        auto target = jobs::JobDir(ctx.config, id) / jobs::kSongFile;
        target.replace_extension(std::string(".") + audio::FormatName(parsed_format));
        file = OpenDerivedFile(*source.wav, target, parsed_format, [&ctx, &id] {
            auto now = ctx.store.Get(id);
            return now && now->status == jobs::JobStatus::kCompleted;
        });
    }
    return FileResponse(request, file, audio::FormatMimeType(parsed_format),
                        "attachment; filename=\"song-" + id + "." + format + "\"");
}

/// The free preview: the song's opening as MP3, no payment, played inline.
Response Preview(ApiContext& ctx, Request& request) {
    const std::string id = JobIdParam(request);
    jobs::Job job = LoadJob(ctx, id);
    if (job.status == jobs::JobStatus::kExpired) {
        throw Error(ErrorCode::kGone, "job " + id + " expired: its files were deleted");
    }
    if (job.status != jobs::JobStatus::kCompleted) {
        throw Error(ErrorCode::kConflict, std::string("job ") + id + " is " +
                                              jobs::JobStatusName(job.status) +
                                              "; the preview is ready when the job completes");
    }
    if (!job.has_preview) {
        throw Error(ErrorCode::kNotFound, "job " + id + " has no preview (PREVIEW_SECONDS=0)");
    }
    auto preview = OpenRegularFile(jobs::JobDir(ctx.config, id) / jobs::kPreviewFile);
    if (!preview) {
        if (ctx.storage && ctx.storage->s3_enabled() && !job.s3_url.empty()) {
            Response redirect = Response::Empty(302);
            redirect.SetHeader("Location", ctx.storage->PresignedPreview(job));
            return redirect;
        }
        throw Error(ErrorCode::kNotFound,
                    "the preview of job " + id + " is missing on this server");
    }
    Response r = FileResponse(request, *preview, "audio/mpeg",
                              "inline; filename=\"preview-" + id + ".mp3\"");
    r.SetHeader("Cache-Control", "public, max-age=3600");
    return r;
}

Response Queue(ApiContext& ctx, Request&) {
    jobs::QueueStats s = ctx.store.Stats();
    json::object doc;
    doc["queue_length"] = s.queued;
    doc["current_job"] = nullptr;
    doc["processing"] = s.processing;
    doc["workers"] = ctx.config.workers;
    doc["active_jobs"] = ctx.workers ? ctx.workers->Active() : 0;
    doc["estimated_wait_minutes"] = EstimatedWaitMinutes(ctx, s.queued);
    return Response::Json(200, core::JsonText(doc));
}

Response Health(ApiContext& ctx, Request&) {
    jobs::QueueStats s = ctx.store.Stats();
    json::object doc;
    const bool ready = !ctx.shutting_down.load();
    doc["status"] = ready ? "healthy" : "degraded";
    doc["models_loaded"] = ctx.workers != nullptr && ctx.workers->engine().Ready();
    doc["device"] = ctx.config.device;
    doc["queue_length"] = s.queued;
    doc["active_jobs"] = s.processing;
    doc["version"] = SONGD_VERSION;
    doc["engine"] = ctx.config.engine;
    return Response::Json(200, core::JsonText(doc));
}

}  // namespace

void RegisterJobRoutes(Api& api) {
    auto& ctx = api.context();
    const std::string& p = ctx.config.api_prefix;
    auto bind = [&ctx](Response (*fn)(ApiContext&, Request&)) {
        return [&ctx, fn](Request& r) { return fn(ctx, r); };
    };
    auto& router = api.router();
    router.Add("POST", p + "/generate", bind(Generate), Run::kBlocking);
    if (p + "/generate" != "/api/generate") {
        router.Add("POST", "/api/generate", bind(Generate), Run::kBlocking);
    }
    router.Add("GET", p + "/status/{job_id}", bind(Status), Run::kBlocking,
               [&ctx](Request& r) { return StatusFromCache(ctx, r); });
    // Download may ask Stripe about a payment and both may fetch the song back from S3.
    router.Add("GET", p + "/download/{job_id}", bind(Download), Run::kRemote);
    router.Add("GET", p + "/preview/{job_id}", bind(Preview), Run::kRemote);
    router.Add("GET", p + "/queue", bind(Queue), Run::kBlocking);
    router.Add("GET", p + "/health", bind(Health), Run::kBlocking);
}

}  // namespace songd::http
