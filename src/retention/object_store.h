#pragma once
/// @file
/// ObjectStore: the two things retention needs from remote storage — list a prefix and
/// delete keys in batches. S3 implements it (s3_object_store.h); tests use a fake.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace songd::retention {

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

}  // namespace songd::retention
