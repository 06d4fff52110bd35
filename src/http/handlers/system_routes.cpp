// Liveness, readiness, metrics, and the API description (Swagger UI renders it at /docs).
#include <algorithm>
#include <boost/json.hpp>

#include "core/error.h"
#include "core/json_text.h"
#include "http/handlers/handlers.h"

namespace songd::http {

namespace json = boost::json;

namespace {

json::object Problem(const char* description) {
    return json::object{
        {"description", description},
        {"content",
         json::object{
             {"application/problem+json",
              json::object{{"schema", json::object{{"$ref", "#/components/schemas/Problem"}}}}}}}};
}

json::object JsonResponse(const char* description, const char* schema_ref) {
    return json::object{
        {"description", description},
        {"content", json::object{{"application/json",
                                  json::object{{"schema", json::object{{"$ref", schema_ref}}}}}}}};
}

json::object PathParam() {
    return json::object{{"name", "job_id"},
                        {"in", "path"},
                        {"required", true},
                        {"description", "the job id returned by generate"},
                        {"schema", json::object{{"type", "string"}, {"format", "uuid"}}}};
}

json::object Operation(const char* summary, const char* description) {
    return json::object{{"summary", summary}, {"description", description}};
}

/// Client webhooks on generate: where state changes are POSTed, and which (webhooks/).
void AddWebhookFields(json::object& properties) {
    properties["webhook_url"] = json::object{
        {"type", "string"},
        {"maxLength", 2048},
        {"description",
         "http(s) URL that receives the status document (signed, Standard Webhooks) on each "
         "state change named in webhook_events_filter. Needs WEBHOOK_SECRET on the server; "
         "loopback, private and link-local addresses are refused unless "
         "WEBHOOK_ALLOW_PRIVATE=true."}};
    properties["webhook_events_filter"] = json::object{
        {"type", "array"},
        {"minItems", 1},
        {"items", json::object{{"enum", json::array{"start", "progress", "completed", "failed",
                                                    "canceled", "expired"}}}},
        {"description",
         "default: completed, failed, canceled, expired; progress at most one "
         "per 2 s"}};
}

/// The delivery a webhook_url receives (OpenAPI 3.1 `webhooks`).
json::object WebhookDeliveries() {
    auto header = [](const char* name, const char* description) {
        return json::object{{"name", name},
                            {"in", "header"},
                            {"required", true},
                            {"description", description},
                            {"schema", json::object{{"type", "string"}}}};
    };
    json::object post{
        {"summary", "A job's state changed (sent to its webhook_url)"},
        {"description",
         "POST of the status document at the change, Content-Type application/json. Verify "
         "webhook-signature: v1,base64(HMAC-SHA256(key, id + '.' + timestamp + '.' + body)), "
         "key = base64-decoded WEBHOOK_SECRET after whsec_. Retried with the same webhook-id "
         "on network errors, 5xx and 429 (5 s, 10 s, 20 s, ... at most 10 min apart, for 24 "
         "h); dedupe by webhook-id. Answer 2xx; the body is ignored; redirects are not "
         "followed."},
        {"parameters",
         json::array{header("webhook-id", "stable per state change (msg_...)"),
                     header("webhook-timestamp", "seconds since the epoch of this attempt"),
                     header("webhook-signature", "v1,<base64 signature>")}},
        {"requestBody",
         json::object{
             {"required", true},
             {"content", json::object{{"application/json",
                                       json::object{{"schema", json::object{{"$ref",
                                                                             "#/components/schemas/"
                                                                             "JobStatus"}}}}}}}}},
        {"responses", json::object{{"2XX", json::object{{"description", "delivered"}}}}}};
    return json::object{{"jobStatusChanged", json::object{{"post", std::move(post)}}}};
}

json::object Schemas() {
    auto str = json::object{{"type", "string"}};
    auto nullable = [](const char* type) {
        return json::object{{"type", json::array{type, "null"}}};
    };
    json::object generate{
        {"type", "object"},
        {"required", json::array{"lyrics", "style_prompt"}},
        {"properties",
         json::object{
             {"lyrics",
              json::object{{"type", "string"}, {"description", "LRC: [mm:ss.xx]text lines"}}},
             {"style_prompt", json::object{{"type", "string"}, {"minLength", 3}}},
             {"audio_length",
              json::object{{"type", "integer"}, {"description", "95, or 96 to MAX_AUDIO_LENGTH"}}},
             {"batch_size", json::object{{"type", "integer"}, {"minimum", 1}}},
             {"steps", nullable("integer")},
             {"cfg_strength", nullable("number")},
             {"preset", json::object{{"enum", json::array{"preview", "draft", "standard", "high",
                                                          "maximum", "ultra"}}}},
             {"auto_master", json::object{{"type", "boolean"}, {"default", true}}},
             {"master_preset",
              json::object{{"enum", json::array{"subtle", "balanced", "loud", "broadcast"}}}},
             {"payment_intent_id", nullable("string")},
             {"seed", json::object{{"type", "integer"}, {"minimum", 0}}}}}};
    AddWebhookFields(generate["properties"].as_object());
    // Reference songs: ref_audio_id (an upload) may stand in for style_prompt.
    generate["required"] = json::array{"lyrics"};
    generate["description"] = "style_prompt or ref_audio_id (or both) is required";
    generate["properties"].as_object()["ref_audio_id"] = json::object{
        {"type", "string"},
        {"format", "uuid"},
        {"description",
         "upload_id from POST /uploads: the song follows the reference's tempo and key "
         "(synth) or gets it as reference audio (DiffRhythm); with style_prompt, the "
         "reference's tempo and key win and the prompt's instruments and mood stay"}};
    json::object upload{
        {"type", "object"},
        {"properties",
         json::object{
             {"upload_id", json::object{{"type", "string"}, {"format", "uuid"}}},
             {"duration_seconds", json::object{{"type", "number"}}},
             {"format", json::object{{"enum", json::array{"wav", "flac", "mp3", "ogg"}}}},
             {"sample_rate", json::object{{"type", "integer"}}},
             {"channels", json::object{{"type", "integer"}}},
             {"size_bytes", json::object{{"type", "integer"}}},
             {"tempo_bpm", nullable("number")},
             {"key", json::object{{"type", "string"}, {"examples", json::array{"A minor"}}}},
             {"created_at", json::object{{"type", "string"}, {"format", "date-time"}}},
             {"expires_at", json::object{{"type", "string"}, {"format", "date-time"}}}}}};
    json::object accepted{
        {"type", "object"},
        {"properties", json::object{{"job_id", str},
                                    {"status", str},
                                    {"queue_position", nullable("integer")},
                                    {"estimated_wait_minutes", nullable("integer")},
                                    {"message", str}}}};
    json::object status{
        {"type", "object"},
        {"properties",
         json::object{
             {"job_id", str},
             {"status", json::object{{"enum", json::array{"queued", "processing", "completed",
                                                          "failed", "expired", "canceled"}}}},
             {"created_at", json::object{{"type", "string"}, {"format", "date-time"}}},
             {"started_at", nullable("string")},
             {"completed_at", nullable("string")},
             {"output_file", nullable("string")},
             {"s3_url", nullable("string")},
             {"error", nullable("string")},
             {"queue_position", nullable("integer")},
             {"estimated_wait_minutes", nullable("integer")},
             {"progress", json::object{{"type", "integer"}, {"minimum", 0}, {"maximum", 100}}},
             {"cancel_requested",
              json::object{{"type", "boolean"},
                           {"description", "present (true) while a canceled job is stopping"}}},
             {"expires_at", nullable("string")},
             {"seed", json::object{{"type", "integer"}}},
             {"ref_audio_id", json::object{{"type", "string"}, {"format", "uuid"}}},
             {"payment", json::object{{"type", "object"},
                                      {"properties",
                                       json::object{{"required", json::object{{"type", "boolean"}}},
                                                    {"paid", json::object{{"type", "boolean"}}},
                                                    {"amount", json::object{{"type", "integer"}}},
                                                    {"currency", str},
                                                    {"paid_at", nullable("string")}}}}},
             {"download_url", nullable("string")},
             {"preview_url", nullable("string")},
             {"audio",
              json::object{{"type", json::array{"object", "null"}},
                           {"properties",
                            json::object{{"duration_seconds", json::object{{"type", "number"}}},
                                         {"sample_rate", json::object{{"type", "integer"}}},
                                         {"channels", json::object{{"type", "integer"}}}}}}}}}};
    json::object field_error{
        {"type", "object"},
        {"properties", json::object{{"loc", json::object{{"type", "array"}}}, {"msg", str}}}};
    json::object problem{
        {"type", "object"},
        {"properties",
         json::object{{"type", str},
                      {"title", str},
                      {"status", json::object{{"type", "integer"}}},
                      {"detail", str},
                      {"errors", json::object{{"type", "array"}, {"items", field_error}}}}}};
    return json::object{{"Upload", upload},
                        {"GenerateRequest", generate},
                        {"GenerateAccepted", accepted},
                        {"JobStatus", status},
                        {"Problem", problem}};
}

/// Lyrics as people write them: plain/sectioned lyrics, instrumentals, the LRC used.
void AddLyricsDocs(json::object& schemas, json::object& paths, const std::string& p) {
    auto& generate = schemas["GenerateRequest"].as_object();
    auto& required = generate["required"].as_array();
    required.erase(std::remove(required.begin(), required.end(), json::value("lyrics")),
                   required.end());
    auto& in = generate["properties"].as_object();
    in["lyrics"] = json::object{
        {"type", "string"},
        {"description",
         "LRC ([mm:ss.xx]text lines, kept exactly), or plain lyrics without timestamps: one "
         "sung line per line, blank lines between stanzas, optional section tags [Verse], "
         "[Chorus], [Pre-Chorus], [Hook], [Bridge], [Intro], [Outro], [Instrumental], "
         "[Interlude], [Break], [Solo] (any case, optionally numbered: [Verse 2]). songd times "
         "plain lyrics on the bars of the style's tempo (the LRC used is in the status and at "
         "/jobs/{job_id}/lyrics); too many lines for audio_length is a 422 naming how many "
         "fit. Mixing timed and untimed lines is a 422. Empty (or only tags): an instrumental. "
         "Required unless instrumental is true."}};
    in["instrumental"] = json::object{
        {"type", "boolean"},
        {"default", false},
        {"description", "no vocals; lyrics are then ignored (neither validated nor sung)"}};
    auto& out = schemas["JobStatus"].as_object()["properties"].as_object();
    out["instrumental"] = json::object{{"type", "boolean"}};
    out["lyrics_lrc"] =
        json::object{{"type", "string"},
                     {"description",
                      "the LRC rendered: the lyrics as sent when they were LRC, songd's timing "
                      "of plain lyrics, \"\" for an instrumental"}};
    out["lyrics_url"] = json::object{{"type", "string"}};
    schemas["JobLyrics"] = json::object{
        {"type", "object"},
        {"properties",
         json::object{
             {"job_id", json::object{{"type", "string"}}},
             {"instrumental", json::object{{"type", "boolean"}}},
             {"timed_by_songd", json::object{{"type", "boolean"}}},
             {"bpm", json::object{{"type", json::array{"number", "null"}},
                                  {"description", "the tempo songd timed plain lyrics at"}}},
             {"lrc", json::object{{"type", "string"}}},
             {"lines",
              json::object{
                  {"type", "array"},
                  {"items",
                   json::object{{"type", "object"},
                                {"properties",
                                 json::object{{"time_seconds", json::object{{"type", "number"}}},
                                              {"text", json::object{{"type", "string"}}}}}}}}}}}};
    auto lyrics = Operation("The LRC a job renders",
                            "text/plain LRC by default (empty for an instrumental); its lines as "
                            "JSON with Accept: application/json.");
    lyrics["parameters"] = json::array{PathParam()};
    auto ok = JsonResponse("the LRC", "#/components/schemas/JobLyrics");
    ok["content"].as_object()["text/plain"] =
        json::object{{"schema", json::object{{"type", "string"}}}};
    lyrics["responses"] = json::object{{"200", ok}, {"404", Problem("no such job")}};
    paths[p + "/jobs/{job_id}/lyrics"] = json::object{{"get", lyrics}};
}

}  // namespace

std::string OpenApiDocument(const core::Config& config) {
    const std::string& p = config.api_prefix;
    json::object paths;

    auto generate = Operation("Submit a song",
                              "Queues a generation job. Free; download is paid "
                              "when payments are on. Idempotency-Key honoured.");
    generate["requestBody"] = json::object{
        {"required", true},
        {"content",
         json::object{
             {"application/json",
              json::object{
                  {"schema", json::object{{"$ref", "#/components/schemas/GenerateRequest"}}}}}}}};
    generate["parameters"] =
        json::array{json::object{{"name", "Idempotency-Key"},
                                 {"in", "header"},
                                 {"required", false},
                                 {"description", "the same key and body return the same job"},
                                 {"schema", json::object{{"type", "string"}}}},
                    json::object{{"name", "X-API-Key"},
                                 {"in", "header"},
                                 {"required", false},
                                 {"description", "required when API_KEY is set"},
                                 {"schema", json::object{{"type", "string"}}}}};
    generate["parameters"].as_array().push_back(json::object{
        {"name", "Prefer"},
        {"in", "header"},
        {"required", false},
        {"description",
         "wait=N (1-60; larger is 60): hold the answer until the job ends (201) or N s pass "
         "(202); Preference-Applied says what was applied; other values are ignored (RFC 7240). "
         "For example wait=30."},
        // No schema example: Swagger UI would prefill it and every "Try it out" would wait.
        {"schema", json::object{{"type", "string"}}}});
    generate["responses"] =
        json::object{{"201", JsonResponse("Prefer: wait and the job ended within it: its status "
                                          "(completed, failed or canceled)",
                                          "#/components/schemas/JobStatus")},
                     {"202", JsonResponse("queued; Location names the status URL",
                                          "#/components/schemas/GenerateAccepted")},
                     {"401", Problem("missing or wrong X-API-Key")},
                     {"409", Problem("Idempotency-Key reused with another body")},
                     {"413", Problem("body over 1 MiB")},
                     {"415", Problem("body is not JSON")},
                     {"422", Problem("invalid field; errors lists each")},
                     {"429", Problem("rate limit; Retry-After says when")}};
    paths[p + "/generate"] = json::object{{"post", generate}};

    auto status = Operation("Job status", "Poll with If-None-Match: 304 while nothing changed.");
    status["parameters"] = json::array{PathParam()};
    status["responses"] =
        json::object{{"200", JsonResponse("the job", "#/components/schemas/JobStatus")},
                     {"304", json::object{{"description", "unchanged since the ETag"}}},
                     {"404", Problem("no such job")}};
    paths[p + "/status/{job_id}"] = json::object{{"get", status}};

    auto download = Operation("Download the song",
                              "The WAV (Range supported), or a redirect to "
                              "storage. Needs a paid job when payments are on.");
    download["parameters"] = json::array{
        PathParam(),
        json::object{{"name", "payment_intent_id"},
                     {"in", "query"},
                     {"required", false},
                     {"description", "a succeeded Stripe PaymentIntent for this job"},
                     {"schema", json::object{{"type", "string"}}}},
        json::object{{"name", "format"},
                     {"in", "query"},
                     {"required", false},
                     {"description", "wav (default), flac or mp3"},
                     {"schema", json::object{{"enum", json::array{"wav", "flac", "mp3"}}}}}};
    download["responses"] = json::object{
        {"200", json::object{{"description", "the audio file"}}},
        {"206", json::object{{"description", "the requested byte range"}}},
        {"302", json::object{{"description", "redirect to a presigned storage URL"}}},
        {"402", Problem("payment required; amount, currency and intent_url say how to pay")},
        {"404", Problem("no such job")},
        {"409", Problem("job not completed (or canceled); detail names its status")},
        {"410", Problem("job expired and its files were deleted")},
        {"503", Problem("payment provider unreachable; Retry-After says when")}};
    paths[p + "/download/{job_id}"] = json::object{{"get", download}};

    auto preview = Operation("Free preview",
                             "The first PREVIEW_SECONDS of the song as MP3, "
                             "free, when the job is completed.");
    preview["parameters"] = json::array{PathParam()};
    preview["responses"] =
        json::object{{"200", json::object{{"description", "audio/mpeg"}}},
                     {"302", json::object{{"description", "redirect to storage"}}},
                     {"404", Problem("no such job, or no preview")},
                     {"409", Problem("job not completed")},
                     {"410", Problem("job expired")}};
    paths[p + "/preview/{job_id}"] = json::object{{"get", preview}};

    auto intent = Operation("Pay for a job", "Creates or returns the job's Stripe PaymentIntent.");
    intent["parameters"] = json::array{PathParam()};
    intent["responses"] = json::object{
        {"200",
         json::object{{"description",
                       "payment_intent_id, client_secret, amount, currency, publishable_key"}}},
        {"403", Problem("payments are not configured")},
        {"404", Problem("no such job")},
        {"409", Problem("already paid; download_url says where")},
        {"410", Problem("job expired")},
        {"503", Problem("Stripe unreachable; Retry-After says when")}};
    paths[p + "/payments/{job_id}/intent"] = json::object{{"post", intent}};

    auto webhook = Operation("Stripe webhook", "Stripe events, checked against Stripe-Signature.");
    webhook["responses"] = json::object{{"200", json::object{{"description", "received"}}},
                                        {"400", Problem("bad or missing signature")},
                                        {"403", Problem("no webhook secret configured")}};
    paths["/api/webhooks/stripe"] = json::object{{"post", webhook}};

    // Client API: cancel and live events.
    auto cancel = Operation(
        "Cancel a job",
        "A queued job is canceled at once (200). A processing job's engine is stopped and the "
        "answer waits up to 3 s for it (200 canceled, else 202 with cancel_requested). Its files "
        "are removed; it cannot be paid for. X-API-Key as generate. "
        "curl -X POST {prefix}/jobs/JOB_ID/cancel");
    cancel["parameters"] =
        json::array{PathParam(), json::object{{"name", "X-API-Key"},
                                              {"in", "header"},
                                              {"required", false},
                                              {"description", "required when API_KEY is set"},
                                              {"schema", json::object{{"type", "string"}}}}};
    cancel["responses"] = json::object{
        {"200", JsonResponse("canceled", "#/components/schemas/JobStatus")},
        {"202", JsonResponse("processing with cancel_requested: stops within moments",
                             "#/components/schemas/JobStatus")},
        {"401", Problem("missing or wrong X-API-Key")},
        {"404", Problem("no such job")},
        {"409", Problem("already completed, failed, expired or canceled; job_status names it")}};
    paths[p + "/jobs/{job_id}/cancel"] = json::object{{"post", cancel}};
    auto cancel_alias = cancel;
    cancel_alias["summary"] = "Cancel a job (alias of POST …/cancel)";
    cancel_alias["description"] =
        "The same as POST {prefix}/jobs/{job_id}/cancel. "
        "curl -X DELETE {prefix}/jobs/JOB_ID";
    paths[p + "/jobs/{job_id}"] = json::object{{"delete", cancel_alias}};

    auto events = Operation(
        "Live job events",
        "Server-sent events: `event: status`, `data:` the status document, `id:` the job's "
        "version, on every change; a `: heartbeat` comment every 15 s; closes after a terminal "
        "state. Last-Event-ID resumes without replaying what was seen. "
        "curl -N {prefix}/jobs/JOB_ID/events");
    events["parameters"] =
        json::array{PathParam(), json::object{{"name", "Last-Event-ID"},
                                              {"in", "header"},
                                              {"required", false},
                                              {"description", "the last event id received"},
                                              {"schema", json::object{{"type", "integer"}}}}};
    events["responses"] = json::object{
        {"200",
         json::object{
             {"description", "the event stream"},
             {"content",
              json::object{{"text/event-stream",
                            json::object{{"schema", json::object{{"type", "string"}}}}}}}}},
        {"400", Problem("Last-Event-ID is not a whole number")},
        {"404", Problem("no such job")},
        {"503", Problem("MAX_EVENT_STREAMS streams are open; Retry-After says when")}};
    paths[p + "/jobs/{job_id}/events"] = json::object{{"get", events}};

    auto simple = [](const char* summary, const char* description) {
        auto op = Operation(summary, description);
        op["responses"] = json::object{{"200", json::object{{"description", "OK"}}}};
        return op;
    };
    paths[p + "/health"] =
        json::object{{"get", simple("Health",
                                    "The old backend's health document; with ENGINE=diffrhythm "
                                    "also `diffrhythm`: mode, models, per-worker state.")}};
    paths[p + "/queue"] = json::object{
        {"get", simple("Queue",
                       "Queued and processing counts; with ENGINE=diffrhythm, workers = "
                       "engine_workers (one render per DiffRhythm worker).")}};
    paths[p + "/payments/price"] =
        json::object{{"get", simple("Price", "price_cents and currency of one download.")}};
    paths["/healthz"] = json::object{{"get", simple("Liveness", "200 while the process serves.")}};
    auto ready = simple("Readiness",
                        "200 when the engine is ready, the store answers and the service is not "
                        "stopping.");
    ready["responses"].as_object()["503"] = Problem("not ready");
    paths["/readyz"] = json::object{{"get", ready}};
    if (config.enable_metrics) {
        paths[config.metrics_path] =
            json::object{{"get", simple("Metrics", "Prometheus text format.")}};
    }
    paths["/openapi.json"] = json::object{{"get", simple("This document", "OpenAPI 3.1.")}};
    paths["/docs"] = json::object{{"get", simple("API page", "Swagger UI over this document.")}};

    // Reference songs.
    auto upload = Operation(
        "Upload a reference song",
        "multipart/form-data with the file in the field `file`, or the file itself with an "
        "audio/* Content-Type. WAV, FLAC, MP3 or Ogg (decoded, not trusted by name or type), "
        "at most 20 MB, 10 s to 10 min. Kept FILE_RETENTION_DAYS. Needs X-API-Key when "
        "API_KEY is set; counts against the generate rate limit.");
    json::object file_form{
        {"type", "object"},
        {"required", json::array{"file"}},
        {"properties", json::object{{"file", json::object{{"type", "string"},
                                                          {"contentMediaType", "audio/*"}}}}}};
    upload["requestBody"] = json::object{
        {"required", true},
        {"content",
         json::object{{"multipart/form-data", json::object{{"schema", file_form}}},
                      {"audio/*",
                       json::object{{"schema", json::object{{"type", "string"},
                                                            {"contentMediaType", "audio/*"}}}}}}}};
    upload["responses"] = json::object{
        {"201", JsonResponse("stored; tempo_bpm and key are the analysis the synth follows",
                             "#/components/schemas/Upload")},
        {"400", Problem("malformed multipart body")},
        {"401", Problem("missing or wrong X-API-Key")},
        {"413", Problem("file over 20 MB")},
        {"415", Problem("not WAV, FLAC, MP3 or Ogg audio, or another Content-Type")},
        {"422", Problem("shorter than 10 s or longer than 10 min; no or two `file` fields")},
        {"429", Problem("rate limit; Retry-After says when")},
        {"503", Problem("storage unreachable; Retry-After says when")}};
    paths[p + "/uploads"] = json::object{{"post", upload}};
    auto get_upload = Operation("A reference song", "The upload's document while it is kept.");
    get_upload["parameters"] =
        json::array{json::object{{"name", "upload_id"},
                                 {"in", "path"},
                                 {"required", true},
                                 {"schema", json::object{{"type", "string"}, {"format", "uuid"}}}}};
    get_upload["responses"] =
        json::object{{"200", JsonResponse("the upload", "#/components/schemas/Upload")},
                     {"404", Problem("unknown or expired")}};
    paths[p + "/uploads/{upload_id}"] = json::object{{"get", get_upload}};

    json::object schemas = Schemas();
    AddLyricsDocs(schemas, paths, p);

    json::object doc{
        {"openapi", "3.1.0"},
        {"info", json::object{{"title", "songd"},
                              {"version", SONGD_VERSION},
                              {"description",
                               "Song generation: submit LRC lyrics and a style, "
                               "poll the status (or follow its events, or wait with Prefer: wait), "
                               "listen, pay, download; cancel."}}},
        {"paths", std::move(paths)},
        {"webhooks", WebhookDeliveries()},
        {"components", json::object{{"schemas", std::move(schemas)}}}};
    return core::JsonText(doc);
}

void RegisterSystemRoutes(Api& api) {
    auto& ctx = api.context();
    auto& router = api.router();
    router.Add(
        "GET", "/healthz", [](Request&) { return Response::Json(200, R"({"status":"ok"})"); },
        Run::kInline);
    router.Add(
        "GET", "/readyz",
        [&ctx](Request&) {
            if (ctx.shutting_down) {
                throw core::Error(core::ErrorCode::kUpstreamUnavailable, "shutting down");
            }
            if (ctx.workers) {
                const engine::EngineStatus engine = ctx.workers->engine().Status();
                if (!engine.ready) {
                    throw core::Error(core::ErrorCode::kUpstreamUnavailable,
                                      "engine " + ctx.workers->engine().Name() +
                                          " is not ready: " + engine.reason);
                }
            }
            ctx.store.Stats();  // throws when the store does not answer
            return Response::Json(200, R"({"status":"ready"})");
        },
        Run::kBlocking);
    if (ctx.config.enable_metrics) {
        router.Add(
            "GET", ctx.config.metrics_path,
            [&ctx](Request&) {
                jobs::QueueStats s = ctx.store.Stats();
                std::string extra =
                    "# HELP songd_jobs Jobs in the store by status.\n# TYPE songd_jobs gauge\n";
                const std::pair<const char*, int64_t> counts[] = {
                    {"queued", s.queued}, {"processing", s.processing}, {"completed", s.completed},
                    {"failed", s.failed}, {"expired", s.expired},       {"canceled", s.canceled}};
                for (const auto& [name, n] : counts) {
                    extra += std::string("songd_jobs{status=\"") + name + "\"} " +
                             std::to_string(n) + "\n";
                }
                if (ctx.workers) {
                    const auto& w = ctx.workers->stats();
                    extra += "# TYPE songd_worker_jobs_total counter\n";
                    extra += "songd_worker_jobs_total{outcome=\"completed\"} " +
                             std::to_string(w.completed.load()) + "\n";
                    extra += "songd_worker_jobs_total{outcome=\"failed\"} " +
                             std::to_string(w.failed.load()) + "\n";
                    extra += "songd_worker_jobs_total{outcome=\"requeued\"} " +
                             std::to_string(w.requeued.load()) + "\n";
                    extra += "songd_worker_jobs_total{outcome=\"canceled\"} " +
                             std::to_string(w.canceled.load()) + "\n";
                    extra += "# TYPE songd_workers_active gauge\nsongd_workers_active " +
                             std::to_string(ctx.workers->Active()) + "\n";
                }
                extra += "# TYPE songd_event_streams_open gauge\nsongd_event_streams_open " +
                         std::to_string(ctx.event_streams->load()) + "\n";
                if (ctx.extra_metrics) extra += ctx.extra_metrics();
                return Response::Text(200, ctx.metrics.Render(extra),
                                      "text/plain; version=0.0.4; charset=utf-8");
            },
            Run::kBlocking);
    }
    const std::string openapi = OpenApiDocument(ctx.config);
    router.Add(
        "GET", "/openapi.json", [openapi](Request&) { return Response::Json(200, openapi); },
        Run::kInline);
}

}  // namespace songd::http
