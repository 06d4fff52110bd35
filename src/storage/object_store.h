#pragma once
/// @file
/// ObjectStore: the two things retention needs from remote storage — list a prefix and
/// delete keys in batches. S3 implements it (SongStorage::objects(), over s3::S3Client);
/// tests use a fake. It lives in storage/ so that retention depends on storage, never the
/// other way round.
///
///   if (storage::ObjectStore* objects = songs.objects()) {
///       objects->List(prefix, [](const storage::StoredObject& o) { ...; return true; });
///       int not_deleted = objects->Delete(keys);   // at most 1000 keys a call
///   }

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace songd::storage {

/// @brief One listed object.
struct StoredObject {
    std::string key;
    int64_t size = 0;
    int64_t last_modified_ms = 0;
};

/// @brief Remote storage as retention sees it.
class ObjectStore {
  public:
    virtual ~ObjectStore() = default;
    /// Visits every object under `prefix`; `visit` returns false to stop.
    virtual void List(const std::string& prefix,
                      const std::function<bool(const StoredObject&)>& visit) = 0;
    /// Deletes up to 1000 keys; missing keys are not an error. Returns how many could not be
    /// deleted; throws when the store cannot be reached.
    virtual int Delete(const std::vector<std::string>& keys) = 0;
};

}  // namespace songd::storage
