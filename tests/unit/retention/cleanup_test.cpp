// The retention pass on the real SQLite store, a real output folder and a fake bucket.
#include "retention/cleanup.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <thread>

#include "core/clock.h"
#include "core/ids.h"
#include "fake_object_store.h"
#include "jobs/layout.h"
#include "jobs/sqlite_store.h"
#include "retention/scheduler.h"

namespace songd::retention {
namespace {

namespace fs = std::filesystem;
using jobs::JobStatus;
using testing::FakeObjectStore;

constexpr int64_t kDay = core::kMillisPerDay;
constexpr int64_t kRetention = 30 * kDay;
/// A fixed "now" for the pass (2030), far from the wall clock, so ages are exact.
constexpr int64_t kNow = 1'900'000'000'000;

void SetMtime(const fs::path& path, int64_t ms) {
    timespec times[2];
    times[0].tv_sec = times[1].tv_sec = ms / 1000;
    times[0].tv_nsec = times[1].tv_nsec = (ms % 1000) * 1000000;
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
}

/// Sets the modification time of `path` and everything under it.
void SetTreeMtime(const fs::path& path, int64_t ms) {
    timespec times[2];
    times[0].tv_sec = times[1].tv_sec = ms / 1000;
    times[0].tv_nsec = times[1].tv_nsec = (ms % 1000) * 1000000;
    if (fs::is_directory(path)) {
        for (const auto& entry : fs::recursive_directory_iterator(path)) {
            ASSERT_EQ(::utimensat(AT_FDCWD, entry.path().c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
        }
    }
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
}

void WriteFile(const fs::path& path, const std::string& content) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
}

/// Makes a folder undeletable: read-only for a normal user, immutable for root (root
/// ignores permissions). Returns false when the system refuses both.
bool MakeUndeletable(const fs::path& dir) {
    if (::geteuid() != 0) return ::chmod(dir.c_str(), 0555) == 0;
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return false;
    int flags = 0;
    bool ok = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
    flags |= FS_IMMUTABLE_FL;
    ok = ok && ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
    ::close(fd);
    return ok;
}

void MakeDeletable(const fs::path& dir) {
    if (::geteuid() != 0) {
        ::chmod(dir.c_str(), 0755);
        return;
    }
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    int flags = 0;
    if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
        flags &= ~FS_IMMUTABLE_FL;
        ::ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
    ::close(fd);
}

class CleanupTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/songd-retention-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        config_.output_dir = dir_ / "output";
        fs::create_directories(config_.output_dir);
        config_.s3_bucket = "songs";
        config_.s3_prefix = "songs/";
        config_.file_retention_days = 30;
        store_ = std::make_unique<jobs::SqliteJobStore>(dir_ / "db" / "songd.db");
    }
    void TearDown() override {
        for (const auto& path : undeletable_) MakeDeletable(path);
        store_.reset();
        fs::remove_all(dir_);
    }

    jobs::Job NewJob() {
        jobs::Job j;
        j.id = core::NewJobId();
        j.request.lyrics = "[00:01.00]hello";
        j.request.style_prompt = "pop";
        j.seed = 1;
        j.created_at = ++clock_;
        j.request_hash = "h";
        return j;
    }
    std::string AddQueued() {
        auto job = NewJob();
        store_->Create(job);
        return job.id;
    }
    /// A processing job (claimed, not finished) with a partial file on disk.
    std::string AddProcessing() {
        const std::string id = AddQueued();
        auto claimed = store_->Claim("worker", kNow, 60000);
        EXPECT_TRUE(claimed && claimed->id == id);
        WriteFile(jobs::JobDir(config_, id) / "output_fixed.wav.tmp", "partial");
        return id;
    }
    /// A completed job expiring at `expires_at`, with its files locally and in `objects`.
    std::string AddCompleted(int64_t expires_at, FakeObjectStore* objects = nullptr,
                             bool local_files = true) {
        const std::string id = AddQueued();
        const int64_t completed_at = expires_at - kRetention;
        auto claimed = store_->Claim("worker", completed_at, 60000);
        EXPECT_TRUE(claimed && claimed->id == id) << "another job was queued first";
        jobs::Completion c;
        c.output_file = id + "/output_fixed.wav";
        c.has_preview = true;
        c.expires_at = expires_at;
        EXPECT_TRUE(store_->Complete(id, "worker", c, completed_at));
        if (local_files) WriteJobFiles(id, completed_at);
        if (objects) PutJobObjects(*objects, id, completed_at);
        return id;
    }
    std::string AddFailed(int64_t expires_at, FakeObjectStore* objects = nullptr) {
        const std::string id = AddQueued();
        const int64_t failed_at = expires_at - kRetention;
        auto claimed = store_->Claim("worker", failed_at, 60000);
        EXPECT_TRUE(claimed && claimed->id == id);
        EXPECT_TRUE(store_->Fail(id, "worker", "engine", "boom", failed_at, expires_at));
        WriteFile(jobs::JobDir(config_, id) / "output_fixed.wav.tmp", "partial");
        SetTreeMtime(jobs::JobDir(config_, id), failed_at);
        if (objects) objects->Put(jobs::ObjectKey(config_, id, jobs::kSongFile), failed_at);
        return id;
    }
    void WriteJobFiles(const std::string& id, int64_t mtime) {
        WriteFile(jobs::LocalSong(config_, id), std::string(1000, 'w'));
        WriteFile(jobs::JobDir(config_, id) / jobs::kPreviewFile, std::string(200, 'p'));
        SetTreeMtime(jobs::JobDir(config_, id), mtime);
    }
    void PutJobObjects(FakeObjectStore& objects, const std::string& id, int64_t mtime) {
        objects.Put(jobs::ObjectKey(config_, id, jobs::kSongFile), mtime, 1000);
        objects.Put(jobs::ObjectKey(config_, id, jobs::kPreviewFile), mtime, 200);
    }
    bool HasLocal(const std::string& id) const { return fs::exists(jobs::JobDir(config_, id)); }
    bool HasObjects(const FakeObjectStore& objects, const std::string& id) const {
        return objects.Has(jobs::ObjectKey(config_, id, jobs::kSongFile));
    }
    std::optional<JobStatus> StatusOf(const std::string& id) {
        auto job = store_->Get(id);
        if (!job) return std::nullopt;
        return job->status;
    }

    CleanupReport Run(FakeObjectStore* objects, CleanupOptions options = {}) {
        if (options.now == 0) options.now = kNow;
        options.on_item = [this](const std::string& line) { lines_.push_back(line); };
        return RunCleanup(config_, *store_, objects, options);
    }

    fs::path dir_;
    core::Config config_;
    std::unique_ptr<jobs::SqliteJobStore> store_;
    std::vector<std::string> lines_;
    std::vector<fs::path> undeletable_;
    int64_t clock_ = 0;
};

// ---- due selection -------------------------------------------------------------------

struct DueCase {
    const char* id;
    bool failed;
    int64_t expires_offset;          ///< expires_at - now
    std::optional<JobStatus> after;  ///< nullopt: the record is gone
    bool files_kept;
};

TEST_F(CleanupTest, SelectsExactlyTheJobsDueAndTreatsEachStatusByTheRules) {
    const DueCase cases[] = {
        {"due.completed-past", false, -1, JobStatus::kExpired, false},
        {"due.completed-long-past", false, -400 * kDay, JobStatus::kExpired, false},
        {"due.completed-at-now", false, 0, JobStatus::kExpired, false},
        {"due.completed-future", false, 1, JobStatus::kCompleted, true},
        {"due.failed-past", true, -1, std::nullopt, false},
        {"due.failed-future", true, kDay, JobStatus::kFailed, true},
    };
    FakeObjectStore objects;
    std::map<std::string, std::string> ids;
    for (const auto& c : cases) {
        ids[c.id] = c.failed ? AddFailed(kNow + c.expires_offset, &objects)
                             : AddCompleted(kNow + c.expires_offset, &objects);
    }
    // Queued and processing jobs have no expiry yet; their folders are never touched.
    const std::string processing = AddProcessing();
    const std::string queued = AddQueued();
    WriteFile(jobs::JobDir(config_, queued) / "note", "x");
    SetTreeMtime(jobs::JobDir(config_, processing), kNow - 100 * kDay);
    SetTreeMtime(jobs::JobDir(config_, queued), kNow - 100 * kDay);

    auto report = Run(&objects);

    for (const auto& c : cases) {
        SCOPED_TRACE(c.id);
        const std::string& id = ids[c.id];
        EXPECT_EQ(StatusOf(id), c.after);
        EXPECT_EQ(HasLocal(id), c.files_kept);
        EXPECT_EQ(HasObjects(objects, id), c.files_kept);
    }
    EXPECT_EQ(StatusOf(processing), JobStatus::kProcessing);
    EXPECT_TRUE(fs::exists(jobs::JobDir(config_, processing) / "output_fixed.wav.tmp"));
    EXPECT_EQ(StatusOf(queued), JobStatus::kQueued);
    EXPECT_TRUE(fs::exists(jobs::JobDir(config_, queued) / "note"));
    EXPECT_EQ(report.jobs_expired, 3);
    EXPECT_EQ(report.failed_jobs_removed, 1);
    // 3 completed jobs × (song + preview) + the failed job's partial file.
    EXPECT_EQ(report.files_deleted, 7);
    EXPECT_EQ(report.bytes_deleted, 3 * 1200 + 7);
    EXPECT_EQ(report.orphan_folders, 0);
    EXPECT_EQ(report.orphan_objects, 0);
    EXPECT_EQ(report.errors, 0);
    // An expired job keeps its record as a tombstone: status keeps answering.
    auto tombstone = store_->Get(ids["due.completed-past"]);
    ASSERT_TRUE(tombstone);
    EXPECT_EQ(tombstone->output_file, ids["due.completed-past"] + "/output_fixed.wav");
    // A second pass finds nothing more to do.
    lines_.clear();
    auto again = Run(&objects);
    EXPECT_EQ(again.jobs_expired + again.failed_jobs_removed + again.files_deleted, 0);
    EXPECT_TRUE(lines_.empty());
}

TEST_F(CleanupTest, DeletesTheS3CopyWhenTheLocalFileIsAlreadyGone) {
    FakeObjectStore objects;
    const std::string id = AddCompleted(kNow - kDay, &objects, /*local_files=*/false);
    ASSERT_FALSE(HasLocal(id));
    ASSERT_TRUE(HasObjects(objects, id));
    auto report = Run(&objects);
    EXPECT_FALSE(HasObjects(objects, id));
    EXPECT_FALSE(objects.Has(jobs::ObjectKey(config_, id, jobs::kPreviewFile)));
    EXPECT_EQ(StatusOf(id), JobStatus::kExpired);
    EXPECT_EQ(report.jobs_expired, 1);
    EXPECT_EQ(report.files_deleted, 0);
    EXPECT_EQ(report.errors, 0);
}

TEST_F(CleanupTest, WorksWithoutS3) {
    const std::string due = AddCompleted(kNow - kDay);
    const std::string kept = AddCompleted(kNow + kDay);
    auto report = Run(nullptr);
    EXPECT_EQ(StatusOf(due), JobStatus::kExpired);
    EXPECT_FALSE(HasLocal(due));
    EXPECT_EQ(StatusOf(kept), JobStatus::kCompleted);
    EXPECT_TRUE(HasLocal(kept));
    EXPECT_EQ(report.objects_deleted, 0);
}

// ---- batches -------------------------------------------------------------------------

struct BatchCase {
    const char* id;
    int batch_size;
    int due;
    std::vector<size_t> delete_batches;  ///< keys per DeleteObjects call: 4 per job, ≤ 1000
};

class CleanupBatchTest : public CleanupTest, public ::testing::WithParamInterface<BatchCase> {};

TEST_P(CleanupBatchTest, ExpiresEveryDueJobAcrossBatchBoundaries) {
    const BatchCase& c = GetParam();
    FakeObjectStore objects;
    std::vector<std::string> due;
    for (int i = 0; i < c.due; ++i) due.push_back(AddCompleted(kNow - kDay - i, &objects));
    const std::string kept = AddCompleted(kNow + kDay, &objects);

    CleanupOptions options;
    options.batch_size = c.batch_size;
    auto report = Run(&objects, options);

    EXPECT_EQ(report.jobs_expired, c.due);
    for (const auto& id : due) {
        EXPECT_EQ(StatusOf(id), JobStatus::kExpired) << id;
        EXPECT_FALSE(HasLocal(id)) << id;
        EXPECT_FALSE(HasObjects(objects, id)) << id;
    }
    EXPECT_EQ(StatusOf(kept), JobStatus::kCompleted);
    EXPECT_TRUE(HasLocal(kept));
    EXPECT_TRUE(HasObjects(objects, kept));
    EXPECT_EQ(objects.delete_batches, c.delete_batches);
    for (size_t n : objects.delete_batches) EXPECT_LE(n, 1000u);
    EXPECT_EQ(report.objects_deleted,
              std::accumulate(c.delete_batches.begin(), c.delete_batches.end(), int64_t{0}));
    EXPECT_EQ(lines_.size(), static_cast<size_t>(c.due));
}

INSTANTIATE_TEST_SUITE_P(
    Batches, CleanupBatchTest,
    ::testing::Values(BatchCase{"b01.none", 3, 0, {}}, BatchCase{"b02.one", 1, 1, {4}},
                      BatchCase{"b03.under", 3, 2, {8}}, BatchCase{"b04.exact", 3, 3, {12}},
                      BatchCase{"b05.one-over", 3, 4, {12, 4}},
                      BatchCase{"b06.several", 3, 7, {12, 12, 4}},
                      // 250 jobs × 4 keys = 1000 keys: exactly one full DeleteObjects call.
                      BatchCase{"b07.full-delete", 250, 250, {1000}},
                      // 300 jobs in one batch: 1200 keys split into 1000 + 200.
                      BatchCase{"b08.split-delete", 300, 300, {1000, 200}},
                      BatchCase{"b09.default-batch", 500, 600, {1000, 1000, 400}}),
    [](const auto& info) {
        std::string name = info.param.id;
        for (char& ch : name) {
            if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
        }
        return name;
    });

TEST_F(CleanupTest, TheStorePagesDueJobsByCursorThroughTiesExactlyOnce) {
    // 7 jobs sharing one expiry and 2 others: pages of 2 must return each due job once.
    std::set<std::string> due;
    for (int i = 0; i < 7; ++i) due.insert(AddCompleted(kNow - kDay));
    due.insert(AddCompleted(kNow - 2 * kDay));
    due.insert(AddFailed(kNow));
    AddCompleted(kNow + 1);
    std::vector<std::string> seen;
    jobs::ExpiryCursor cursor;
    for (int page = 0; page < 20; ++page) {
        auto batch = store_->DueForExpiry(kNow, cursor, 2);
        if (batch.empty()) break;
        EXPECT_LE(batch.size(), 2u);
        for (const auto& job : batch) {
            EXPECT_GE(job.expires_at, cursor.expires_at);
            seen.push_back(job.id);
        }
        cursor = {batch.back().expires_at, batch.back().id};
    }
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), due);
    EXPECT_EQ(seen.size(), due.size()) << "a job was returned twice";
}

TEST_F(CleanupTest, ADryRunOverJobsSharingOneExpiryReportsEachOnce) {
    for (int i = 0; i < 10; ++i) AddCompleted(kNow - kDay);
    CleanupOptions options;
    options.dry_run = true;
    options.batch_size = 3;
    auto report = Run(nullptr, options);
    EXPECT_EQ(report.jobs_expired, 10);
    EXPECT_EQ(std::set<std::string>(lines_.begin(), lines_.end()).size(), 10u);
    EXPECT_EQ(lines_.size(), 10u);
}

// ---- dry run -------------------------------------------------------------------------

/// Everything a pass could change: every row, every local file, every object.
struct Snapshot {
    std::map<std::string, std::string> rows;   ///< id → status and version
    std::map<std::string, std::string> files;  ///< path → size and mtime
    std::set<std::string> objects;
    std::optional<std::string> last_run;
    bool operator==(const Snapshot&) const = default;
};

TEST_F(CleanupTest, DryRunReportsEverythingAndChangesNothing) {
    FakeObjectStore objects;
    std::vector<std::string> ids;
    // More due jobs than one batch, so the dry run has to page past jobs it did not mark.
    for (int i = 0; i < 7; ++i) ids.push_back(AddCompleted(kNow - kDay - i, &objects));
    ids.push_back(AddFailed(kNow - kDay, &objects));
    ids.push_back(AddCompleted(kNow + kDay, &objects));
    const fs::path orphan = config_.output_dir / core::NewJobId();
    WriteFile(orphan / "output_fixed.wav", "old");
    SetTreeMtime(orphan, kNow - 40 * kDay);
    objects.Put("songs/" + core::NewJobId() + "/output_fixed.wav", kNow - 40 * kDay);

    auto snapshot = [&] {
        Snapshot s;
        for (const auto& id : ids) {
            auto job = store_->Get(id);
            s.rows[id] = job ? std::string(jobs::JobStatusName(job->status)) + "/" +
                                   std::to_string(job->version)
                             : "gone";
        }
        for (const auto& entry : fs::recursive_directory_iterator(config_.output_dir)) {
            struct stat st {};
            ::lstat(entry.path().c_str(), &st);
            s.files[entry.path().string()] = std::to_string(st.st_size) + "@" +
                                             std::to_string(st.st_mtim.tv_sec) + "." +
                                             std::to_string(st.st_mtim.tv_nsec);
        }
        s.objects = objects.Keys();
        s.last_run = store_->GetState(kLastRunKey);
        return s;
    };
    const Snapshot before = snapshot();

    CleanupOptions options;
    options.dry_run = true;
    options.batch_size = 3;
    auto report = Run(&objects, options);

    EXPECT_EQ(snapshot(), before);
    EXPECT_TRUE(objects.delete_batches.empty());
    EXPECT_EQ(report.jobs_expired, 7);
    EXPECT_EQ(report.failed_jobs_removed, 1);
    EXPECT_EQ(report.orphan_folders, 1);
    EXPECT_EQ(report.orphan_objects, 1);
    EXPECT_EQ(report.files_deleted, 7 * 2 + 1 + 1);
    EXPECT_EQ(report.errors, 0);
    // Each job reported exactly once, as something that would happen.
    std::set<std::string> distinct(lines_.begin(), lines_.end());
    EXPECT_EQ(distinct.size(), lines_.size());
    EXPECT_EQ(lines_.size(), 7u + 1u + 2u);
    for (const auto& line : lines_) EXPECT_EQ(line.rfind("would ", 0), 0u) << line;
    EXPECT_NE(report.Summary(true).find("dry run"), std::string::npos);
    // The dry run through RunLockedPass does not record a pass either.
    ASSERT_TRUE(RunLockedPass(config_, *store_, &objects, options, "dry"));
    EXPECT_EQ(snapshot(), before);
}

// ---- failures --------------------------------------------------------------------------

struct FailureCase {
    const char* id;
    bool throw_on_delete;
};

class CleanupS3FailureTest : public CleanupTest,
                             public ::testing::WithParamInterface<FailureCase> {};

TEST_P(CleanupS3FailureTest, JobsStayUnexpiredWhenS3DeletionFailsAndTheNextPassFinishes) {
    FakeObjectStore objects;
    std::vector<std::string> due;
    for (int i = 0; i < 5; ++i) due.push_back(AddCompleted(kNow - kDay - i, &objects));
    objects.fail_deletes = GetParam().throw_on_delete;
    objects.refuse_deletes = !GetParam().throw_on_delete;

    CleanupOptions options;
    options.batch_size = 2;
    auto report = Run(&objects, options);
    EXPECT_GT(report.errors, 0);
    EXPECT_EQ(report.jobs_expired, 0);
    EXPECT_EQ(report.objects_deleted, 0);
    for (const auto& id : due) {
        EXPECT_EQ(StatusOf(id), JobStatus::kCompleted) << id;
        EXPECT_TRUE(HasObjects(objects, id)) << id;
    }
    // Each job was tried once in this pass, not retried in a loop.
    EXPECT_EQ(objects.delete_batches.size(), 3u);

    objects.fail_deletes = objects.refuse_deletes = false;
    auto second = Run(&objects, options);
    EXPECT_EQ(second.errors, 0);
    EXPECT_EQ(second.jobs_expired, 5);
    for (const auto& id : due) {
        EXPECT_EQ(StatusOf(id), JobStatus::kExpired) << id;
        EXPECT_FALSE(HasObjects(objects, id)) << id;
    }
}

INSTANTIATE_TEST_SUITE_P(S3, CleanupS3FailureTest,
                         ::testing::Values(FailureCase{"refused", false},
                                           FailureCase{"unreachable", true}),
                         [](const auto& info) { return std::string(info.param.id); });

TEST_F(CleanupTest, AJobWhoseLocalFolderCannotBeDeletedStaysUnexpired) {
    FakeObjectStore objects;
    const std::string stuck = AddCompleted(kNow - 2 * kDay, &objects);
    const std::string fine = AddCompleted(kNow - kDay, &objects);
    ASSERT_TRUE(MakeUndeletable(jobs::JobDir(config_, stuck)))
        << "cannot make a folder undeletable here";
    undeletable_.push_back(jobs::JobDir(config_, stuck));

    auto report = Run(&objects);
    EXPECT_EQ(report.errors, 1);
    EXPECT_EQ(StatusOf(stuck), JobStatus::kCompleted);
    EXPECT_TRUE(fs::exists(jobs::LocalSong(config_, stuck)));
    EXPECT_TRUE(HasObjects(objects, stuck)) << "a job that stays live keeps its S3 copy";
    EXPECT_EQ(StatusOf(fine), JobStatus::kExpired);
    EXPECT_FALSE(HasLocal(fine));

    MakeDeletable(jobs::JobDir(config_, stuck));
    auto second = Run(&objects);
    EXPECT_EQ(second.errors, 0);
    EXPECT_EQ(StatusOf(stuck), JobStatus::kExpired);
    EXPECT_FALSE(HasLocal(stuck));
}

TEST_F(CleanupTest, ARecordWhoseIdIsNotAJobIdNeverNamesAPathAndDoesNotStallThePass) {
    // A corrupt or hand-edited record: its id must never become a path, and it must not
    // keep the pass selecting it forever.
    auto job = NewJob();
    job.id = "not-a-job-id";
    store_->Create(job);
    auto claimed = store_->Claim("worker", kNow - 40 * kDay, 60000);
    ASSERT_TRUE(claimed && claimed->id == job.id);
    jobs::Completion c;
    c.expires_at = kNow - 10 * kDay;
    ASSERT_TRUE(store_->Complete(job.id, "worker", c, kNow - 40 * kDay));
    const std::string due = AddCompleted(kNow - kDay);
    WriteFile(config_.output_dir / "not-a-job-id" / "keep", "x");
    SetTreeMtime(config_.output_dir / "not-a-job-id", kNow - kDay);  // young: the sweep keeps it

    CleanupOptions options;
    options.batch_size = 1;
    auto report = Run(nullptr, options);
    EXPECT_EQ(StatusOf(due), JobStatus::kExpired);
    EXPECT_EQ(StatusOf(job.id), JobStatus::kCompleted);
    EXPECT_TRUE(fs::exists(config_.output_dir / "not-a-job-id" / "keep"));
    EXPECT_EQ(report.jobs_expired, 1);
    EXPECT_EQ(report.errors, 1);
}

// ---- orphans ---------------------------------------------------------------------------

TEST_F(CleanupTest, OrphanSweepDeletesOnlyUnownedFilesOlderThanTheRetention) {
    FakeObjectStore objects;
    const int64_t old_time = kNow - kRetention - 1000;
    const int64_t young_time = kNow - kRetention + 60 * 1000;
    // Owned, and old: a live completed job (not yet due), a failed job not yet due, a
    // processing job, a queued one. Never touched, however old their files look.
    const std::string completed = AddCompleted(kNow + kDay, &objects);
    const std::string failed = AddFailed(kNow + kDay, &objects);
    const std::string processing = AddProcessing();
    const std::string queued = AddQueued();
    WriteFile(jobs::JobDir(config_, queued) / "x", "x");
    for (const auto& id : {completed, failed, processing, queued}) {
        SetTreeMtime(jobs::JobDir(config_, id), old_time);
        objects.Put(jobs::ObjectKey(config_, id, "extra.bin"), old_time);
    }
    // Unowned.
    const std::string old_folder = core::NewJobId();
    const std::string young_folder = core::NewJobId();
    WriteFile(config_.output_dir / old_folder / "output_fixed.wav", "old");
    SetTreeMtime(config_.output_dir / old_folder, old_time);
    WriteFile(config_.output_dir / young_folder / "output_fixed.wav", "young");
    SetTreeMtime(config_.output_dir / young_folder, young_time);
    // An old folder holding one young file is young: someone is still writing there.
    const std::string mixed_folder = core::NewJobId();
    WriteFile(config_.output_dir / mixed_folder / "old.wav", "old");
    SetTreeMtime(config_.output_dir / mixed_folder, old_time);
    WriteFile(config_.output_dir / mixed_folder / "new.wav", "new");
    SetTreeMtime(config_.output_dir / mixed_folder / "new.wav", young_time);
    SetMtime(config_.output_dir / mixed_folder, old_time);  // the folder itself only
    // Files from before songd: not named like a job.
    WriteFile(config_.output_dir / "legacy-song.wav", "legacy");
    SetTreeMtime(config_.output_dir / "legacy-song.wav", old_time);
    const std::string old_key = "songs/" + core::NewJobId() + "/output_fixed.wav";
    const std::string young_key = "songs/" + core::NewJobId() + "/output_fixed.wav";
    const std::string legacy_key = "songs/legacy.wav";
    const std::string outside_prefix = "other/" + core::NewJobId() + "/output_fixed.wav";
    objects.Put(old_key, old_time);
    objects.Put(young_key, young_time);
    objects.Put(legacy_key, old_time);
    objects.Put(outside_prefix, old_time);

    auto report = Run(&objects);

    for (const auto& id : {completed, failed, processing, queued}) {
        SCOPED_TRACE(id);
        EXPECT_TRUE(HasLocal(id));
        EXPECT_TRUE(objects.Has(jobs::ObjectKey(config_, id, "extra.bin")));
    }
    EXPECT_TRUE(fs::exists(jobs::LocalSong(config_, completed)));
    EXPECT_TRUE(HasObjects(objects, completed));
    EXPECT_FALSE(fs::exists(config_.output_dir / old_folder));
    EXPECT_TRUE(fs::exists(config_.output_dir / young_folder / "output_fixed.wav"));
    EXPECT_TRUE(fs::exists(config_.output_dir / mixed_folder / "old.wav"));
    EXPECT_FALSE(fs::exists(config_.output_dir / "legacy-song.wav"));
    EXPECT_FALSE(objects.Has(old_key));
    EXPECT_TRUE(objects.Has(young_key));
    EXPECT_FALSE(objects.Has(legacy_key));
    EXPECT_TRUE(objects.Has(outside_prefix));
    EXPECT_EQ(report.orphan_folders, 2);
    EXPECT_EQ(report.orphan_objects, 2);
    EXPECT_EQ(report.jobs_expired, 0);
    EXPECT_EQ(report.errors, 0);
}

TEST_F(CleanupTest, AnExpiredJobOwnsNothingSoLeftoversOfItAreSweptOnceOld) {
    FakeObjectStore objects;
    const std::string id = AddCompleted(kNow - kDay, &objects);
    Run(&objects);
    ASSERT_EQ(StatusOf(id), JobStatus::kExpired);
    // Something put a copy back (a restore raced the pass): old enough, it goes.
    objects.Put(jobs::ObjectKey(config_, id, jobs::kSongFile), kNow - 40 * kDay);
    WriteJobFiles(id, kNow - 40 * kDay);
    auto report = Run(&objects);
    EXPECT_FALSE(HasLocal(id));
    EXPECT_FALSE(HasObjects(objects, id));
    EXPECT_EQ(report.orphan_folders, 1);
    EXPECT_EQ(report.orphan_objects, 1);
}

TEST_F(CleanupTest, AnUnreachableBucketDuringTheSweepIsAnErrorNotACrash) {
    FakeObjectStore objects;
    objects.fail_list = true;
    const std::string id = AddCompleted(kNow - kDay, &objects);
    auto report = Run(&objects);
    EXPECT_EQ(StatusOf(id), JobStatus::kExpired);
    EXPECT_EQ(report.errors, 1);
}

// ---- cancellation ----------------------------------------------------------------------

TEST_F(CleanupTest, CancellationStopsBetweenBatchesLeavingTheRestUntouched) {
    FakeObjectStore objects;
    std::vector<std::string> due;
    for (int i = 0; i < 7; ++i) due.push_back(AddCompleted(kNow - 10 * kDay + i, &objects));
    const std::string orphan = core::NewJobId();
    WriteFile(config_.output_dir / orphan / "output_fixed.wav", "old");
    SetTreeMtime(config_.output_dir / orphan, kNow - 40 * kDay);

    std::atomic<bool> cancel{false};
    CleanupOptions options;
    options.batch_size = 3;
    options.cancel = &cancel;
    options.now = kNow;
    // Cancel as soon as the first job of the first batch is reported: that batch finishes
    // (its files are already gone), nothing after it starts.
    options.on_item = [&](const std::string&) { cancel = true; };
    auto report = RunCleanup(config_, *store_, &objects, options);

    EXPECT_EQ(report.jobs_expired, 3);
    for (int i = 0; i < 7; ++i) {
        SCOPED_TRACE(i);
        const bool in_first_batch = i < 3;  // oldest expiry first
        EXPECT_EQ(StatusOf(due[i]), in_first_batch ? JobStatus::kExpired : JobStatus::kCompleted);
        EXPECT_EQ(HasLocal(due[i]), !in_first_batch);
        EXPECT_EQ(HasObjects(objects, due[i]), !in_first_batch);
    }
    EXPECT_TRUE(fs::exists(config_.output_dir / orphan)) << "the sweep must not start";
    EXPECT_EQ(objects.list_calls, 0);
    // A cancelled pass is not recorded as a pass.
    auto locked = RunLockedPass(config_, *store_, &objects, options, "node");
    ASSERT_TRUE(locked);
    EXPECT_EQ(locked->jobs_expired, 0);
    EXPECT_FALSE(store_->GetState(kLastRunKey));
}

// ---- the locked pass -------------------------------------------------------------------

TEST_F(CleanupTest, LockedPassRecordsTheRunAndRespectsAnotherNodesLock) {
    const int64_t wall = core::NowMillis();
    const std::string due = AddCompleted(wall - kDay);
    // Another live node holds the lock: no pass, nothing changed, nothing recorded.
    ASSERT_TRUE(store_->TryLock(kLockName, "node-b", wall, wall + core::kMillisPerHour));
    CleanupOptions options;
    options.now = wall;
    EXPECT_FALSE(RunLockedPass(config_, *store_, nullptr, options, "node-a"));
    EXPECT_EQ(StatusOf(due), JobStatus::kCompleted);
    EXPECT_FALSE(store_->GetState(kLastRunKey));
    store_->Unlock(kLockName, "node-b");

    auto report = RunLockedPass(config_, *store_, nullptr, options, "node-a");
    ASSERT_TRUE(report);
    EXPECT_EQ(report->jobs_expired, 1);
    EXPECT_EQ(store_->GetState(kLastRunKey), std::to_string(wall));
    // The lock was released.
    EXPECT_TRUE(store_->TryLock(kLockName, "node-b", wall, wall + 1000));
}

TEST_F(CleanupTest, APassAsOfTheFutureDoesNotPostponeTheScheduledPasses) {
    // `songd cleanup --as-of <next month>` must not make the scheduler wait a month: the
    // recorded time is when the pass ran, or the as-of time when that is earlier.
    const int64_t before = core::NowMillis();
    CleanupOptions options;
    options.now = before + 31 * kDay;
    ASSERT_TRUE(RunLockedPass(config_, *store_, nullptr, options, "cmd"));
    const int64_t recorded = std::stoll(store_->GetState(kLastRunKey).value_or("0"));
    EXPECT_GE(recorded, before);
    EXPECT_LE(recorded, core::NowMillis());

    options.now = before - 25 * core::kMillisPerHour;
    ASSERT_TRUE(RunLockedPass(config_, *store_, nullptr, options, "cmd"));
    EXPECT_EQ(store_->GetState(kLastRunKey), std::to_string(options.now));
}

TEST_F(CleanupTest, ALockLeftByADeadProcessOnThisHostIsTakenOver) {
    // kill -9 during a pass leaves the lock row behind; the next pass on this host must not
    // wait hours for it to expire.
    const int64_t wall = core::NowMillis();
    const std::string due = AddCompleted(wall - kDay);
    pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    ASSERT_GT(child, 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);  // reaped: that pid is dead now
    ASSERT_TRUE(store_->TryLock(kLockName, "dead-owner", wall, wall + 6 * core::kMillisPerHour));
    store_->SetState(kLockHolderKey, LockHolderRecord("dead-owner", child));

    CleanupOptions options;
    options.now = wall;
    auto report = RunLockedPass(config_, *store_, nullptr, options, "node-a");
    ASSERT_TRUE(report) << "the dead process's lock was not taken over";
    EXPECT_EQ(StatusOf(due), JobStatus::kExpired);

    // A live holder (this test's parent process) keeps its lock.
    ASSERT_TRUE(store_->TryLock(kLockName, "live-owner", wall, wall + 6 * core::kMillisPerHour));
    store_->SetState(kLockHolderKey, LockHolderRecord("live-owner", ::getppid()));
    EXPECT_FALSE(RunLockedPass(config_, *store_, nullptr, options, "node-a"));
}

TEST_F(CleanupTest, ALockHeldByANodeOnAnotherHostIsFreeOnceItsLeaseRunsOut) {
    // A node that died elsewhere cannot be seen dead from here: its lease must run out.
    const int64_t wall = core::NowMillis();
    const std::string due = AddCompleted(wall - kDay);
    ASSERT_TRUE(store_->TryLock(kLockName, "far-node", wall, wall + 300));
    store_->SetState(kLockHolderKey, "some-other-host\t1\tfar-node");
    CleanupOptions options;
    options.now = wall;
    EXPECT_FALSE(RunLockedPass(config_, *store_, nullptr, options, "node-a"));
    EXPECT_EQ(StatusOf(due), JobStatus::kCompleted);

    while (core::NowMillis() <= wall + 300)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto report = RunLockedPass(config_, *store_, nullptr, options, "node-a");
    ASSERT_TRUE(report) << "the lease ran out, the lock must be free";
    EXPECT_EQ(StatusOf(due), JobStatus::kExpired);
}

TEST_F(CleanupTest, APassLongerThanTheLeaseKeepsItsLockByRenewing) {
    const int64_t wall = core::NowMillis();
    const std::string due = AddCompleted(wall - kDay);
    FakeObjectStore objects;
    LockLease lease{.lease_ms = 1000, .renew_ms = 100};
    bool other_got_lock = true;
    objects.before_delete = [&] {
        // Well past the first lease: only renewal keeps the lock from another node.
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        const int64_t now = core::NowMillis();
        other_got_lock = store_->TryLock(kLockName, "node-b", now, now + lease.lease_ms);
    };
    CleanupOptions options;
    options.now = wall;
    auto report = RunLockedPass(config_, *store_, &objects, options, "node-a", lease);
    ASSERT_TRUE(report);
    EXPECT_FALSE(other_got_lock);
    EXPECT_EQ(report->jobs_expired, 1);
    EXPECT_EQ(StatusOf(due), JobStatus::kExpired);
    EXPECT_TRUE(store_->GetState(kLastRunKey));
    // Released at the end.
    EXPECT_TRUE(store_->TryLock(kLockName, "node-b", wall, wall + 1000));
}

TEST_F(CleanupTest, APassThatLostItsLockStopsAfterTheBatchAndRecordsNothing) {
    // The holder stalled past its lease and another node took the lock: the first node
    // finishes the batch in hand (its files are gone already) and then leaves the rest.
    const int64_t wall = core::NowMillis();
    std::vector<std::string> due;
    for (int i = 0; i < 3; ++i) due.push_back(AddCompleted(wall - kDay + i));
    FakeObjectStore objects;
    LockLease lease{.lease_ms = 60'000, .renew_ms = 50};
    int deletes = 0;
    objects.before_delete = [&] {
        if (deletes++ > 0) return;
        store_->Unlock(kLockName, "node-a");  // as if the lease had run out ...
        const int64_t now = core::NowMillis();
        ASSERT_TRUE(store_->TryLock(kLockName, "node-b", now, now + lease.lease_ms));  // taken
        std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // renewals fail meanwhile
    };
    CleanupOptions options;
    options.now = wall;
    options.batch_size = 1;
    auto report = RunLockedPass(config_, *store_, &objects, options, "node-a", lease);
    ASSERT_TRUE(report);
    EXPECT_EQ(report->jobs_expired, 1);
    EXPECT_EQ(StatusOf(due[0]), JobStatus::kExpired);
    EXPECT_EQ(StatusOf(due[1]), JobStatus::kCompleted);
    EXPECT_EQ(StatusOf(due[2]), JobStatus::kCompleted);
    EXPECT_FALSE(store_->GetState(kLastRunKey)) << "a pass cut short is not a pass";
    // node-b still holds the lock: node-a did not release what it no longer owns.
    EXPECT_FALSE(store_->TryLock(kLockName, "node-c", wall, wall + 1000));
}

// ---- metrics ---------------------------------------------------------------------------

TEST(RetentionStatsTest, PrometheusShowsTheLastPassAndTotalsAcrossPasses) {
    RetentionStats stats;
    CleanupReport a;
    a.files_deleted = 4;
    a.bytes_deleted = 4000;
    a.objects_deleted = 8;
    a.jobs_expired = 2;
    a.errors = 1;
    stats.Add(a, 1'700'000'000'123);
    stats.Add(a, 1'700'000'100'000);
    const std::string text = stats.Prometheus();
    for (const char* line :
         {"songd_cleanup_last_pass_timestamp_seconds 1700000100\n",
          "songd_cleanup_passes_total 2\n", "songd_cleanup_files_deleted_total 8\n",
          "songd_cleanup_bytes_deleted_total 8000\n", "songd_cleanup_objects_deleted_total 16\n",
          "songd_cleanup_jobs_expired_total 4\n", "songd_cleanup_errors_total 2\n"}) {
        EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
    }
}

}  // namespace
}  // namespace songd::retention

// ---- uploads (reference songs) ----------------------------------------------------------

namespace songd::retention {
namespace {

class UploadCleanupTest : public CleanupTest {
  protected:
    /// An upload expiring at `expires_at`, its file locally (old) and in `objects`.
    std::string AddUpload(int64_t expires_at, FakeObjectStore* objects = nullptr) {
        jobs::Upload u;
        u.id = core::NewJobId();
        u.format = "wav";
        u.file = jobs::UploadFile(u.id, "wav");
        if (objects) u.s3_key = jobs::UploadObjectKey(config_, u.id, "wav");
        u.created_at = expires_at - kRetention;
        u.expires_at = expires_at;
        u.key = "A minor";
        store_->PutUpload(u);
        WriteFile(config_.output_dir / u.file, "RIFF");
        SetTreeMtime(jobs::UploadDir(config_, u.id), u.created_at);
        if (objects) objects->Put(u.s3_key, u.created_at);
        return u.id;
    }
};

TEST_F(UploadCleanupTest, DueUploadsLoseFileObjectAndRecordOthersStay) {
    FakeObjectStore objects;
    const std::string due = AddUpload(kNow - 1, &objects);
    const std::string due_local_only = AddUpload(kNow);
    const std::string kept = AddUpload(kNow + kDay, &objects);
    SetTreeMtime(jobs::UploadDir(config_, kept), kNow - kRetention - kDay);  // old, but owned

    auto report = Run(&objects);

    EXPECT_EQ(report.uploads_expired, 2);
    EXPECT_EQ(report.errors, 0);
    for (const auto& id : {due, due_local_only}) {
        EXPECT_FALSE(fs::exists(jobs::UploadDir(config_, id))) << id;
        EXPECT_FALSE(store_->GetUpload(id)) << id;
    }
    EXPECT_FALSE(objects.Has(jobs::UploadObjectKey(config_, due, "wav")));
    EXPECT_TRUE(fs::exists(config_.output_dir / jobs::UploadFile(kept, "wav")));
    EXPECT_TRUE(objects.Has(jobs::UploadObjectKey(config_, kept, "wav")));
    EXPECT_TRUE(store_->GetUpload(kept));
    EXPECT_NE(std::find(lines_.begin(), lines_.end(), "expired upload " + due), lines_.end());
}

TEST_F(UploadCleanupTest, ADryRunChangesNothingAndTerminates) {
    FakeObjectStore objects;
    const std::string due = AddUpload(kNow - 1, &objects);
    CleanupOptions options;
    options.dry_run = true;
    auto report = Run(&objects, options);
    EXPECT_EQ(report.uploads_expired, 1);
    EXPECT_TRUE(fs::exists(jobs::UploadDir(config_, due)));
    EXPECT_TRUE(objects.Has(jobs::UploadObjectKey(config_, due, "wav")));
    EXPECT_TRUE(store_->GetUpload(due));
}

TEST_F(UploadCleanupTest, OrphanUploadFoldersAndObjectsGoOnlyWhenOldAndUnowned) {
    FakeObjectStore objects;
    const int64_t old_time = kNow - kRetention - 1000;
    const std::string owned = AddUpload(kNow + kDay, &objects);
    SetTreeMtime(jobs::UploadDir(config_, owned), old_time);
    const std::string orphan = core::NewJobId();
    WriteFile(jobs::UploadDir(config_, orphan) / "reference.mp3", "ID3");
    SetTreeMtime(jobs::UploadDir(config_, orphan), old_time);
    const fs::path interrupted = jobs::UploadsDir(config_) / ("." + core::NewJobId() + ".incoming");
    WriteFile(interrupted, "half");
    SetTreeMtime(interrupted, old_time);
    const std::string young = core::NewJobId();
    WriteFile(jobs::UploadDir(config_, young) / "reference.wav", "RIFF");
    SetTreeMtime(jobs::UploadDir(config_, young), kNow - 60 * 1000);  // being uploaded
    const std::string orphan_key = jobs::UploadObjectKey(config_, orphan, "mp3");
    objects.Put(orphan_key, old_time);
    SetMtime(jobs::UploadsDir(config_), old_time);

    auto report = Run(&objects);

    EXPECT_TRUE(fs::exists(jobs::UploadDir(config_, owned)));
    EXPECT_TRUE(objects.Has(jobs::UploadObjectKey(config_, owned, "wav")));
    EXPECT_FALSE(fs::exists(jobs::UploadDir(config_, orphan)));
    EXPECT_FALSE(fs::exists(interrupted));
    EXPECT_TRUE(fs::exists(jobs::UploadDir(config_, young)));
    EXPECT_FALSE(objects.Has(orphan_key));
    EXPECT_EQ(report.orphan_folders, 2);
    EXPECT_EQ(report.orphan_objects, 1);
    EXPECT_EQ(report.errors, 0);
}

}  // namespace
}  // namespace songd::retention
