#include "jobs/job.h"

namespace songd::jobs {

const char* JobStatusName(JobStatus status) {
    switch (status) {
        case JobStatus::kQueued:
            return "queued";
        case JobStatus::kProcessing:
            return "processing";
        case JobStatus::kCompleted:
            return "completed";
        case JobStatus::kFailed:
            return "failed";
        case JobStatus::kExpired:
            return "expired";
        case JobStatus::kCanceled:
            return "canceled";
    }
    return "failed";
}

std::optional<JobStatus> ParseJobStatus(std::string_view name) {
    for (auto s : {JobStatus::kQueued, JobStatus::kProcessing, JobStatus::kCompleted,
                   JobStatus::kFailed, JobStatus::kExpired, JobStatus::kCanceled}) {
        if (name == JobStatusName(s)) return s;
    }
    return std::nullopt;
}

bool IsTerminal(JobStatus status) {
    return status != JobStatus::kQueued && status != JobStatus::kProcessing;
}

}  // namespace songd::jobs
