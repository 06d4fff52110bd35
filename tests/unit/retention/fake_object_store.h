#pragma once
/// @file
/// FakeObjectStore: an in-memory bucket for the retention tests. It records every
/// DeleteObjects batch and can refuse keys or fail whole calls, as S3 does.
///
///   FakeObjectStore objects;
///   objects.Put("songs/<id>/output_fixed.wav", last_modified_ms);
///   objects.refuse_deletes = true;   // every Delete answers with per-key errors

#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "storage/object_store.h"

namespace songd::retention::testing {

/// @brief A bucket in a map, with fault switches.
class FakeObjectStore : public ObjectStore {
  public:
    void Put(const std::string& key, int64_t last_modified_ms, int64_t size = 100) {
        objects_[key] = {key, size, last_modified_ms};
    }
    bool Has(const std::string& key) const { return objects_.count(key) > 0; }
    std::set<std::string> Keys() const {
        std::set<std::string> keys;
        for (const auto& [key, object] : objects_) keys.insert(key);
        return keys;
    }

    void List(const std::string& prefix,
              const std::function<bool(const StoredObject&)>& visit) override {
        ++list_calls;
        if (fail_list) throw std::runtime_error("S3 unreachable (fake)");
        // A snapshot, as S3 pages are: deletions during the walk do not disturb it.
        std::vector<StoredObject> page;
        for (auto it = objects_.lower_bound(prefix);
             it != objects_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
            page.push_back(it->second);
        }
        for (const auto& object : page) {
            if (!visit(object)) return;
        }
    }

    int Delete(const std::vector<std::string>& keys) override {
        if (before_delete) before_delete();
        delete_batches.push_back(keys.size());
        if (fail_deletes) throw std::runtime_error("S3 unreachable (fake)");
        if (refuse_deletes) return static_cast<int>(keys.size());
        for (const auto& key : keys) {
            objects_.erase(key);
            deleted.push_back(key);
        }
        return 0;
    }

    bool fail_deletes = false;    ///< Delete throws (S3 cannot be reached)
    bool refuse_deletes = false;  ///< Delete answers every key with an error (AccessDenied)
    bool fail_list = false;
    std::function<void()> before_delete;  ///< runs at the start of every Delete call
    int list_calls = 0;
    std::vector<size_t> delete_batches;  ///< keys per Delete call, in order
    std::vector<std::string> deleted;

  private:
    std::map<std::string, StoredObject> objects_;
};

}  // namespace songd::retention::testing
