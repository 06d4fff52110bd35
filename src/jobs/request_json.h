#pragma once
/// @file
/// GenerateRequest <-> JSON, for the job record (the request is stored as it was accepted).
///
///   std::string text = jobs::RequestToJson(job.request);     // stored with the job
///   jobs::GenerateRequest again = jobs::RequestFromJson(text);

#include <string>

#include "jobs/job.h"

namespace songd::jobs {

std::string RequestToJson(const GenerateRequest& request);
/// Throws core::Error(kInternal) when a stored record is corrupt.
GenerateRequest RequestFromJson(const std::string& json);

}  // namespace songd::jobs
