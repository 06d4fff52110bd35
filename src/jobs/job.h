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

namespace songd::jobs {

/// @brief Lifecycle: queued → processing → completed | failed; completed → expired.
enum class JobStatus { kQueued, kProcessing, kCompleted, kFailed, kExpired };

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
    std::string ref_audio_id;       ///< an upload (reference song); empty when none
};

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
