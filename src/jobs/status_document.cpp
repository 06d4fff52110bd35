#include "jobs/status_document.h"

#include <boost/json.hpp>

#include "core/clock.h"
#include "core/json_text.h"

namespace songd::jobs {

namespace json = boost::json;

namespace {

json::value TimeOrNull(int64_t millis) {
    if (millis <= 0) return nullptr;
    return json::value(core::FormatIso8601(millis));
}

json::value StringOrNull(const std::string& s) {
    if (s.empty()) return nullptr;
    return json::value(s);
}

}  // namespace

std::string StatusDocument(const core::Config& config, const Job& job,
                           const std::optional<QueueEstimate>& queue) {
    const std::string& p = config.api_prefix;
    json::object doc;
    doc["job_id"] = job.id;
    doc["status"] = JobStatusName(job.status);
    doc["created_at"] = core::FormatIso8601(job.created_at);
    doc["started_at"] = TimeOrNull(job.started_at);
    doc["completed_at"] = TimeOrNull(job.completed_at);
    bool has_file = job.status == JobStatus::kCompleted;
    doc["output_file"] = has_file ? StringOrNull(job.output_file) : json::value(nullptr);
    doc["s3_url"] = has_file ? StringOrNull(job.s3_url) : json::value(nullptr);
    doc["error"] = StringOrNull(job.error);
    if (!job.error_code.empty()) doc["error_code"] = job.error_code;
    if (job.status == JobStatus::kQueued && queue) {
        doc["queue_position"] = queue->position;
        doc["estimated_wait_minutes"] = queue->estimated_wait_minutes;
    } else {
        doc["queue_position"] = nullptr;
        doc["estimated_wait_minutes"] = nullptr;
    }
    doc["progress"] = job.status == JobStatus::kCompleted ? 100 : job.progress;
    if (job.cancel_requested && job.status == JobStatus::kProcessing) {
        doc["cancel_requested"] = true;  // canceled within moments
    }
    doc["expires_at"] = TimeOrNull(job.expires_at);
    doc["seed"] = job.seed;
    if (!job.request.ref_audio_id.empty()) doc["ref_audio_id"] = job.request.ref_audio_id;
    // The LRC this job renders (songd's timing of plain lyrics), also at {p}/jobs/{id}/lyrics.
    const std::string lrc = RenderedLyrics(job.request);
    doc["instrumental"] = lrc.empty();
    doc["lyrics_lrc"] = lrc;
    doc["lyrics_url"] = p + "/jobs/" + job.id + "/lyrics";
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

}  // namespace songd::jobs
