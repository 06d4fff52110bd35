#pragma once
/// @file
/// Helpers for the retention tests on the real binary: finished jobs, file ages, and
/// snapshots of everything a pass could change (files, database rows).
///
///   std::string id = test::CompleteJob(songd);            // submit, wait for completed
///   test::SetTreeMtime(songd.output_dir() / id, old_ms);  // make its files look old
///   auto before = test::TreeDigest(songd.output_dir());
///   auto rows = test::DumpDatabase(songd.dir() / "data" / "songd.db");

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/crypto.h"
#include "core/ids.h"
#include "harness/http_client.h"
#include "harness/songd_process.h"
#include "harness/spawn.h"

namespace songd::test {

inline boost::json::object JobStatus(SongdProcess& songd, const std::string& id) {
    auto r = Http("GET", songd.Url("/api/v1/status/" + id));
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return {};
    return boost::json::parse(r.body).as_object();
}

inline std::string StatusField(SongdProcess& songd, const std::string& id, const char* field) {
    auto doc = JobStatus(songd, id);
    auto* value = doc.if_contains(field);
    return value && value->is_string() ? std::string(value->as_string()) : std::string();
}

/// Submits a job and waits until it completed (and, with `wait_s3`, reached S3).
inline std::string CompleteJob(SongdProcess& songd, bool wait_s3 = false) {
    auto r = Http("POST", songd.Url("/api/v1/generate"), {"Content-Type: application/json"},
                  GenerateBody());
    EXPECT_EQ(r.status, 202) << r.body;
    if (r.status != 202) return "";
    const std::string id(boost::json::parse(r.body).at("job_id").as_string());
    EXPECT_TRUE(WaitFor(
        [&] {
            auto doc = JobStatus(songd, id);
            return doc["status"] == "completed" &&
                   (!wait_s3 || (doc["s3_url"].is_string() && !doc["s3_url"].as_string().empty()));
        },
        std::chrono::seconds(120)))
        << "job " << id << " did not complete: " << boost::json::serialize(JobStatus(songd, id));
    return id;
}

/// Sets the modification time of `path` and everything under it to `ms` (Unix ms).
inline void SetTreeMtime(const std::filesystem::path& path, int64_t ms) {
    timespec times[2];
    times[0].tv_sec = times[1].tv_sec = ms / 1000;
    times[0].tv_nsec = times[1].tv_nsec = (ms % 1000) * 1000000;
    if (std::filesystem::is_directory(path)) {
        for (const auto& entry : std::filesystem::recursive_directory_iterator(path)) {
            ASSERT_EQ(::utimensat(AT_FDCWD, entry.path().c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
        }
    }
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
}

inline void WriteFile(const std::filesystem::path& path, const std::string& content) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
}

inline std::string ReadFile(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// path → size, mtime and content hash of every entry under `root`.
inline std::map<std::string, std::string> TreeDigest(const std::filesystem::path& root) {
    std::map<std::string, std::string> out;
    if (!std::filesystem::exists(root)) return out;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
        struct stat st {};
        ::lstat(entry.path().c_str(), &st);
        std::string digest = std::to_string(st.st_mode) + " " + std::to_string(st.st_size) + " " +
                             std::to_string(st.st_mtim.tv_sec) + "." +
                             std::to_string(st.st_mtim.tv_nsec);
        if (S_ISREG(st.st_mode)) digest += " " + core::Sha256Hex(ReadFile(entry.path()));
        out[std::filesystem::relative(entry.path(), root).string()] = digest;
    }
    return out;
}

/// Every row of every table, as text, in a stable order.
inline std::string DumpDatabase(const std::filesystem::path& db_path) {
    sqlite3* db = nullptr;
    std::string out;
    if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        ADD_FAILURE() << "cannot open " << db_path;
        sqlite3_close(db);
        return out;
    }
    auto query = [&](const std::string& sql, const std::function<void(sqlite3_stmt*)>& row) {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
            ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
            return;
        }
        while (sqlite3_step(stmt) == SQLITE_ROW) row(stmt);
        sqlite3_finalize(stmt);
    };
    std::vector<std::string> tables;
    query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
          [&](sqlite3_stmt* s) {
              tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
          });
    for (const auto& table : tables) {
        out += "== " + table + "\n";
        query("SELECT * FROM \"" + table + "\" ORDER BY 1", [&](sqlite3_stmt* s) {
            for (int i = 0; i < sqlite3_column_count(s); ++i) {
                const unsigned char* text = sqlite3_column_text(s, i);
                out += (text ? reinterpret_cast<const char*>(text) : "NULL");
                out += "|";
            }
            out += "\n";
        });
    }
    sqlite3_close(db);
    return out;
}

/// How many times `needle` occurs in `text`.
inline size_t CountOf(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t pos = text.find(needle); pos != std::string::npos;
         pos = text.find(needle, pos + needle.size())) {
        ++n;
    }
    return n;
}

}  // namespace songd::test
