#pragma once
/// @file
/// The job record: the request as accepted, its lifecycle, and what the status document
/// shows. Times are milliseconds since the epoch; 0 means "not yet".
///
///   jobs::Job job;
///   job.id = core::NewJobId();
///   job.request.lyrics = "[00:05.00]Hello";
///   jobs::JobStatusName(job.status);              // "queued"
///   jobs::ParseJobStatus("completed");            // JobStatus::kCompleted

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace songd::jobs {

/// @brief Lifecycle: queued → processing → completed | failed; completed → expired;
/// queued | processing → canceled (a client's cancel; terminal, no files).
enum class JobStatus { kQueued, kProcessing, kCompleted, kFailed, kExpired, kCanceled };

/// Whether a job in `status` will never change again but by retention (completed, failed,
/// expired, canceled).
bool IsTerminal(JobStatus status);

const char* JobStatusName(JobStatus status);
std::optional<JobStatus> ParseJobStatus(std::string_view name);

/// @brief The generation request, as validated by the API (field names as the old backend).
struct GenerateRequest {
    std::string lyrics;
    std::string style_prompt;
    int audio_length = 95;
    int batch_size = 1;
    std::optional<int> steps;
    std::optional<double> cfg_strength;
    std::string preset = "high";
    bool auto_master = true;
    std::string master_preset = "balanced";
    std::string payment_intent_id;  ///< given at generate; verified at download
    std::optional<uint64_t> seed;   ///< chosen at random when absent
    // Lyrics as people write them (engine/lyric_layout.h).
    bool instrumental = false;  ///< asked for no vocals; the lyrics are then ignored
    /// The LRC rendered, fixed when the job is created: the lyrics as sent when they are LRC,
    /// songd's layout of plain lyrics, "" for an instrumental. Absent on older jobs (their
    /// lyrics are LRC).
    std::optional<std::string> lyrics_lrc;
    double lyrics_bpm = 0;  ///< the layout's tempo, when songd timed the lyrics
    /// Client webhook: where state changes are POSTed (empty: none), and which events
    /// (webhook_outbox.h's names; filled with the default set when the client gave none).
    std::string webhook_url;
    std::vector<std::string> webhook_events;
    std::string ref_audio_id;  ///< an upload (reference song); empty when none
};

/// The LRC a job renders (see GenerateRequest::lyrics_lrc); "" for an instrumental.
inline std::string RenderedLyrics(const GenerateRequest& request) {
    if (request.instrumental) return "";
    return request.lyrics_lrc.value_or(request.lyrics);
}

/// @brief What the finished file is.
struct AudioInfo {
    double duration_seconds = 0;
    int sample_rate = 0;
    int channels = 0;
};

/// @brief One job as stored.
struct Job {
    std::string id;
    JobStatus status = JobStatus::kQueued;
    GenerateRequest request;
    uint64_t seed = 0;  ///< the seed actually used

    int64_t created_at = 0;
    int64_t started_at = 0;
    int64_t completed_at = 0;
    int64_t expires_at = 0;
    int64_t updated_at = 0;

    int progress = 0;
    std::string output_file;  ///< relative to OUTPUT_DIR: "{id}/output_fixed.wav"
    std::string s3_url;       ///< "s3://bucket/prefix{id}/output_fixed.wav" once uploaded
    std::string error;        ///< human-readable
    std::string error_code;   ///< machine-readable, e.g. "timeout"
    AudioInfo audio;
    bool has_preview = false;

    int attempts = 0;
    std::string lease_owner;
    int64_t lease_expires_at = 0;
    /// A client asked to cancel while the job was processing; the worker holding it stops.
    bool cancel_requested = false;

    // Payment: a job is paid once a PaymentIntent is bound to it.
    bool paid = false;
    std::string paid_intent_id;
    int64_t paid_at = 0;
    std::string payment_status;  ///< last Stripe status seen, e.g. "requires_payment_method"
    /// The price fixed when the job was created (smallest currency unit); 0 for jobs created
    /// before prices were stored, which pay the current price for their length.
    int64_t price_cents = 0;

    std::string idempotency_key;
    std::string request_hash;
    int64_t version = 0;  ///< bumps on every change; the status ETag
};

}  // namespace songd::jobs
