#include "jobs/webhook_outbox.h"

#include <algorithm>

#include "core/ids.h"

namespace songd::jobs {

bool IsWebhookEvent(std::string_view name) {
    return std::any_of(std::begin(kWebhookEvents), std::end(kWebhookEvents),
                       [&](const char* e) { return name == e; });
}

bool WantsWebhook(const Job& job, std::string_view event) {
    if (job.request.webhook_url.empty()) return false;
    const auto& events = job.request.webhook_events;
    if (events.empty()) {
        return std::any_of(std::begin(kDefaultWebhookEvents), std::end(kDefaultWebhookEvents),
                           [&](const char* e) { return event == e; });
    }
    return std::find(events.begin(), events.end(), event) != events.end();
}

std::string NewWebhookId() {
    std::string id = core::NewJobId();
    id.erase(std::remove(id.begin(), id.end(), '-'), id.end());
    return "msg_" + id;
}

}  // namespace songd::jobs
