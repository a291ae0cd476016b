// cdcflow's own RocksDB binding (experimental, `state.rocksdb.binding: 'native'`), built with
// node-gyp against the system's librocksdb (Debian's librocksdb-dev). It exists for what the
// `rocksdb` npm package does not expose: native checkpoints (hard-linked SST files + MANIFEST),
// DeleteRange and SST ingestion. Every call that touches the disk runs in libuv's thread pool
// and reports through a Node-style callback `(err, value)`.
#include <napi.h>

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace {

std::string ToBytes(const Napi::Value& value) {
  Napi::Buffer<char> buffer = value.As<Napi::Buffer<char>>();
  return std::string(buffer.Data(), buffer.Length());
}

bool IsAbsent(const Napi::Value& value) { return value.IsUndefined() || value.IsNull(); }

// One asynchronous call: `execute` runs in the thread pool, `result` builds the callback's value
// on the main thread. The receiver (the Db or Iterator object) stays referenced until the end.
class Job : public Napi::AsyncWorker {
 public:
  Job(const Napi::Object& receiver, const Napi::Function& callback, std::function<rocksdb::Status()> execute,
      std::function<Napi::Value(Napi::Env)> result = nullptr)
      : Napi::AsyncWorker(receiver, callback), execute_(std::move(execute)), result_(std::move(result)) {}

  void Execute() override {
    rocksdb::Status status = execute_();
    if (!status.ok()) SetError(status.ToString());
  }

  void OnOK() override {
    Napi::Env env = Env();
    Callback().Call(Receiver().Value(), {env.Null(), result_ ? result_(env) : env.Undefined()});
  }

 private:
  std::function<rocksdb::Status()> execute_;
  std::function<Napi::Value(Napi::Env)> result_;
};

class Iterator;

class Db : public Napi::ObjectWrap<Db> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Db",
                       {
                           InstanceMethod("open", &Db::Open),
                           InstanceMethod("close", &Db::Close),
                           InstanceMethod("getMany", &Db::GetMany),
                           InstanceMethod("write", &Db::Write),
                           InstanceMethod("deleteRange", &Db::DeleteRange),
                           InstanceMethod("iterator", &Db::NewIterator),
                           InstanceMethod("flush", &Db::Flush),
                           InstanceMethod("checkpoint", &Db::Checkpoint),
                           InstanceMethod("ingest", &Db::Ingest),
                           InstanceMethod("compactRange", &Db::CompactRange),
                       });
  }

  explicit Db(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Db>(info) {
    location_ = info[0].As<Napi::String>().Utf8Value();
  }

  ~Db() override {
    ReleaseIterators();
    delete db_;
  }

  rocksdb::DB* db() const { return db_; }
  void Forget(Iterator* it) { iterators_.erase(it); }
  void Remember(Iterator* it) { iterators_.insert(it); }

 private:
  Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Object o = info[0].As<Napi::Object>();
    auto num = [&](const char* name, double fallback) {
      Napi::Value v = o.Get(name);
      return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
    };
    rocksdb::Options options;
    options.create_if_missing = true;
    options.max_open_files = static_cast<int>(num("maxOpenFiles", 1000));
    options.write_buffer_size = static_cast<size_t>(num("writeBufferSize", 4 * 1024 * 1024));
    options.max_write_buffer_number = 2;
    options.max_background_jobs = 2;
    options.compression = rocksdb::kSnappyCompression;
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = rocksdb::NewLRUCache(static_cast<size_t>(num("cacheSize", 8 * 1024 * 1024)));
    double bloom = num("bloomBitsPerKey", 10);
    if (bloom > 0) table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(bloom, false));
    options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    std::string location = location_;
    auto* job = new Job(Value(), info[1].As<Napi::Function>(), [this, options, location]() {
      if (db_ != nullptr) return rocksdb::Status::InvalidArgument("already open");
      return rocksdb::DB::Open(options, location, &db_);
    });
    job->Queue();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    ReleaseIterators();
    auto* job = new Job(Value(), info[0].As<Napi::Function>(), [this]() {
      rocksdb::Status status;
      if (db_ != nullptr) status = db_->Close();
      delete db_;
      db_ = nullptr;
      return status;
    });
    job->Queue();
    return info.Env().Undefined();
  }

  Napi::Value GetMany(const Napi::CallbackInfo& info) {
    Napi::Array keys = info[0].As<Napi::Array>();
    auto input = std::make_shared<std::vector<std::string>>();
    input->reserve(keys.Length());
    for (uint32_t i = 0; i < keys.Length(); i++) input->push_back(ToBytes(keys.Get(i)));
    auto output = std::make_shared<std::vector<std::optional<std::string>>>();
    auto* job = new Job(
        Value(), info[1].As<Napi::Function>(),
        [this, input, output]() {
          if (db_ == nullptr) return rocksdb::Status::InvalidArgument("database is not open");
          std::vector<rocksdb::Slice> slices(input->begin(), input->end());
          std::vector<std::string> values;
          std::vector<rocksdb::Status> statuses = db_->MultiGet(rocksdb::ReadOptions(), slices, &values);
          output->reserve(statuses.size());
          for (size_t i = 0; i < statuses.size(); i++) {
            if (statuses[i].ok()) {
              output->emplace_back(std::move(values[i]));
            } else if (statuses[i].IsNotFound()) {
              output->emplace_back(std::nullopt);
            } else {
              return statuses[i];
            }
          }
          return rocksdb::Status::OK();
        },
        [output](Napi::Env env) -> Napi::Value {
          Napi::Array result = Napi::Array::New(env, output->size());
          for (size_t i = 0; i < output->size(); i++) {
            const auto& v = (*output)[i];
            result.Set(i, v ? Napi::Buffer<char>::Copy(env, v->data(), v->size()).As<Napi::Value>() : env.Undefined());
          }
          return result;
        });
    job->Queue();
    return info.Env().Undefined();
  }

  // write(keys, values, callback): values[i] null or undefined deletes keys[i]; one atomic batch.
  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Array keys = info[0].As<Napi::Array>();
    Napi::Array values = info[1].As<Napi::Array>();
    auto batch = std::make_shared<rocksdb::WriteBatch>();
    for (uint32_t i = 0; i < keys.Length(); i++) {
      Napi::Buffer<char> key = keys.Get(i).As<Napi::Buffer<char>>();
      Napi::Value value = values.Get(i);
      rocksdb::Slice k(key.Data(), key.Length());
      if (IsAbsent(value)) {
        batch->Delete(k);
      } else {
        Napi::Buffer<char> v = value.As<Napi::Buffer<char>>();
        batch->Put(k, rocksdb::Slice(v.Data(), v.Length()));
      }
    }
    auto* job = new Job(Value(), info[2].As<Napi::Function>(), [this, batch]() {
      if (db_ == nullptr) return rocksdb::Status::InvalidArgument("database is not open");
      rocksdb::WriteOptions options;
      options.sync = false;
      return db_->Write(options, batch.get());
    });
    job->Queue();
    return info.Env().Undefined();
  }

  // deleteRange(start, end | undefined, callback): removes [start, end); without end, to the last key.
  Napi::Value DeleteRange(const Napi::CallbackInfo& info) {
    std::string start = ToBytes(info[0]);
    std::optional<std::string> end;
    if (!IsAbsent(info[1])) end = ToBytes(info[1]);
    auto* job = new Job(Value(), info[2].As<Napi::Function>(), [this, start, end]() {
      if (db_ == nullptr) return rocksdb::Status::InvalidArgument("database is not open");
      rocksdb::WriteBatch batch;
      rocksdb::ColumnFamilyHandle* cf = db_->DefaultColumnFamily();
      if (end) {
        if (start.compare(*end) >= 0) return rocksdb::Status::OK();
        batch.DeleteRange(cf, start, *end);
      } else {
        // No key bounds every key from above: delete up to the last one, then the last one.
        std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
        it->SeekToLast();
        if (!it->status().ok()) return it->status();
        if (!it->Valid() || it->key().compare(start) < 0) return rocksdb::Status::OK();
        std::string last = it->key().ToString();
        batch.DeleteRange(cf, start, last);
        batch.Delete(cf, last);
      }
      return db_->Write(rocksdb::WriteOptions(), &batch);
    });
    job->Queue();
    return info.Env().Undefined();
  }

  Napi::Value NewIterator(const Napi::CallbackInfo& info);

  Napi::Value Flush(const Napi::CallbackInfo& info) {
    auto* job = new Job(Value(), info[0].As<Napi::Function>(), [this]() {
      if (db_ == nullptr) return rocksdb::Status::InvalidArgument("database is not open");
      return db_->Flush(rocksdb::FlushOptions());
    });
    job->Queue();
    return info.Env().Undefined();
  }

  // checkpoint(dir, walBytes, callback): RocksDB's checkpoint (SST files hard-linked,
  // MANIFEST/OPTIONS/CURRENT copied) into `dir`, which must not exist. Memtables are flushed
  // first unless the WAL holds less than `walBytes` (0: always flush); the WAL is copied then.
  Napi::Value Checkpoint(const Napi::CallbackInfo& info) {
    std::string dir = info[0].As<Napi::String>().Utf8Value();
    uint64_t walBytes = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
    auto* job = new Job(Value(), info[2].As<Napi::Function>(), [this, dir, walBytes]() {
      if (db_ == nullptr) return rocksdb::Status::InvalidArgument("database is not open");
      rocksdb::Checkpoint* checkpoint = nullptr;
      rocksdb::Status status = rocksdb::Checkpoint::Create(db_, &checkpoint);
      if (!status.ok()) return status;
      std::unique_ptr<rocksdb::Checkpoint> owned(checkpoint);
      return owned->CreateCheckpoint(dir, walBytes);
    });
    job->Queue();
    return info.Env().Undefined();
  }

  // ingest(files, move, callback): adds SST files written elsewhere (rescale); `move` hard-links them.
  Napi::Value Ingest(const Napi::CallbackInfo& info) {
    Napi::Array list = info[0].As<Napi::Array>();
    std::vector<std::string> files;
    for (uint32_t i = 0; i < list.Length(); i++) files.push_back(list.Get(i).As<Napi::String>().Utf8Value());
    bool move = info[1].ToBoolean().Value();
    auto* job = new Job(Value(), info[2].As<Napi::Function>(), [this, files, move]() {
      if (db_ == nullptr) return rocksdb::Status::InvalidArgument("database is not open");
      rocksdb::IngestExternalFileOptions options;
      options.move_files = move;
      return db_->IngestExternalFile(files, options);
    });
    job->Queue();
    return info.Env().Undefined();
  }

  Napi::Value CompactRange(const Napi::CallbackInfo& info) {
    std::optional<std::string> start;
    std::optional<std::string> end;
    if (!IsAbsent(info[0])) start = ToBytes(info[0]);
    if (!IsAbsent(info[1])) end = ToBytes(info[1]);
    auto* job = new Job(Value(), info[2].As<Napi::Function>(), [this, start, end]() {
      if (db_ == nullptr) return rocksdb::Status::InvalidArgument("database is not open");
      rocksdb::Slice s = start ? rocksdb::Slice(*start) : rocksdb::Slice();
      rocksdb::Slice e = end ? rocksdb::Slice(*end) : rocksdb::Slice();
      return db_->CompactRange(rocksdb::CompactRangeOptions(), start ? &s : nullptr, end ? &e : nullptr);
    });
    job->Queue();
    return info.Env().Undefined();
  }

  void ReleaseIterators();

  std::string location_;
  rocksdb::DB* db_ = nullptr;
  std::set<Iterator*> iterators_;
};

// A bounded, ordered view fixed at creation (it holds a RocksDB snapshot), read in batches.
class Iterator : public Napi::ObjectWrap<Iterator> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Iterator",
                       {
                           InstanceMethod("next", &Iterator::Next),
                           InstanceMethod("end", &Iterator::End),
                       });
  }

  explicit Iterator(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Iterator>(info) {}

  ~Iterator() override {
    if (owner_ != nullptr) owner_->Forget(this);
    Release();
  }

  void Init(Db* owner, const Napi::Object& ownerObject, std::optional<std::string> gte,
            std::optional<std::string> lt, bool reverse) {
    owner_ = owner;
    ownerRef_ = Napi::Persistent(ownerObject);
    lower_ = std::move(gte);
    upper_ = std::move(lt);
    reverse_ = reverse;
    rocksdb::DB* db = owner->db();
    snapshot_ = db->GetSnapshot();
    rocksdb::ReadOptions options;
    options.snapshot = snapshot_;
    options.fill_cache = false;
    if (lower_) {
      lowerSlice_ = rocksdb::Slice(*lower_);
      options.iterate_lower_bound = &lowerSlice_;
    }
    if (upper_) {
      upperSlice_ = rocksdb::Slice(*upper_);
      options.iterate_upper_bound = &upperSlice_;
    }
    it_ = db->NewIterator(options);
    owner->Remember(this);
  }

  // Called by the database before it closes, and by end().
  void Release() {
    if (it_ != nullptr) {
      delete it_;
      it_ = nullptr;
      if (owner_ != nullptr && owner_->db() != nullptr) owner_->db()->ReleaseSnapshot(snapshot_);
      snapshot_ = nullptr;
    }
  }

  void Detach() {
    Release();
    owner_ = nullptr;
  }

 private:
  // next(maxEntries, maxBytes, callback(err, [k1, v1, k2, v2, ...] in scan order, finished))
  Napi::Value Next(const Napi::CallbackInfo& info) {
    size_t maxEntries = static_cast<size_t>(info[0].As<Napi::Number>().Int64Value());
    size_t maxBytes = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
    auto entries = std::make_shared<std::vector<std::pair<std::string, std::string>>>();
    auto finished = std::make_shared<bool>(false);
    auto* job = new Job(
        Value(), info[2].As<Napi::Function>(),
        [this, maxEntries, maxBytes, entries, finished]() {
          if (it_ == nullptr) return rocksdb::Status::InvalidArgument("iterator has ended");
          if (!started_) {
            started_ = true;
            if (reverse_) {
              it_->SeekToLast();
            } else {
              it_->SeekToFirst();
            }
          }
          size_t bytes = 0;
          while (it_->Valid() && entries->size() < maxEntries && bytes < maxBytes) {
            rocksdb::Slice k = it_->key();
            rocksdb::Slice v = it_->value();
            bytes += k.size() + v.size();
            entries->emplace_back(k.ToString(), v.ToString());
            if (reverse_) {
              it_->Prev();
            } else {
              it_->Next();
            }
          }
          if (!it_->status().ok()) return it_->status();
          *finished = !it_->Valid();
          return rocksdb::Status::OK();
        },
        [entries, finished](Napi::Env env) -> Napi::Value {
          Napi::Array array = Napi::Array::New(env, entries->size() * 2);
          uint32_t i = 0;
          for (const auto& [k, v] : *entries) {
            array.Set(i++, Napi::Buffer<char>::Copy(env, k.data(), k.size()));
            array.Set(i++, Napi::Buffer<char>::Copy(env, v.data(), v.size()));
          }
          Napi::Object result = Napi::Object::New(env);
          result.Set("entries", array);
          result.Set("finished", Napi::Boolean::New(env, *finished));
          return result;
        });
    job->Queue();
    return info.Env().Undefined();
  }

  Napi::Value End(const Napi::CallbackInfo& info) {
    if (owner_ != nullptr) owner_->Forget(this);
    Release();
    return info.Env().Undefined();
  }

  Db* owner_ = nullptr;
  Napi::ObjectReference ownerRef_;
  std::optional<std::string> lower_;
  std::optional<std::string> upper_;
  rocksdb::Slice lowerSlice_;
  rocksdb::Slice upperSlice_;
  bool reverse_ = false;
  bool started_ = false;
  const rocksdb::Snapshot* snapshot_ = nullptr;
  rocksdb::Iterator* it_ = nullptr;
};

// Per environment (main thread, each worker thread): the Iterator class of that environment.
struct AddonData {
  Napi::FunctionReference iterator;
};

void Db::ReleaseIterators() {
  for (Iterator* it : iterators_) it->Detach();
  iterators_.clear();
}

// iterator(gte | undefined, lt | undefined, reverse)
Napi::Value Db::NewIterator(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (db_ == nullptr) {
    Napi::Error::New(env, "database is not open").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::optional<std::string> gte;
  std::optional<std::string> lt;
  if (!IsAbsent(info[0])) gte = ToBytes(info[0]);
  if (!IsAbsent(info[1])) lt = ToBytes(info[1]);
  Napi::Object object = env.GetInstanceData<AddonData>()->iterator.New({});
  Iterator::Unwrap(object)->Init(this, Value(), std::move(gte), std::move(lt), info[2].ToBoolean().Value());
  return object;
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  exports.Set("Db", Db::Define(env));
  auto* data = new AddonData();
  data->iterator = Napi::Persistent(Iterator::Define(env));
  env.SetInstanceData(data);
  exports.Set("rocksdbVersion", Napi::String::New(env, std::to_string(ROCKSDB_MAJOR) + "." +
                                                           std::to_string(ROCKSDB_MINOR) + "." +
                                                           std::to_string(ROCKSDB_PATCH)));
  return exports;
}

}  // namespace

NODE_API_MODULE(cdcflow_rocksdb, InitModule)
