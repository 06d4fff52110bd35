#include "jobs/notifying_store.h"

namespace songd::jobs {

NotifyingJobStore::NotifyingJobStore(std::unique_ptr<JobStore> inner) : inner_(std::move(inner)) {}

void NotifyingJobStore::OnChange(Listener listener) { listeners_.push_back(std::move(listener)); }

void NotifyingJobStore::Changed(const std::string& id) {
    for (const auto& listener : listeners_) listener(id);
}

std::optional<Job> NotifyingJobStore::Get(const std::string& id) { return inner_->Get(id); }

CreateResult NotifyingJobStore::Create(const Job& job) {
    // A new queued job changes no other job's queue position (it queues last), but its id may
    // have been read (and answered 404) before: nothing is cached for unknown ids, so no call.
    return inner_->Create(job);
}

int64_t NotifyingJobStore::QueuePosition(const std::string& id) {
    return inner_->QueuePosition(id);
}

QueueStats NotifyingJobStore::Stats() { return inner_->Stats(); }

std::optional<Job> NotifyingJobStore::Claim(const std::string& owner, int64_t now,
                                            int64_t lease_ms) {
    // The claimed job's id is known only afterwards (a throw: any job may have changed).
    std::optional<Job> job;
    try {
        job = inner_->Claim(owner, now, lease_ms);
    } catch (...) {
        Changed(std::string());
        throw;
    }
    if (job) Changed(job->id);
    return job;
}

bool NotifyingJobStore::RenewLease(const std::string& id, const std::string& owner, int64_t until) {
    return inner_->RenewLease(id, owner, until);  // the lease is not part of any document
}

bool NotifyingJobStore::SetProgress(const std::string& id, const std::string& owner, int progress) {
    return Announce(id, [&] { return inner_->SetProgress(id, owner, progress); });
}

bool NotifyingJobStore::Complete(const std::string& id, const std::string& owner,
                                 const Completion& c, int64_t now) {
    return Announce(id, [&] { return inner_->Complete(id, owner, c, now); });
}

bool NotifyingJobStore::Fail(const std::string& id, const std::string& owner,
                             const std::string& code, const std::string& message, int64_t now,
                             int64_t expires_at) {
    return Announce(id, [&] { return inner_->Fail(id, owner, code, message, now, expires_at); });
}

bool NotifyingJobStore::Release(const std::string& id, const std::string& owner) {
    return Announce(id, [&] { return inner_->Release(id, owner); });
}

int NotifyingJobStore::RecoverExpiredLeases(int64_t now, int max_attempts, bool all_processing,
                                            int64_t fail_expires_at) {
    // Which jobs it touched is not known here: when it touched any, every job may have.
    int touched = 0;
    try {
        touched = inner_->RecoverExpiredLeases(now, max_attempts, all_processing, fail_expires_at);
    } catch (...) {
        Changed(std::string());
        throw;
    }
    if (touched > 0) Changed(std::string());
    return touched;
}

bool NotifyingJobStore::SetS3Url(const std::string& id, const std::string& s3_url) {
    return Announce(id, [&] { return inner_->SetS3Url(id, s3_url); });
}

std::vector<std::string> NotifyingJobStore::CompletedWithoutS3(int limit) {
    return inner_->CompletedWithoutS3(limit);
}

std::vector<Job> NotifyingJobStore::ListByStatus(JobStatus status, const std::string& after_id,
                                                 int limit) {
    return inner_->ListByStatus(status, after_id, limit);
}

BindResult NotifyingJobStore::BindPayment(const std::string& id, const std::string& intent_id,
                                          int64_t now, int64_t keep_files_until) {
    return Announce(id, [&] { return inner_->BindPayment(id, intent_id, now, keep_files_until); });
}

bool NotifyingJobStore::SetPaymentStatus(const std::string& id, const std::string& status) {
    return Announce(id, [&] { return inner_->SetPaymentStatus(id, status); });
}

bool NotifyingJobStore::RecordEvent(const std::string& event_id, int64_t now) {
    return inner_->RecordEvent(event_id, now);
}

void NotifyingJobStore::ForgetEvent(const std::string& event_id) { inner_->ForgetEvent(event_id); }

bool NotifyingJobStore::HasEvent(const std::string& event_id) { return inner_->HasEvent(event_id); }

std::vector<ExpiringJob> NotifyingJobStore::DueForExpiry(int64_t now, const ExpiryCursor& after,
                                                         int limit) {
    return inner_->DueForExpiry(now, after, limit);
}

bool NotifyingJobStore::MarkExpired(const std::string& id, int64_t now) {
    return Announce(id, [&] { return inner_->MarkExpired(id, now); });
}

bool NotifyingJobStore::DeleteJob(const std::string& id) {
    return Announce(id, [&] { return inner_->DeleteJob(id); });
}

void NotifyingJobStore::ExpireBatch(const std::vector<std::string>& expire,
                                    const std::vector<std::string>& remove, int64_t now) {
    struct After {
        NotifyingJobStore* self;
        const std::vector<std::string>& expire;
        const std::vector<std::string>& remove;
        ~After() {
            for (const auto& id : expire) self->Changed(id);
            for (const auto& id : remove) self->Changed(id);
        }
    } after{this, expire, remove};
    inner_->ExpireBatch(expire, remove, now);
}

bool NotifyingJobStore::Exists(const std::string& id) { return inner_->Exists(id); }

std::optional<std::string> NotifyingJobStore::GetState(const std::string& key) {
    return inner_->GetState(key);
}

void NotifyingJobStore::SetState(const std::string& key, const std::string& value) {
    inner_->SetState(key, value);
}

bool NotifyingJobStore::TryLock(const std::string& name, const std::string& owner, int64_t now,
                                int64_t until) {
    return inner_->TryLock(name, owner, now, until);
}

void NotifyingJobStore::Unlock(const std::string& name, const std::string& owner) {
    inner_->Unlock(name, owner);
}

CancelOutcome NotifyingJobStore::RequestCancel(const std::string& id, int64_t now,
                                               int64_t expires_at, Job* job) {
    return Announce(id, [&] { return inner_->RequestCancel(id, now, expires_at, job); });
}

bool NotifyingJobStore::MarkCanceled(const std::string& id, const std::string& owner, int64_t now,
                                     int64_t expires_at) {
    return Announce(id, [&] { return inner_->MarkCanceled(id, owner, now, expires_at); });
}

std::vector<std::string> NotifyingJobStore::CancelRequested(const std::vector<std::string>& ids) {
    return inner_->CancelRequested(ids);
}

void NotifyingJobStore::SetWebhookRenderer(BodyRenderer renderer) {
    inner_->SetWebhookRenderer(std::move(renderer));
}

std::vector<WebhookDelivery> NotifyingJobStore::ClaimWebhooks(const std::string& owner, int64_t now,
                                                              int64_t lease_ms, int limit) {
    return inner_->ClaimWebhooks(owner, now, lease_ms, limit);
}

bool NotifyingJobStore::FinishWebhook(const std::string& id, const std::string& owner) {
    return inner_->FinishWebhook(id, owner);
}

bool NotifyingJobStore::RetryWebhook(const std::string& id, const std::string& owner,
                                     int64_t next_attempt_at, const std::string& error) {
    return inner_->RetryWebhook(id, owner, next_attempt_at, error);
}

bool NotifyingJobStore::ReleaseWebhook(const std::string& id, const std::string& owner,
                                       int64_t next_attempt_at) {
    return inner_->ReleaseWebhook(id, owner, next_attempt_at);
}

int64_t NotifyingJobStore::WebhookOutboxDepth() { return inner_->WebhookOutboxDepth(); }

void NotifyingJobStore::PutUpload(const Upload& upload) { inner_->PutUpload(upload); }

std::optional<Upload> NotifyingJobStore::GetUpload(const std::string& id) {
    return inner_->GetUpload(id);
}

std::vector<Upload> NotifyingJobStore::UploadsDueForExpiry(int64_t now, int limit) {
    return inner_->UploadsDueForExpiry(now, limit);
}

bool NotifyingJobStore::DeleteUpload(const std::string& id) { return inner_->DeleteUpload(id); }

}  // namespace songd::jobs
