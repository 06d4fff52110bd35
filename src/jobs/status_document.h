#pragma once
/// @file
/// The status document of a job: what GET {prefix}/status/{job_id} answers, and the body of
/// every client webhook (rendered in the store transaction of the state change, so a delivery
/// shows the job as it was at that change).
///
///   std::string body = jobs::StatusDocument(config, job, jobs::QueueEstimate{3, 2});
///   std::string hook = jobs::StatusDocument(config, job, std::nullopt);  // no queue figures

#include <cstdint>
#include <optional>
#include <string>

#include "core/config.h"
#include "jobs/job.h"

namespace songd::jobs {

/// @brief Where a queued job stands (computed by the caller: it needs the store and workers).
struct QueueEstimate {
    int64_t position = 0;
    int64_t estimated_wait_minutes = 0;
};

/// The JSON status document. `queue` fills queue_position/estimated_wait_minutes for a queued
/// job; without it (or for any other status) they are null.
std::string StatusDocument(const core::Config& config, const Job& job,
                           const std::optional<QueueEstimate>& queue);

}  // namespace songd::jobs
