// The job endpoints: generate, status, download, queue and the old backend's health.
#include <openssl/rand.h>

#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <filesystem>

#include "audio/encode.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/error.h"
#include "core/ids.h"
#include "core/json_text.h"
#include "core/text.h"
#include "engine/lrc.h"
#include "http/conditional.h"
#include "http/handlers/handlers.h"
#include "http/handlers/song_file.h"
#include "http/problem.h"
#include "jobs/layout.h"
#include "jobs/request_json.h"
#include "jobs/status_document.h"
#include "payment/payment_service.h"
#include "storage/s3/s3_client.h"

namespace songd::http {

namespace json = boost::json;
using core::Error;
using core::ErrorCode;

namespace {

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
    std::optional<jobs::QueueEstimate> queue;
    if (job.status == jobs::JobStatus::kQueued) {
        int64_t position = ctx.store.QueuePosition(job.id);
        queue = jobs::QueueEstimate{position, EstimatedWaitMinutes(ctx, position)};
    }
    return jobs::StatusDocument(ctx.config, job, queue);
}

uint64_t RandomSeed() {
    uint64_t seed = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof seed) != 1) {
        throw Error(ErrorCode::kInternal, "no randomness for a seed");
    }
    return seed & ((1ULL << 53) - 1);  // exact in a JavaScript number
}

/// Longest `Prefer: wait` honoured, in seconds (Replicate's limit).
constexpr int kMaxPreferWait = 60;
/// How long a cancel of a processing job waits for its worker before answering 202.
constexpr auto kCancelHold = std::chrono::seconds(3);
/// How often a live answer re-reads a job that another node may change (PostgreSQL): an
/// event stream (there may be thousands), a held answer (few, and someone waits on each).
constexpr auto kSharedStreamPoll = std::chrono::milliseconds(2000);
constexpr auto kSharedHoldPoll = std::chrono::milliseconds(250);

/// `Prefer: wait=N` (RFC 7240, every Prefer header and comma-separated preference): N in
/// seconds, capped at kMaxPreferWait. A preference that is not a positive whole number is
/// ignored, as RFC 7240 asks of preferences a server cannot apply.
std::optional<int> PreferWait(const Request& request) {
    std::optional<int> wait;
    for (const auto& [name, value] : request.headers) {
        if (!IEquals(name, "Prefer")) continue;
        std::string_view rest = value;
        while (!rest.empty()) {
            const size_t comma = rest.find(',');
            std::string_view pref = core::Trim(rest.substr(0, comma));
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
            pref = core::Trim(pref.substr(0, pref.find(';')));  // parameters are not used
            const size_t eq = pref.find('=');
            if (eq == std::string_view::npos || !IEquals(core::Trim(pref.substr(0, eq)), "wait")) {
                continue;
            }
            std::string_view number = core::Trim(pref.substr(eq + 1));
            if (number.size() >= 2 && number.front() == '"' && number.back() == '"') {
                number = number.substr(1, number.size() - 2);
            }
            int seconds = 0;
            const auto [end, ec] =
                std::from_chars(number.data(), number.data() + number.size(), seconds);
            if (number.empty() || ec == std::errc::result_out_of_range) {
                if (ec == std::errc::result_out_of_range && number.find('-') == number.npos) {
                    wait = kMaxPreferWait;  // a huge number is still "as long as you can"
                }
                continue;
            }
            if (ec != std::errc() || end != number.data() + number.size() || seconds <= 0) {
                continue;
            }
            wait = std::min(seconds, kMaxPreferWait);
        }
    }
    return wait;
}

/// A live answer's subscription to this process's changes of job `id`.
std::function<std::shared_ptr<void>(std::function<void()>)> WatchJob(ApiContext& ctx,
                                                                     const std::string& id) {
    jobs::JobChanges* changes = ctx.changes;
    return [changes, id](std::function<void()> wake) -> std::shared_ptr<void> {
        if (!changes) return nullptr;
        return changes->Subscribe(id, std::move(wake));
    };
}

std::chrono::milliseconds LivePoll(const ApiContext& ctx, std::chrono::milliseconds shared,
                                   std::chrono::milliseconds alone) {
    return ctx.config.IsPostgres() ? shared : alone;
}

/// Holds `response` until the job is in a terminal state (then `final_status` with the
/// status document) or `wait` passes (then `response` as it is).
void HoldUntilFinished(ApiContext& ctx, Response& response, const std::string& id,
                       std::chrono::steady_clock::duration wait, int final_status,
                       std::vector<std::pair<std::string, std::string>> final_headers) {
    auto live = std::make_shared<LiveAnswer>();
    live->subscribe = WatchJob(ctx, id);
    live->poll = LivePoll(ctx, kSharedHoldPoll, std::chrono::milliseconds(0));
    live->deadline = std::chrono::steady_clock::now() + wait;
    live->look = [&ctx, id, final_status, final_headers]() -> LiveStep {
        LiveStep step;
        auto job = ctx.store.Get(id);
        if (!job || !jobs::IsTerminal(job->status)) return step;
        Response r = Response::Json(final_status, StatusDocument(ctx, *job));
        for (const auto& [name, value] : final_headers) r.SetHeader(name, value);
        step.answer = std::move(r);
        return step;
    };
    response.live = std::move(live);
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
    if (!parsed.ref_audio_id.empty() &&
        (!ctx.references || !ctx.references->Find(parsed.ref_audio_id, core::NowMillis()))) {
        throw Error::Invalid({{{"body", "ref_audio_id"},
                               "no upload " + parsed.ref_audio_id +
                                   ": it is unknown or has expired; upload the reference song "
                                   "again (POST " +
                                   ctx.config.api_prefix + "/uploads)"}});
    }
    jobs::Job job;
    job.id = core::NewJobId();
    job.request = parsed;
    job.seed = parsed.seed ? *parsed.seed : RandomSeed();
    // The layout follows the seed; the request hash below is of `parsed`, without it.
    FixRenderedLyrics(job.request, job.seed);
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
    if (auto wait = PreferWait(request)) {
        // Replicate's `Prefer: wait`: 201 with the finished job, or 202 as above after N s.
        const std::string applied = "wait=" + std::to_string(*wait);
        r.SetHeader("Preference-Applied", applied);
        std::vector<std::pair<std::string, std::string>> headers = {
            {"Location", ctx.config.api_prefix + "/status/" + stored.id},
            {"Preference-Applied", applied}};
        if (!created.created) headers.emplace_back("Idempotent-Replayed", "true");
        HoldUntilFinished(ctx, r, stored.id, std::chrono::seconds(*wait), 201, std::move(headers));
    }
    return r;
}

/// POST {p}/jobs/{job_id}/cancel and DELETE {p}/jobs/{job_id}: a queued job is canceled at
/// once (200); a processing one is stopped by its worker, and the answer waits up to
/// kCancelHold for it (200 canceled, else 202 with cancel_requested); a finished job: 409.
Response Cancel(ApiContext& ctx, Request& request) {
    const std::string id = JobIdParam(request);
    const int64_t now = core::NowMillis();
    jobs::Job job;
    switch (ctx.store.RequestCancel(
        id, now, now + ctx.config.file_retention_days * core::kMillisPerDay, &job)) {
        case jobs::CancelOutcome::kNoSuchJob:
            throw Error(ErrorCode::kNotFound, "job " + id + " not found");
        case jobs::CancelOutcome::kFinished:
            throw Error(ErrorCode::kConflict,
                        std::string("job ") + id + " is already " +
                            jobs::JobStatusName(job.status) +
                            "; only queued or processing jobs can be canceled")
                .WithExtra("job_status",
                           std::string("\"") + jobs::JobStatusName(job.status) + "\"");
        case jobs::CancelOutcome::kCanceled: {
            std::error_code ec;
            std::filesystem::remove_all(jobs::JobDir(ctx.config, id), ec);  // nothing is kept
            if (ctx.changes) ctx.changes->Publish(id);
            return Response::Json(200, StatusDocument(ctx, job));
        }
        case jobs::CancelOutcome::kRequested:
            break;
    }
    // The worker rendering it here stops now; on another node, at its next cancel poll.
    if (ctx.workers) ctx.workers->CancelLocal(id);
    if (ctx.changes) ctx.changes->Publish(id);
    Response r = Response::Json(202, StatusDocument(ctx, job));
    HoldUntilFinished(ctx, r, id, kCancelHold, 200, {});
    return r;
}

/// GET {p}/jobs/{job_id}/events: the status document as server-sent events, one per change,
/// `id:` the job's version (it rises with every change, on every node, so Last-Event-ID
/// resumes without replaying what was seen); closes after a terminal state.
Response Events(ApiContext& ctx, Request& request) {
    const std::string id = JobIdParam(request);
    int64_t seen = 0;
    if (auto last = request.Header("Last-Event-ID"); last && !core::Trim(*last).empty()) {
        const std::string_view text = core::Trim(*last);
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seen);
        if (ec != std::errc() || end != text.data() + text.size() || seen < 0) {
            throw Error(ErrorCode::kMalformedRequest,
                        "Last-Event-ID must be the id of an event this stream sent (a whole "
                        "number)");
        }
    }
    LoadJob(ctx, id);  // 404 before a stream opens
    auto& open = *ctx.event_streams;
    if (++open > ctx.config.max_event_streams) {
        --open;
        throw Error(ErrorCode::kUpstreamUnavailable,
                    std::to_string(ctx.config.max_event_streams) +
                        " event streams are open (MAX_EVENT_STREAMS); retry later")
            .WithRetryAfter(5);
    }
    auto live = std::make_shared<LiveAnswer>();
    live->slot = std::shared_ptr<void>(nullptr, [count = ctx.event_streams](void*) { --*count; });
    live->stream = true;
    live->subscribe = WatchJob(ctx, id);
    // Alone (SQLite), every change is published here; a look at each heartbeat is a backstop.
    live->poll = LivePoll(ctx, kSharedStreamPoll, std::chrono::milliseconds(15'000));
    auto last_sent = std::make_shared<int64_t>(seen);
    live->look = [&ctx, id, last_sent]() -> LiveStep {
        LiveStep step;
        auto job = ctx.store.Get(id);
        if (!job) {
            step.done = true;  // deleted by retention: nothing more will come
            return step;
        }
        if (job->version > *last_sent) {
            *last_sent = job->version;
            step.bytes = "id: " + std::to_string(job->version) +
                         "\nevent: status\ndata: " + StatusDocument(ctx, *job) + "\n\n";
        }
        step.done = jobs::IsTerminal(job->status);
        return step;
    };
    Response r;
    r.status = 200;
    r.SetHeader("Content-Type", "text/event-stream");
    r.SetHeader("Cache-Control", "no-cache");
    r.SetHeader("X-Accel-Buffering", "no");  // proxies must not buffer the stream
    r.live = std::move(live);
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
        case jobs::JobStatus::kCanceled:
            throw Error(ErrorCode::kConflict,
                        "job " + id + " was canceled and has no file; it cannot be paid for");
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
    if (ctx.config.engine == "diffrhythm") {
        // One render per DiffRhythm worker: WORKERS is the number of engine workers.
        doc["engine_workers"] = ctx.config.workers;
        doc["workers_note"] =
            ctx.config.diffrhythm_gpus.empty()
                ? "ENGINE=diffrhythm: one render at a time on one CPU worker"
                : "ENGINE=diffrhythm: one render at a time per GPU in DIFFRHYTHM_GPUS";
    }
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
    if (ctx.workers != nullptr && ctx.config.engine == "diffrhythm") {
        // What the model processes say: the device they run on, the models they hold.
        const engine::EngineReport report = ctx.workers->engine().Report();
        if (!report.device.empty()) doc["device"] = report.device;
        doc["models_loaded"] = !report.models_loaded.empty();
        json::array models(report.models_loaded.begin(), report.models_loaded.end());
        json::array workers;
        for (const auto& w : report.workers) {
            json::object o;
            o["index"] = w.index;
            o["state"] = w.state;
            o["gpu"] = w.gpu ? json::value(*w.gpu) : json::value(nullptr);
            o["pid"] = w.pid == 0 ? json::value(nullptr) : json::value(w.pid);
            o["device"] = w.device.empty() ? json::value(nullptr) : json::value(w.device);
            o["models_loaded"] = json::array(w.models_loaded.begin(), w.models_loaded.end());
            o["restarts"] = w.restarts;
            workers.push_back(std::move(o));
        }
        doc["diffrhythm"] = json::object{{"mode", ctx.config.diffrhythm_mode},
                                         {"models", std::move(models)},
                                         {"workers", std::move(workers)}};
    }
    return Response::Json(200, core::JsonText(doc));
}

/// The LRC a job renders: text/plain LRC, or with `Accept: application/json` its lines.
Response Lyrics(ApiContext& ctx, Request& request) {
    jobs::Job job = LoadJob(ctx, JobIdParam(request));
    const std::string lrc = jobs::RenderedLyrics(job.request);
    const std::string accept = core::ToLower(std::string(request.Header("Accept").value_or("")));
    Response r;
    if (accept.find("application/json") != std::string::npos) {
        json::array lines;
        if (!lrc.empty()) {
            for (const auto& line : engine::ParseLrc(lrc, job.request.audio_length)) {
                lines.push_back(
                    json::object{{"time_seconds", line.time_ms / 1000.0}, {"text", line.text}});
            }
        }
        json::object doc;
        doc["job_id"] = job.id;
        doc["instrumental"] = lrc.empty();
        doc["timed_by_songd"] = job.request.lyrics_bpm > 0;
        doc["bpm"] =
            job.request.lyrics_bpm > 0 ? json::value(job.request.lyrics_bpm) : json::value(nullptr);
        doc["lrc"] = lrc;
        doc["lines"] = std::move(lines);
        r = Response::Json(200, core::JsonText(doc));
    } else {
        r = Response::Text(200, lrc, "text/plain; charset=utf-8");
    }
    r.SetHeader("Vary", "Accept");
    r.SetHeader("Cache-Control", "no-cache");
    return r;
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
    router.Add("GET", p + "/status/{job_id}", bind(Status), Run::kBlocking, 0,
               [&ctx](Request& r) { return StatusFromCache(ctx, r); });
    // Download may ask Stripe about a payment and both may fetch the song back from S3.
    router.Add("GET", p + "/download/{job_id}", bind(Download), Run::kRemote);
    router.Add("GET", p + "/preview/{job_id}", bind(Preview), Run::kRemote);
    router.Add("GET", p + "/jobs/{job_id}/lyrics", bind(Lyrics), Run::kBlocking);
    router.Add("GET", p + "/queue", bind(Queue), Run::kBlocking);
    router.Add("GET", p + "/health", bind(Health), Run::kBlocking);
    // The client API: cancel, live events (the stream itself is served by the I/O threads).
    router.Add("POST", p + "/jobs/{job_id}/cancel", bind(Cancel), Run::kBlocking);
    router.Add("DELETE", p + "/jobs/{job_id}", bind(Cancel), Run::kBlocking);
    router.Add("GET", p + "/jobs/{job_id}/events", bind(Events), Run::kBlocking);
}

}  // namespace songd::http
